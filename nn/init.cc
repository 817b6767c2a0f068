// InitWeights: the seeded, platform-independent untrained starting point.
#include <cmath>
#include <random>

#include "nn/spec.h"
#include "nn/spec_internal.h"
#include "util/status_macros.h"

namespace wavepool::nn {
namespace {

// A uniform in [0, 1) from one raw 64-bit draw: the top 24 bits times 2^-24.
// Exact in float and identical on every platform, unlike
// std::uniform_real_distribution whose algorithm the standard leaves open.
double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 40) * 0x1p-24; }

}  // namespace

absl::StatusOr<TensorMap> InitWeights(const ModelSpec& spec, uint64_t seed) {
  ASSIGN_OR_RETURN(std::vector<Shape> shapes, ValidateSpec(spec));
  ASSIGN_OR_RETURN(Shape in, InputShape(spec));
  // One generator for the whole model; tensors are drawn in spec layer order,
  // values in row-major order, one draw per value. He-uniform (He et al. 2015,
  // as PyTorch's kaiming_uniform_ with a = 0 for ReLU): U(-l, l), l = sqrt(6 / fan_in).
  std::mt19937_64 rng(seed);
  TensorMap out;
  for (const internal::WeightSlot& slot : internal::WeightSlots(spec, in, shapes)) {
    Tensor t;
    t.shape = slot.shape;
    size_t count = 1;
    for (int64_t d : slot.shape) count *= static_cast<size_t>(d);
    using Role = internal::WeightSlot::Role;
    switch (slot.role) {
      case Role::kWeight: {
        const double limit = std::sqrt(6.0 / static_cast<double>(slot.fan_in));
        t.data.resize(count);
        // (2u - 1) is exact in double; the product and the cast to float are
        // correctly rounded IEEE operations, so every platform gets the same bits.
        for (float& v : t.data) v = static_cast<float>((2.0 * Uniform01(rng) - 1.0) * limit);
        break;
      }
      case Role::kBnWeight:
      case Role::kBnVar:
        t.data.assign(count, 1.0f);
        break;
      case Role::kBias:
      case Role::kBnBias:
      case Role::kBnMean:
        t.data.assign(count, 0.0f);
        break;
    }
    out[slot.name] = std::move(t);
  }
  return out;
}

}  // namespace wavepool::nn
