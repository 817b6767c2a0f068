// Safetensors weights: the bytes of models/<name>/<version>/weights.safetensors.
//
// Every input: ParseSafetensors. For a file that parses: SerializeSafetensors
// and parse again must give the same tensors (shapes, bits of every value) and
// metadata; then Model::Create against the small test model's spec checks
// every tensor's presence and shape, and a model it accepts runs one window.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "tests/small_spec.h"
#include "nn/model.h"
#include "nn/safetensors.h"
#include "nn/spec.h"

namespace wavepool::fuzz {
namespace {

const nn::ModelSpec& Spec() {
  static const nn::ModelSpec spec = [] {
    absl::StatusOr<nn::ModelSpec> s = nn::ParseSpecJson(testing::SmallSpecJson("small", 1));
    if (!s.ok()) Fail(s.status().ToString());
    return *std::move(s);
  }();
  return spec;
}

bool SameTensors(const nn::TensorMap& a, const nn::TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.shape != ib->second.shape ||
        ia->second.data.size() != ib->second.data.size()) {
      return false;
    }
    if (!ia->second.data.empty() && std::memcmp(ia->second.data.data(), ib->second.data.data(),
                                                ia->second.data.size() * sizeof(float)) != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace wavepool::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace wavepool;
  using fuzz::Require;
  absl::StatusOr<nn::Safetensors> st =
      nn::ParseSafetensors(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!st.ok()) return 0;
  for (const auto& [name, t] : st->tensors) {
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      Require(d >= 0, absl::StrCat("tensor '", name, "' has a negative dimension"));
      count = d == 0 ? 0 : count * static_cast<uint64_t>(d);
      if (count == 0) break;
    }
    Require(count == t.data.size(), absl::StrCat("tensor '", name, "' holds ", t.data.size(),
                                                 " values, shape says ", count));
  }

  absl::StatusOr<nn::Safetensors> again = nn::ParseSafetensors(nn::SerializeSafetensors(*st));
  Require(again.ok(),
          absl::StrCat("a serialized parse result does not parse: ", again.status().ToString()));
  Require(fuzz::SameTensors(st->tensors, again->tensors), "the round trip changed a tensor");
  Require(st->metadata == again->metadata, "the round trip changed the metadata");

  absl::StatusOr<std::shared_ptr<const nn::Model>> model =
      nn::Model::Create(fuzz::Spec(), st->tensors);
  if (!model.ok()) return 0;
  nn::Workspace ws(**model, 1);
  std::vector<float> input((*model)->input_size(), 0.5f);
  std::vector<float> output((*model)->output_size());
  (*model)->Run(input.data(), 1, output.data(), ws);
  return 0;
}
