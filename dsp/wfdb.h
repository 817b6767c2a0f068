// WFDB records as MIT-BIH uses them (PhysioNet's WFDB Programmer's Guide,
// `man 5 header`, `man 5 signal`, `man 5 annot`): the text header (CRLF or LF),
// signal format 212 and MIT-format annotations. Every read is bounds-checked:
// truncated or malformed files give an error naming the file and what is wrong,
// never a crash or an out-of-bounds read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace wavepool::dsp {

struct WfdbSignalInfo {
  std::string file_name;  // e.g. "100.dat"
  int format = 0;         // 212 is the one we read
  double adc_gain = 200;  // ADC units per physical unit (mV); 0 in the file means 200
  int baseline = 0;       // ADC value of 0 physical units (defaults to adc_zero)
  std::string units = "mV";
  int adc_resolution = 12;
  int adc_zero = 0;
  int initial_value = 0;
  int checksum = 0;
  std::string description;  // e.g. "MLII"; empty when the header has none
};

struct WfdbHeader {
  std::string record_name;
  int num_signals = 0;
  double sampling_frequency = 250;  // WFDB's default when absent
  int64_t num_samples = 0;          // per signal; 0 = unknown
  std::vector<WfdbSignalInfo> signals;
  std::vector<std::string> comments;  // lines starting with '#', verbatim ('#' kept, no line end)
};

// Parses header text (CRLF or LF line ends, '#' comment lines anywhere).
absl::StatusOr<WfdbHeader> ParseWfdbHeader(std::string_view text);

// Decodes format 212 (two 12-bit two's-complement samples in three bytes,
// interleaved over num_signals) into ADC units, sample-major:
// out[i * num_signals + s]. A trailing partial frame is an error.
absl::StatusOr<std::vector<int16_t>> DecodeFormat212(std::string_view bytes, int num_signals);

struct WfdbRecord {
  WfdbHeader header;
  std::vector<int16_t> adc;  // sample-major, num_signals per frame
  int64_t frames() const {
    return header.num_signals ? static_cast<int64_t>(adc.size()) / header.num_signals : 0;
  }
  // One signal in physical units: (adc - baseline) / adc_gain.
  std::vector<float> Physical(int signal) const;
  // One signal's raw ADC values (empty for a signal the record lacks).
  std::vector<int16_t> Adc(int signal) const;
  // The first signal whose description is `description` (e.g. "MLII", which
  // MIT-BIH record 114 lists second), else signal 0.
  int SignalNamed(std::string_view description) const;
};

// Reads PATH.hea and the .dat it names (in the same folder). `path` may end in
// ".hea" or be the record path without extension. When the header gives
// NSAMP, exactly NSAMP frames are read (a shorter file is DATA_LOSS) and the
// header's checksums are verified (a mismatch is DATA_LOSS). Formats other than
// 212, signals in more than one file, and samples-per-frame or skew modifiers
// are UNIMPLEMENTED.
absl::StatusOr<WfdbRecord> ReadWfdbRecord(const std::string& path);

// One MIT-format annotation (pseudo-codes already applied).
struct Annotation {
  int64_t sample = 0;   // absolute sample number
  int code = 0;         // anntyp, 1..49 (NORMAL = 1, ...)
  int subtype = 0;      // from SUB, -512..511 (noise '~': -1 = all signals unreadable)
  int channel = 0;      // from CHN, 0..1023, kept for later annotations
  int num = 0;          // from NUM, -512..511, kept for later annotations
  std::string aux;      // from AUX (e.g. rhythm "(N"), trailing NUL bytes dropped
  char Symbol() const;  // the MIT-BIH mnemonic ('N', 'V', 'A', '+', '~', ...), '?' if unknown
};

// Decodes an MIT annotation file: 16-bit little-endian words, 6-bit code and
// 10-bit time difference, with the pseudo-codes SKIP (59: 32-bit interval),
// NUM (60), SUB (61), CHN (62) and AUX (63: byte string, padded to even), ending
// at a zero word (a file without one is an error: truncated). SUB, CHN, NUM
// and AUX modify the annotation they follow. Errors name the byte offset.
absl::StatusOr<std::vector<Annotation>> ParseMitAnnotations(std::string_view bytes);
absl::StatusOr<std::vector<Annotation>> ReadMitAnnotations(const std::string& path);

// AAMI EC57 beat classes from MIT-BIH beat symbols: N = N L R e j; S = A a J S;
// V = V E; F = F; Q = / f Q. Returns '\0' for non-beat annotations.
char AamiClass(char mit_symbol);

}  // namespace wavepool::dsp
