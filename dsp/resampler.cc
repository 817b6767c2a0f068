#include "dsp/resampler.h"

#include <soxr.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::dsp {
namespace {

constexpr double kMaxRateHz = 1e6;
// Input is handed to soxr 10 ms at a time (80 samples at 8 kHz, 160 at 16 kHz,
// 441 at 44.1 kHz): short enough that a streaming caller waits at most 10 ms
// of input for output, long enough that soxr's per-call overhead is small.
constexpr double kBlockSeconds = 0.010;
// Room in the output buffer beyond one block's share of output; soxr may
// release a little more than the ratio per call while it drains its FIFO.
constexpr size_t kOutputSlack = 256;

absl::Status ValidateRate(const char* name, double rate) {
  if (!std::isfinite(rate) || rate <= 0 || rate > kMaxRateHz) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " (", rate, ") must be finite, > 0 and <= ", kMaxRateHz, " Hz"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Resampler>> Resampler::Create(double input_rate_hz,
                                                             double output_rate_hz) {
  RETURN_IF_ERROR(ValidateRate("input_rate_hz", input_rate_hz));
  RETURN_IF_ERROR(ValidateRate("output_rate_hz", output_rate_hz));
  // The constructor is private; make_unique cannot reach it.
  std::unique_ptr<Resampler> r(new Resampler(input_rate_hz, output_rate_hz));
  if (input_rate_hz == output_rate_hz) return r;

  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  // One thread: a server runs many streams, each gets one resampler.
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t error = nullptr;
  r->soxr_ = soxr_create(input_rate_hz, output_rate_hz, 1, &error, &io, &quality, &runtime);
  if (error != nullptr || r->soxr_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resample from ", input_rate_hz,
                                                   " Hz to ", output_rate_hz,
                                                   " Hz: soxr says: ", soxr_strerror(error)));
  }
  const size_t block =
      std::max<size_t>(1, static_cast<size_t>(std::lround(input_rate_hz * kBlockSeconds)));
  r->block_.resize(block);
  const double ratio = output_rate_hz / input_rate_hz;
  r->out_.resize(static_cast<size_t>(std::ceil(static_cast<double>(block) * ratio)) +
                 kOutputSlack);
  return r;
}

Resampler::Resampler(double in_rate, double out_rate) : in_rate_(in_rate), out_rate_(out_rate) {}

Resampler::~Resampler() {
  if (soxr_ != nullptr) soxr_delete(soxr_);
}

absl::Status Resampler::Push(std::span<const float> in, OutputFn on_output) {
  if (passthrough()) {
    if (!in.empty()) on_output(in);
    return absl::OkStatus();
  }
  while (!in.empty()) {
    const size_t take = std::min(in.size(), block_.size() - block_fill_);
    std::copy(in.begin(), in.begin() + take, block_.begin() + block_fill_);
    block_fill_ += take;
    in = in.subspan(take);
    if (block_fill_ == block_.size()) {
      block_fill_ = 0;
      RETURN_IF_ERROR(ProcessBlock(block_.data(), block_.size(), on_output));
    }
  }
  return absl::OkStatus();
}

absl::Status Resampler::Finish(OutputFn on_output) {
  if (passthrough()) return absl::OkStatus();
  absl::Status status = absl::OkStatus();
  if (block_fill_ > 0) status = ProcessBlock(block_.data(), block_fill_, on_output);
  // in == nullptr tells soxr the input has ended: it then releases the
  // samples still in its filter's delay line.
  if (status.ok()) status = ProcessBlock(nullptr, 0, on_output);
  block_fill_ = 0;
  // Ready for a new stream whether or not this one ended well.
  if (soxr_error_t e = soxr_clear(soxr_); e != nullptr && status.ok()) {
    status = absl::InternalError(absl::StrCat("soxr_clear failed: ", e));
  }
  return status;
}

absl::Status Resampler::ProcessBlock(const float* in, size_t n, OutputFn on_output) {
  // Each call consumes as much input as fits the output buffer; loop until the
  // block is used up and, when flushing (in == nullptr), until soxr has no
  // more output. The call sequence depends only on the input, never on how the
  // caller chunked it, so the output does not either.
  size_t used = 0;
  while (true) {
    size_t in_done = 0;
    size_t out_done = 0;
    const float* src = in == nullptr ? nullptr : in + used;
    soxr_error_t error = soxr_process(soxr_, src, n - used, &in_done, out_.data(),
                                      out_.size(), &out_done);
    if (error != nullptr) {
      return absl::InternalError(absl::StrCat("soxr_process failed (", in_rate_, " Hz to ",
                                              out_rate_, " Hz): ", error));
    }
    used += in_done;
    if (out_done > 0) on_output(std::span<const float>(out_.data(), out_done));
    const bool input_left = in != nullptr && used < n;
    if (input_left && in_done == 0 && out_done == 0) {
      return absl::InternalError(absl::StrCat("soxr_process made no progress (", in_rate_,
                                              " Hz to ", out_rate_, " Hz)"));
    }
    if (!input_left && out_done < out_.size() && (in != nullptr || out_done == 0)) break;
  }
  return absl::OkStatus();
}

}  // namespace wavepool::dsp
