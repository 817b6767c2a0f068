// Analysis windows for the STFT.
#pragma once

#include <cstddef>
#include <span>

namespace wavepool::dsp {

enum class WindowType { kHann, kHamming };

// Fills `out` with the periodic window of length out.size() (the DFT-even form
// used for spectral analysis: w[n] = a - (1 - a) cos(2 pi n / N), a = 0.5 for Hann,
// 0.54 for Hamming).
void FillWindow(WindowType type, std::span<float> out);

}  // namespace wavepool::dsp
