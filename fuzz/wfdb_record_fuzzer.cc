// WFDB records: a header (.hea text) and its format-212 signal file (.dat), as
// `wavepool stream|classify|train|eval` read them with dsp::ReadWfdbRecord.
//
// Input: the header text, a NUL byte, then the signal file's bytes (no NUL:
// all header, empty signal file). Every input: ParseWfdbHeader on the text and
// DecodeFormat212 on the bytes (signal count from the header, else 2); then
// both are written to a scratch folder, the signal file under the name the
// header gives, and read with ReadWfdbRecord. A record that reads: its sample
// count matches the header, and Physical, Adc and SignalNamed work for every
// signal (and give nothing for ones it lacks).
#include <cstring>

#include "absl/strings/str_cat.h"
#include "dsp/wfdb.h"
#include "fuzz/fuzz_util.h"

namespace wavepool::fuzz {
namespace {

ScratchDir& Scratch() {
  static ScratchDir dir;
  return dir;
}

void CheckRecord(const dsp::WfdbRecord& record) {
  const dsp::WfdbHeader& h = record.header;
  Require(static_cast<int>(h.signals.size()) == h.num_signals,
          "a record's signal list differs from its signal count");
  if (h.num_signals == 0) return;
  Require(record.adc.size() % static_cast<size_t>(h.num_signals) == 0,
          "a record ends in a partial frame");
  if (h.num_samples > 0) {
    Require(record.frames() == h.num_samples, "a record's length differs from its header's");
  }
  for (int s = -1; s <= h.num_signals; ++s) {
    const std::vector<float> physical = record.Physical(s);
    const std::vector<int16_t> adc = record.Adc(s);
    const bool exists = s >= 0 && s < h.num_signals;
    const size_t want = exists ? static_cast<size_t>(record.frames()) : 0;
    Require(physical.size() == want && adc.size() == want,
            absl::StrCat("Physical/Adc of signal ", s, " have the wrong length"));
  }
  const int named = record.SignalNamed(h.signals.back().description);
  Require(named >= 0 && named < h.num_signals, "SignalNamed returned no signal of the record");
  (void)record.SignalNamed("MLII");
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view text = input.substr(0, nul);
  const std::string_view dat =
      nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);

  absl::StatusOr<dsp::WfdbHeader> header = dsp::ParseWfdbHeader(text);
  const int signals = header.ok() && header->num_signals > 0 ? header->num_signals : 2;
  absl::StatusOr<std::vector<int16_t>> adc = dsp::DecodeFormat212(dat, signals);
  if (adc.ok()) {
    Require(adc->size() % static_cast<size_t>(signals) == 0,
            "DecodeFormat212 made a partial frame");
    Require(adc->size() * 3 <= dat.size() * 2 + 3,
            "DecodeFormat212 made more samples than bytes hold");
    for (int16_t v : *adc) Require(v >= -2048 && v <= 2047, "a 212 sample is outside 12 bits");
  }
  if (!header.ok()) return 0;

  const std::filesystem::path dir = fuzz::Scratch().path();
  std::filesystem::remove_all(dir / "rec");
  std::filesystem::create_directories(dir / "rec");
  if (!fuzz::WriteFile(dir / "rec" / "r.hea", text)) fuzz::Fail("cannot write the header");
  if (header->num_signals > 0) {
    const std::string& name = header->signals[0].file_name;
    // Names with a folder in them are refused by ReadWfdbRecord itself; write
    // only plain names (and never over the header).
    if (!name.empty() && name != "." && name != ".." && name != "r.hea" &&
        name.find('/') == std::string::npos && name.find('\0') == std::string::npos &&
        name.size() < 200) {
      (void)fuzz::WriteFile(dir / "rec" / name, dat);
    }
  }
  absl::StatusOr<dsp::WfdbRecord> record = dsp::ReadWfdbRecord((dir / "rec" / "r").string());
  if (record.ok()) fuzz::CheckRecord(*record);
  return 0;
}
