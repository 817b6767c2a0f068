// MIT-format annotation files (.atr), as `wavepool train|eval` read them with
// dsp::ParseMitAnnotations (ReadMitAnnotations = a size-limited file read + this).
//
// Every input is parsed. A file that parses: every annotation has a code in
// 1..49 (pseudo-codes are applied, never returned), a sample >= 0, subtype and
// num in -512..511, channel in 0..1023, an aux string no longer than the file,
// and a mnemonic and AAMI class that are defined for any code.
#include "absl/strings/str_cat.h"
#include "dsp/wfdb.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  absl::StatusOr<std::vector<dsp::Annotation>> annotations =
      dsp::ParseMitAnnotations(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!annotations.ok()) return 0;
  Require(annotations->size() <= size / 2, "more annotations than 16-bit words");
  for (size_t i = 0; i < annotations->size(); ++i) {
    const dsp::Annotation& a = (*annotations)[i];
    const std::string where = absl::StrCat("annotation ", i, ": ");
    Require(a.code >= 1 && a.code <= 49, where + "code outside 1..49");
    Require(a.sample >= 0, where + "negative sample");
    Require(a.subtype >= -512 && a.subtype <= 511, where + "subtype outside 10 bits");
    Require(a.num >= -512 && a.num <= 511, where + "num outside 10 bits");
    Require(a.channel >= 0 && a.channel <= 1023, where + "channel outside 10 bits");
    Require(a.aux.size() <= size, where + "aux longer than the file");
    (void)dsp::AamiClass(a.Symbol());
  }
  return 0;
}
