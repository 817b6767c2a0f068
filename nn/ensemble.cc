// MergeEnsemble: K same-spec models as one block-diagonal network.
#include "nn/ensemble.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "nn/spec.h"
#include "util/status_macros.h"

namespace wavepool::nn {
namespace {

using ::wavepool::v1::LayerSpec;
using ::wavepool::v1::ModelSpec;

bool IsLinear(const LayerSpec& l) { return l.has_conv1d() || l.has_conv2d() || l.has_dense(); }

// The parts of a spec that must agree between members.
ModelSpec Architecture(const ModelSpec& s) {
  ModelSpec a = s;
  a.clear_version();
  a.clear_description();
  a.clear_provenance();
  return a;
}

absl::StatusOr<const Tensor*> Find(const TensorMap& w, const std::string& name, size_t member) {
  auto it = w.find(name);
  if (it == w.end()) return absl::InvalidArgumentError(absl::StrCat("member ", member, " has no tensor ", name));
  return &it->second;
}

// Member m's tensor `name`, which must have member 0's shape.
absl::StatusOr<const Tensor*> FindSameShape(std::span<const SpecAndWeights> members, const std::string& name,
                                            size_t m) {
  ASSIGN_OR_RETURN(const Tensor* first, Find(members[0].weights, name, 0));
  ASSIGN_OR_RETURN(const Tensor* w, Find(members[m].weights, name, m));
  if (w->shape != first->shape) {
    return absl::InvalidArgumentError(absl::StrCat("member ", m, "'s ", name, " has another shape than member 0's"));
  }
  return w;
}

// Writes the members' [rows, cols, inner] blocks of `name` into a merged
// [K rows, (split ? K cols : cols), inner] tensor, block m at (m rows, m cols)
// or, for a shared input, (m rows, 0).
absl::StatusOr<Tensor> StackOrBlockDiagonal(std::span<const SpecAndWeights> members, const std::string& name,
                                            bool split_input) {
  const size_t k = members.size();
  ASSIGN_OR_RETURN(const Tensor* first, Find(members[0].weights, name, 0));
  if (first->shape.size() < 2) return absl::InvalidArgumentError(absl::StrCat(name, " is not a matrix"));
  const auto rows = static_cast<size_t>(first->shape[0]);
  const auto cols = static_cast<size_t>(first->shape[1]);
  size_t inner = 1;
  for (size_t d = 2; d < first->shape.size(); ++d) inner *= static_cast<size_t>(first->shape[d]);
  const size_t out_cols = split_input ? k * cols : cols;
  Tensor t;
  t.shape = first->shape;
  t.shape[0] = static_cast<int64_t>(k * rows);
  t.shape[1] = static_cast<int64_t>(out_cols);
  t.data.assign(k * rows * out_cols * inner, 0.0f);
  for (size_t m = 0; m < k; ++m) {
    ASSIGN_OR_RETURN(const Tensor* w, FindSameShape(members, name, m));
    const size_t col0 = split_input ? m * cols : 0;
    for (size_t r = 0; r < rows; ++r) {
      const float* src = w->data.data() + r * cols * inner;
      float* dst = t.data.data() + ((m * rows + r) * out_cols + col0) * inner;
      std::copy(src, src + cols * inner, dst);
    }
  }
  return t;
}

absl::StatusOr<Tensor> Concatenate(std::span<const SpecAndWeights> members, const std::string& name) {
  Tensor t;
  for (size_t m = 0; m < members.size(); ++m) {
    ASSIGN_OR_RETURN(const Tensor* w, FindSameShape(members, name, m));
    if (w->shape.size() != 1) return absl::InvalidArgumentError(absl::StrCat(name, " is not a vector"));
    t.data.insert(t.data.end(), w->data.begin(), w->data.end());
  }
  t.shape = {static_cast<int64_t>(t.data.size())};
  return t;
}

// The last dense layer: [F, (split ? K in : in)], each member's weights / K
// (side by side when split, summed when the input is shared); bias the mean.
absl::StatusOr<Tensor> AveragingWeight(std::span<const SpecAndWeights> members, const std::string& name,
                                       bool split_input) {
  const size_t k = members.size();
  ASSIGN_OR_RETURN(const Tensor* first, Find(members[0].weights, name, 0));
  if (first->shape.size() != 2) return absl::InvalidArgumentError(absl::StrCat(name, " is not a matrix"));
  const auto rows = static_cast<size_t>(first->shape[0]);
  const auto cols = static_cast<size_t>(first->shape[1]);
  const size_t out_cols = split_input ? k * cols : cols;
  Tensor t;
  t.shape = {static_cast<int64_t>(rows), static_cast<int64_t>(out_cols)};
  t.data.assign(rows * out_cols, 0.0f);
  const float inv_k = 1.0f / static_cast<float>(k);
  for (size_t m = 0; m < k; ++m) {
    ASSIGN_OR_RETURN(const Tensor* w, FindSameShape(members, name, m));
    const size_t col0 = split_input ? m * cols : 0;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t c = 0; c < cols; ++c) t.data[r * out_cols + col0 + c] += w->data[r * cols + c] * inv_k;
    }
  }
  return t;
}

absl::StatusOr<Tensor> MeanVector(std::span<const SpecAndWeights> members, const std::string& name) {
  ASSIGN_OR_RETURN(const Tensor* first, Find(members[0].weights, name, 0));
  Tensor t;
  t.shape = first->shape;
  t.data.assign(first->data.size(), 0.0f);
  for (size_t m = 0; m < members.size(); ++m) {
    ASSIGN_OR_RETURN(const Tensor* b, FindSameShape(members, name, m));
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] += b->data[i] / static_cast<float>(members.size());
  }
  return t;
}

}  // namespace

absl::StatusOr<SpecAndWeights> MergeEnsemble(std::span<const SpecAndWeights> members) {
  if (members.empty()) return absl::InvalidArgumentError("an ensemble needs at least one member");
  const ModelSpec& spec0 = members[0].spec;
  RETURN_IF_ERROR(ValidateSpec(spec0).status());
  const ModelSpec arch0 = Architecture(spec0);
  for (size_t m = 1; m < members.size(); ++m) {
    if (!google::protobuf::util::MessageDifferencer::Equals(arch0, Architecture(members[m].spec))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "member ", m, " has another spec than member 0 (front end, layers or labels differ); an ensemble's "
          "members must be trained from one spec"));
    }
    if (members[m].spec.provenance().split() != spec0.provenance().split()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "member ", m, " was trained on split \"", members[m].spec.provenance().split(), "\", member 0 on \"",
          spec0.provenance().split(), "\"; an ensemble's members must share one held-out set"));
    }
  }
  int last = -1;
  for (int i = 0; i < spec0.layers_size(); ++i) {
    if (IsLinear(spec0.layers(i))) last = i;
  }
  if (last < 0 || !spec0.layers(last).has_dense()) {
    return absl::InvalidArgumentError("an ensemble needs a model whose last conv or dense layer is a dense layer");
  }
  for (int i = last + 1; i < spec0.layers_size(); ++i) {
    const LayerSpec& l = spec0.layers(i);
    if (!l.has_dropout() && !l.has_softmax()) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", l.name(), " follows the last dense layer; only "
                                                     "dropout or softmax may, for the mean of the members' "
                                                     "outputs to be the ensemble's"));
    }
  }

  SpecAndWeights out;
  out.spec = spec0;
  const size_t k = members.size();
  bool split = false;  // the layer's input holds K members' blocks
  for (int i = 0; i < spec0.layers_size(); ++i) {
    const LayerSpec& l = spec0.layers(i);
    LayerSpec* ol = out.spec.mutable_layers(i);
    const std::string& n = l.name();
    if (i == last) {
      ASSIGN_OR_RETURN(out.weights[n + ".weight"], AveragingWeight(members, n + ".weight", split));
      if (!l.dense().no_bias()) {
        ASSIGN_OR_RETURN(out.weights[n + ".bias"], MeanVector(members, n + ".bias"));
      }
      split = false;
    } else if (IsLinear(l)) {
      ASSIGN_OR_RETURN(out.weights[n + ".weight"], StackOrBlockDiagonal(members, n + ".weight", split));
      bool bias = true;
      if (l.has_conv1d()) {
        ol->mutable_conv1d()->set_out_channels(static_cast<uint32_t>(k * l.conv1d().out_channels()));
        bias = !l.conv1d().no_bias();
      } else if (l.has_conv2d()) {
        ol->mutable_conv2d()->set_out_channels(static_cast<uint32_t>(k * l.conv2d().out_channels()));
        bias = !l.conv2d().no_bias();
      } else {
        ol->mutable_dense()->set_out_features(static_cast<uint32_t>(k * l.dense().out_features()));
        bias = !l.dense().no_bias();
      }
      if (bias) {
        ASSIGN_OR_RETURN(out.weights[n + ".bias"], Concatenate(members, n + ".bias"));
      }
      split = true;
    } else if (l.has_batch_norm()) {
      if (!split) {
        return absl::InvalidArgumentError(absl::StrCat("batch-norm layer ", n, " comes before any conv or dense "
                                                       "layer; an ensemble cannot share it"));
      }
      for (const char* part : {".weight", ".bias", ".running_mean", ".running_var"}) {
        ASSIGN_OR_RETURN(out.weights[n + part], Concatenate(members, n + part));
      }
    }
  }

  bool trained = true;
  for (const SpecAndWeights& m : members) trained = trained && m.spec.provenance().trained();
  out.spec.mutable_provenance()->set_trained(trained);
  out.spec.mutable_provenance()->clear_metrics();
  out.spec.mutable_provenance()->clear_command();
  out.spec.mutable_provenance()->clear_notes();

  // The merged network must be exactly what its spec asks for.
  ASSIGN_OR_RETURN(auto expected, ExpectedWeights(out.spec));
  if (expected.size() != out.weights.size()) {
    return absl::InternalError("merged ensemble: tensor count does not match its spec");
  }
  for (const auto& [name, shape] : expected) {
    auto it = out.weights.find(name);
    if (it == out.weights.end() || it->second.shape != shape) {
      return absl::InternalError(absl::StrCat("merged ensemble: tensor ", name, " does not match its spec"));
    }
  }
  return out;
}

}  // namespace wavepool::nn
