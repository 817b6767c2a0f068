#include "dsp/window_function.h"

#include <cmath>
#include <numbers>

namespace wavepool::dsp {

void FillWindow(WindowType type, std::span<float> out) {
  // Generalised cosine window, periodic (DFT-even) form: Harris, "On the use of
  // windows for harmonic analysis with the DFT", Proc. IEEE 66(1), 1978.
  const double a = type == WindowType::kHann ? 0.5 : 0.54;
  const double n_total = static_cast<double>(out.size());
  for (size_t n = 0; n < out.size(); ++n) {
    // Evaluated in double and rounded to float once: the window is the same
    // for every frame length, with no accumulated phase error.
    const double phase = 2.0 * std::numbers::pi * static_cast<double>(n) / n_total;
    out[n] = static_cast<float>(a - (1.0 - a) * std::cos(phase));
  }
}

}  // namespace wavepool::dsp
