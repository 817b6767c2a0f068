// The safetensors container (https://github.com/huggingface/safetensors): an
// 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// then the raw little-endian tensor bytes. Offsets are relative to the byte after
// the header. We read and write F32 tensors only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace wavepool::nn {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major, product(shape) values
};

using TensorMap = std::map<std::string, Tensor>;

struct Safetensors {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

// Never reads out of bounds: every offset, length and shape is checked against
// the buffer, with the offending tensor named in the error.
absl::StatusOr<Safetensors> ParseSafetensors(std::string_view bytes);
absl::StatusOr<Safetensors> ReadSafetensors(const std::string& path);

// Keys sorted ("__metadata__" first when present), data contiguous in key
// order, header padded with spaces to a multiple of 8, as the reference writer.
// Serialize expects data.size() == product(shape) for every tensor; Write
// checks it and returns INVALID_ARGUMENT naming the tensor.
std::string SerializeSafetensors(const Safetensors& st);
absl::Status WriteSafetensors(const std::string& path, const Safetensors& st);

}  // namespace wavepool::nn
