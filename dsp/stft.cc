#include "dsp/stft.h"

#include <fftw3.h>

#include <cassert>
#include <cmath>
#include <map>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

// 2^20 points: far beyond any audio front end (a 512-point FFT is 32 ms at
// 16 kHz), small enough that a bad config cannot ask for gigabytes.
constexpr size_t kMaxFftSize = size_t{1} << 20;

// The FFTW planner and its allocator are not thread-safe ("the only thread-safe
// routine in FFTW is fftw_execute and the new-array variants", FFTW manual
// 5.4). Every call into FFTW other than execute goes through this mutex.
std::mutex& FftwMutex() {
  static std::mutex* mutex = new std::mutex;  // never destroyed: usable at exit
  return *mutex;
}

// fft_size -> r2c plan, created once per size and kept for the process. The
// plans are planned on fftwf_malloc'ed arrays, so any other fftwf_malloc'ed
// arrays of the same size meet the new-array execute rules (same alignment,
// out of place). FFTW_ESTIMATE picks the plan by heuristics alone, so every
// process builds the same plan and gets bit-identical spectra; FFTW_MEASURE
// would time candidates and could pick differently run to run.
absl::StatusOr<fftwf_plan> SharedPlanLocked(size_t fft_size) {
  static auto* plans = new std::map<size_t, fftwf_plan>;
  if (auto it = plans->find(fft_size); it != plans->end()) return it->second;
  const size_t bins = fft_size / 2 + 1;
  float* in = fftwf_alloc_real(fft_size);
  fftwf_complex* out = fftwf_alloc_complex(bins);
  fftwf_plan plan = nullptr;
  if (in != nullptr && out != nullptr) {
    plan = fftwf_plan_dft_r2c_1d(static_cast<int>(fft_size), in, out, FFTW_ESTIMATE);
  }
  fftwf_free(in);
  fftwf_free(out);
  if (plan == nullptr) {
    return absl::InternalError(
        absl::StrCat("FFTW could not plan a real FFT of size ", fft_size));
  }
  plans->emplace(fft_size, plan);
  return plan;
}

}  // namespace

bool FftSizeIsAllocationFree(size_t fft_size) {
  if (fft_size == 0 || fft_size % 2 != 0) return false;
  for (size_t p : {2, 3, 5, 7}) {
    while (fft_size % p == 0) fft_size /= p;
  }
  return fft_size == 1;
}

absl::Status StftOptions::Validate() const {
  if (frame_length == 0) return absl::InvalidArgumentError("frame_length (0) must be > 0");
  if (fft_size < frame_length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fft_size (", fft_size, ") must be >= frame_length (", frame_length, ")"));
  }
  if (fft_size > kMaxFftSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("fft_size (", fft_size, ") must be <= ", kMaxFftSize));
  }
  return absl::OkStatus();
}

struct StftFrame::Buffers {
  Buffers() = default;
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  ~Buffers() {
    std::lock_guard<std::mutex> lock(FftwMutex());
    fftwf_free(in);
    fftwf_free(out);
  }

  fftwf_plan plan = nullptr;  // shared, owned by the plan cache
  float* in = nullptr;        // fft_size, fftwf_malloc'ed
  fftwf_complex* out = nullptr;  // num_bins, fftwf_malloc'ed
  std::vector<float> window;  // frame_length
};

absl::StatusOr<StftFrame> StftFrame::Create(const StftOptions& options) {
  RETURN_IF_ERROR(options.Validate());
  auto buffers = std::make_unique<Buffers>();
  {
    std::lock_guard<std::mutex> lock(FftwMutex());
    ASSIGN_OR_RETURN(buffers->plan, SharedPlanLocked(options.fft_size));
    buffers->in = fftwf_alloc_real(options.fft_size);
    buffers->out = fftwf_alloc_complex(options.num_bins());
  }
  if (buffers->in == nullptr || buffers->out == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate FFT buffers for fft_size ", options.fft_size));
  }
  buffers->window.resize(options.frame_length);
  FillWindow(options.window, buffers->window);
  return StftFrame(options, std::move(buffers));
}

StftFrame::StftFrame(const StftOptions& options, std::unique_ptr<Buffers> buffers)
    : options_(options), buffers_(std::move(buffers)) {}
StftFrame::StftFrame(StftFrame&&) noexcept = default;
StftFrame& StftFrame::operator=(StftFrame&&) noexcept = default;
StftFrame::~StftFrame() = default;

void StftFrame::Compute(std::span<const float> frame, std::span<float> spectrum) {
  assert(frame.size() == options_.frame_length);
  assert(spectrum.size() == options_.num_bins());
  Buffers& b = *buffers_;
  const size_t length = options_.frame_length;
  for (size_t n = 0; n < length; ++n) b.in[n] = frame[n] * b.window[n];
  // Rewritten every call: the plan is not asked to preserve its input.
  for (size_t n = length; n < options_.fft_size; ++n) b.in[n] = 0.0f;
  fftwf_execute_dft_r2c(b.plan, b.in, b.out);
  for (size_t k = 0; k < spectrum.size(); ++k) {
    const float re = b.out[k][0];
    const float im = b.out[k][1];
    const float power = re * re + im * im;
    spectrum[k] = options_.power ? power : std::sqrt(power);
  }
}

}  // namespace wavepool::dsp
