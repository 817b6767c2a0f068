// Activation shapes. Layout everywhere: NCHW, H = frequency, W = time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace wavepool::nn {

struct Shape {
  uint32_t c = 0;
  uint32_t h = 0;  // frequency
  uint32_t w = 0;  // time
  size_t size() const { return size_t{c} * h * w; }
  bool operator==(const Shape&) const = default;
  std::string ToString() const;  // "[C, H, W]"
};

}  // namespace wavepool::nn
