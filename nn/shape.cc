#include "nn/shape.h"

#include "absl/strings/str_cat.h"

namespace wavepool::nn {

std::string Shape::ToString() const { return absl::StrCat("[", c, ", ", h, ", ", w, "]"); }

}  // namespace wavepool::nn
