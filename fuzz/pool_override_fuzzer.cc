// Pooling overrides: what GetModel's pool_overrides (any client) and
// `wavepool describe|train --override layer.field=value` apply to a served spec.
//
// Input: one byte choosing the base spec (the committed models' specs and the
// small test model), then lines of "layer.field=value" text. Each line goes
// through ParsePoolOverride; the ones that parse are applied together with
// ApplyPoolOverrides, which is all or nothing (on an error the spec must be
// unchanged). On success the spec is described, as GetModel does without
// validating first, and validated; a spec that validates must describe.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "tests/small_spec.h"
#include "google/protobuf/util/message_differencer.h"
#include "nn/describe.h"
#include "nn/spec.h"

namespace wavepool::fuzz {
namespace {

const std::vector<nn::ModelSpec>& BaseSpecs() {
  static const std::vector<nn::ModelSpec> specs = [] {
    std::vector<nn::ModelSpec> out;
    for (const char* dir : {"models/digits/1", "models/untrained-digits/1", "models/ecg-beats/1",
                            "models/ecg-beats/2"}) {
      absl::StatusOr<nn::ModelSpec> s =
          nn::ReadSpecFile((SourceDir() / dir / "spec.json").string());
      if (!s.ok()) Fail(s.status().ToString());
      out.push_back(*std::move(s));
    }
    absl::StatusOr<nn::ModelSpec> small = nn::ParseSpecJson(testing::SmallSpecJson("small", 1));
    if (!small.ok()) Fail(small.status().ToString());
    out.push_back(*std::move(small));
    return out;
  }();
  return specs;
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)wavepool::fuzz::BaseSpecs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  if (size == 0) return 0;
  const std::vector<nn::ModelSpec>& bases = fuzz::BaseSpecs();
  const nn::ModelSpec& base = bases[data[0] % bases.size()];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<v1::PoolOverride> overrides;
  for (size_t at = 0; at <= text.size();) {
    const size_t end = std::min(text.find('\n', at), text.size());
    absl::StatusOr<v1::PoolOverride> o = nn::ParsePoolOverride(text.substr(at, end - at));
    if (o.ok()) overrides.push_back(*std::move(o));
    at = end + 1;
  }
  nn::ModelSpec spec = base;
  if (absl::Status s = nn::ApplyPoolOverrides(overrides, &spec); !s.ok()) {
    Require(google::protobuf::util::MessageDifferencer::Equals(spec, base),
            absl::StrCat("ApplyPoolOverrides failed (", s.ToString(), ") but changed the spec"));
    return 0;
  }
  absl::StatusOr<v1::ModelDescription> description = nn::Describe(spec);
  if (description.ok()) (void)nn::FormatDescription(spec, *description);
  if (nn::ValidateSpec(spec).ok()) {
    Require(description.ok(),
            absl::StrCat("Describe failed on a validated spec: ", description.status().ToString()));
  }
  return 0;
}
