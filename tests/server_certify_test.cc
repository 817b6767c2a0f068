// StreamConfig.certify_epsilon through Session: validation; each window's
// certified / certified_margin equals an independent computation (whole-signal
// features, LogMelBounds, IntervalModel, the window's top class), at the
// model's rate, resampled and downmixed; a certified window's class survives
// perturbed streams (digits and ECG, shipped models; ECG also sent at 250 and
// 500 Hz, and in stereo); off by default.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/log_mel_bounds.h"
#include "dsp/resampler.h"
#include "dsp/resampler_bounds.h"
#include "dsp/wav.h"
#include "dsp/wfdb.h"
#include "gtest/gtest.h"
#include "nn/ibp.h"
#include "server/model_repository.h"
#include "server/session.h"
#include "tests/resample_signal.h"

namespace wavepool::server {
namespace {

// The version served by default: digits 2, ecg-beats 5 (without the raw
// lead, whose bounds skip it; log-ratio and irregularity RR channels; beats
// aligned to the template; an ensemble of two networks merged into one).
std::shared_ptr<const LoadedModel> Load(const std::string& name) {
  const int version = name == "ecg-beats" ? 5 : 2;
  auto m = ModelRepository::LoadVersion(
      absl::StrCat(WP_SOURCE_DIR, "/models/", name, "/", version), name, version);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

// x: interleaved by channel when config has channels > 1.
std::vector<v1::WindowResult> Stream(const LoadedModel& model, const v1::StreamConfig& config,
                                     const std::vector<float>& x) {
  auto s = Session::Create(config, std::shared_ptr<const LoadedModel>(&model, [](auto*) {}));
  EXPECT_TRUE(s.ok()) << s.status();
  std::vector<v1::WindowResult> out;
  // Named: SessionOutput holds FunctionRefs, which must not outlive their lambdas.
  const auto on_window = [&](v1::WindowResult&& w) { out.push_back(std::move(w)); };
  const auto on_event = [](v1::Event&&) {};
  SessionOutput sink{on_window, on_event};
  const size_t step = 3000 * (config.has_channels() ? config.channels() : 1);
  for (size_t i = 0; i < x.size(); i += step) {
    v1::SampleChunk chunk;
    for (size_t k = i; k < std::min(x.size(), i + step); ++k) chunk.add_values(x[k]);
    EXPECT_TRUE((*s)->Push(chunk, sink).ok());
  }
  EXPECT_TRUE((*s)->Finish(sink, 0).ok());
  return out;
}

std::vector<float> DemoDigits(double seconds) {
  auto audio = dsp::ReadAudio(std::string(WP_TEST_DATA_DIR) + "/demo_digits.wav");
  EXPECT_TRUE(audio.ok()) << audio.status();
  std::vector<float> x = dsp::Downmix(*audio);
  x.resize(std::min(x.size(), static_cast<size_t>(seconds * audio->sample_rate_hz)));
  return x;
}

v1::StreamConfig Config(double rate, float eps, uint32_t channels = 1) {
  v1::StreamConfig c;
  c.set_sample_rate_hz(rate);
  c.set_encoding(v1::FLOAT32);
  c.set_certify_epsilon(eps);
  if (channels > 1) c.set_channels(channels);
  return c;
}


float Peak(const std::vector<float>& x) {
  float m = 0;
  for (float v : x) m = std::max(m, std::fabs(v));
  return m;
}

std::vector<float> Ecg101(double seconds, double* rate) {
  auto rec = dsp::ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/101.hea");
  EXPECT_TRUE(rec.ok()) << rec.status();
  *rate = rec->header.sampling_frequency;
  std::vector<float> x = rec->Physical(rec->SignalNamed("MLII"));
  x.resize(static_cast<size_t>(seconds * *rate));
  return x;
}

TEST(Certify, BadEpsilonOrRateIsRefusedWithTheReason) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  for (float eps : {-1e-3f, NAN, INFINITY}) {
    auto s = Session::Create(Config(8000, eps), model);
    ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << eps;
    EXPECT_NE(s.status().message().find("certify_epsilon"), std::string_view::npos) << s.status();
  }
  // Other rates and several channels are bounded (resampler and downmix).
  EXPECT_TRUE(Session::Create(Config(16000, 1e-4f), model).ok());
  EXPECT_TRUE(Session::Create(Config(44100, 1e-4f, 2), model).ok());
  // A ratio to 8000 Hz that repeats only every 44101 input samples is not
  // measured; nor is a rate that is no whole number of millihertz.
  for (double rate : {44101.0, 16000.0001}) {
    auto s = Session::Create(Config(rate, 1e-4f), model);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_NE(s.status().message().find("certify_epsilon"), std::string_view::npos) << s.status();
    EXPECT_TRUE(Session::Create(Config(rate, 0), model).ok());  // off: any rate
  }
}

// The session's windows for `client` (sent with `config`) against whole-signal
// features of `x` (the model-rate mono signal the server makes of it) bounded
// with `radius`. Returns the number certified.
int ExpectMarginsMatch(const LoadedModel* model, const v1::StreamConfig& config,
                       const std::vector<float>& client, const std::vector<float>& x,
                       float radius) {
  v1::StreamConfig off_config = config;
  off_config.set_certify_epsilon(0);
  const std::vector<v1::WindowResult> got = Stream(*model, config, client);
  const std::vector<v1::WindowResult> off = Stream(*model, off_config, client);
  EXPECT_EQ(got.size(), off.size());

  bool padded = false;
  auto features = dsp::FeatureWindows(model->features, x, &padded);
  EXPECT_TRUE(features.ok());
  auto bounds = dsp::LogMelBounds::Create(model->features);
  EXPECT_TRUE(bounds.ok());
  if (!features.ok() || !bounds.ok() || features->size() != got.size() ||
      off.size() != got.size()) {
    ADD_FAILURE() << "windows: " << got.size() << " certified, " << off.size() << " plain";
    return 0;
  }
  nn::Workspace ws(*model->model, 1);
  nn::IntervalWorkspace iws(*model->interval);
  const size_t len = model->features.window_length, hop = model->features.window_hop;
  const size_t in = model->model->input_size(), out = model->model->output_size();
  int certified = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<float> samples(len, 0.0f);
    for (size_t k = 0; k < len && i * hop + k < x.size(); ++k) samples[k] = x[i * hop + k];
    std::vector<float> lo(in), hi(in), logits(out), llo(out), lhi(out);
    bounds->Compute(samples, radius, lo, hi);
    model->interval->Propagate(lo.data(), hi.data(), llo.data(), lhi.data(), iws);
    model->model->Run((*features)[i].data(), 1, logits.data(), ws);
    const int top = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    const nn::Certificate c = nn::CertifyTop(llo, lhi, top);
    EXPECT_EQ(got[i].top(0).label(), model->model->spec().labels(top)) << "window " << i;
    EXPECT_EQ(got[i].certified(), c.certified) << "window " << i;
    EXPECT_EQ(got[i].certified_margin(), c.margin) << "window " << i;
    EXPECT_FALSE(off[i].certified());
    EXPECT_EQ(off[i].certified_margin(), 0.0f);
    EXPECT_EQ(got[i].top(0).label(), off[i].top(0).label());
    certified += c.certified;
  }
  return certified;
}

TEST(Certify, DigitMarginsMatchAnIndependentComputation) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  const std::vector<float> x = DemoDigits(6.0);
  // The shipped digit model certifies only tiny budgets (docs/pooling.md);
  // at 1e-10 some of these 21 windows are certified and most are not.
  const float eps = 1e-10f;
  EXPECT_GT(ExpectMarginsMatch(model.get(), Config(8000, eps), x, x, eps), 0);
}

float RoundUp(double r) {
  return std::nextafter(static_cast<float>(r * (1 + 1e-12)), INFINITY);
}

// Sent at 16 kHz, the server resamples to the model's 8 kHz and bounds the
// windows with G eps + alpha (2 peak + eps) (dsp/resampler_bounds.h). The
// allowance (4e-6 x the 0.47 peak) is far above the 1e-8 or so this model
// certifies at 8 kHz, so no window certifies: this checks the wiring. The
// radius follows the stream's running peak, so the peak is put in the first
// sample: every window then has the same radius.
TEST(Certify, ResampledDigitMarginsMatchAnIndependentComputation) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  std::vector<float> client = testing::ResampleSignal(DemoDigits(6.0), 8000, 16000);
  client[0] = Peak(client);
  const float eps = 1e-6f;
  auto bound = dsp::MeasureResamplerBound(16000, 8000);
  ASSERT_TRUE(bound.ok());
  EXPECT_GT(bound->linf_gain, 1.0);
  const float radius = RoundUp(bound->OutputRadius(eps, Peak(client)));
  ExpectMarginsMatch(model.get(), Config(16000, eps), client,
                     testing::ResampleSignal(client, 16000, 8000), radius);
}

// Stereo at the model's rate: the mean of the channels, summed in double and
// rounded once to float, moves by eps plus that rounding (2^-24 of each mean).
TEST(Certify, DownmixedDigitMarginsMatchAnIndependentComputation) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  std::vector<float> left = DemoDigits(6.0);
  left[0] = Peak(left);  // the running peak from the first chunk on, as above
  std::vector<float> client, mono;
  for (size_t i = 0; i < left.size(); ++i) {
    const float right = 0.7f * left[i] + 1e-3f;
    client.push_back(left[i]);
    client.push_back(right);
    mono.push_back(static_cast<float>((double{left[i]} + right) / 2));
  }
  const float eps = 1e-7f;
  const double peak = Peak(client);
  const float radius =
      RoundUp(eps + 0x1p-24 * (2 * peak + eps) + 0x1p-40 * peak + 0x1p-149);
  ExpectMarginsMatch(model.get(), Config(8000, eps, 2), client, mono, radius);
}

// No perturbation within eps changes a certified window's class: streams of
// the demo digits with random +-eps signs added.
TEST(Certify, CertifiedDigitWindowsKeepTheirClassUnderPerturbation) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  const std::vector<float> x = DemoDigits(6.0);
  const float eps = 1e-10f;  // moves only the quietest samples' floats; see above
  const std::vector<v1::WindowResult> base = Stream(*model, Config(8000, eps), x);
  std::mt19937 rng(31);
  std::uniform_int_distribution<int> coin(0, 1);
  int checked = 0;
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<float> p(x);
    for (float& v : p) v += coin(rng) ? eps : -eps;
    const std::vector<v1::WindowResult> moved = Stream(*model, Config(8000, 0), p);
    ASSERT_EQ(moved.size(), base.size());
    for (size_t i = 0; i < base.size(); ++i) {
      if (!base[i].certified()) continue;
      ++checked;
      EXPECT_EQ(moved[i].top(0).label(), base[i].top(0).label()) << "trial " << trial << " window " << i;
    }
  }
  EXPECT_GT(checked, 0);
}

// x + d as the client would send it: a float within eps of x[k].
float Moved(float x, double d, double eps) {
  float v = static_cast<float>(x + d);
  if (std::fabs(double{v} - x) > eps) v = std::nextafter(v, x);
  return v;
}

// Random +-eps signs (even trials) or uniform draws in [-eps, eps].
std::vector<float> RandomlyMoved(const std::vector<float>& x, double eps, int trial,
                                 std::mt19937& rng) {
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<float> p(x.size());
  for (size_t k = 0; k < x.size(); ++k) {
    const double u = unit(rng);
    p[k] = Moved(x[k], eps * (trial % 2 ? u : (u < 0 ? -1 : 1)), eps);
  }
  return p;
}

// Streams each perturbed signal (sent with `config`, certification off) and,
// when the detector finds the same R peaks (the stated assumption), checks
// that every beat certified in `base` keeps its class. Returns the beats checked.
int ExpectCertifiedBeatsKeepTheirClass(const LoadedModel& model, v1::StreamConfig config,
                                       const std::vector<v1::WindowResult>& base,
                                       const std::vector<std::vector<float>>& perturbed) {
  config.set_certify_epsilon(0);
  int checked = 0;
  for (size_t trial = 0; trial < perturbed.size(); ++trial) {
    const std::vector<v1::WindowResult> moved = Stream(model, config, perturbed[trial]);
    bool same_peaks = moved.size() == base.size();
    for (size_t i = 0; same_peaks && i < base.size(); ++i) {
      same_peaks = moved[i].beat_sample() == base[i].beat_sample();
    }
    if (!same_peaks) continue;
    for (size_t i = 0; i < base.size(); ++i) {
      if (!base[i].certified()) continue;
      ++checked;
      EXPECT_EQ(moved[i].top(0).label(), base[i].top(0).label())
          << "trial " << trial << " beat " << i;
    }
  }
  return checked;
}

TEST(Certify, CertifiedBeatsKeepTheirClassUnderPerturbation) {
  auto model = Load("ecg-beats");
  ASSERT_NE(model, nullptr);
  double rate = 0;
  const std::vector<float> x = Ecg101(30, &rate);
  const float eps = 1e-5f;  // mV: about half of these beats certify
  const std::vector<v1::WindowResult> base = Stream(*model, Config(rate, eps), x);
  ASSERT_GT(base.size(), 20u);
  int certified = 0;
  for (const auto& w : base) certified += w.certified();
  EXPECT_GT(certified, 0);
  std::mt19937 rng(41);
  std::vector<std::vector<float>> perturbed;
  for (int trial = 0; trial < 4; ++trial) perturbed.push_back(RandomlyMoved(x, eps, trial, rng));
  EXPECT_GT(ExpectCertifiedBeatsKeepTheirClass(*model, Config(rate, 0), base, perturbed), 0);
}

// The signs of row m of the resampler's map (from `from` to `to` Hz) over an
// n-sample stream, from one impulse per input near the row's centre (0 where
// the row is 0). Independent of resampler_bounds.cc: no periodicity assumed.
std::vector<int> RowSigns(double from, double to, size_t m, size_t n) {
  std::vector<int> signs(n, 0);
  auto r = dsp::Resampler::Create(from, to);
  EXPECT_TRUE(r.ok());
  const double centre = static_cast<double>(m) * from / to;
  const double reach = 2.5 * from;  // soxr HQ's response spans < 2 s here
  const size_t lo = static_cast<size_t>(std::max(0.0, centre - reach));
  const size_t hi = static_cast<size_t>(std::min<double>(static_cast<double>(n), centre + reach));
  std::vector<float> x, y;
  auto sink = [&](std::span<const float> s) { y.insert(y.end(), s.begin(), s.end()); };
  for (size_t k = lo; k < hi; ++k) {
    x.assign(std::min(n, k + static_cast<size_t>(reach) + 1), 0.0f);
    x[k] = 1;
    y.clear();
    EXPECT_TRUE((*r)->Push(x, sink).ok());
    EXPECT_TRUE((*r)->Finish(sink).ok());
    if (m < y.size()) signs[k] = (y[m] > 0) - (y[m] < 0);
  }
  return signs;
}

// ECG sent at 250 and 500 Hz (MIT-BIH 101 resampled by the client): the server
// resamples to the model's 360 Hz and bounds with G eps + alpha (2 peak + eps).
// Perturbations: random signs, uniform draws, and for a few certified beats
// the signs of the resampler's row at the beat's R peak (the worst case for
// that model-rate sample), random signs elsewhere.
TEST(Certify, CertifiedBeatsSentAtOtherRatesKeepTheirClassUnderPerturbation) {
  auto model = Load("ecg-beats");
  ASSERT_NE(model, nullptr);
  double model_rate = 0;
  const std::vector<float> x360 = Ecg101(30, &model_rate);
  // 1e-6 mV: the resampler's allowance (4e-6 x 2 x 1.6 mV) dominates and
  // about one beat in six certifies (at 1e-5 mV, one in 71).
  const float eps = 1e-6f;
  for (double rate : {250.0, 500.0}) {
    SCOPED_TRACE(rate);
    const std::vector<float> x = testing::ResampleSignal(x360, model_rate, rate);
    const std::vector<v1::WindowResult> base = Stream(*model, Config(rate, eps), x);
    ASSERT_GT(base.size(), 20u);
    std::vector<size_t> certified;
    for (size_t i = 0; i < base.size(); ++i) {
      if (base[i].certified()) certified.push_back(i);
    }
    ASSERT_GT(certified.size(), 0u);
    std::mt19937 rng(43);
    std::vector<std::vector<float>> perturbed;
    for (int trial = 0; trial < 4; ++trial) perturbed.push_back(RandomlyMoved(x, eps, trial, rng));
    for (size_t b = 0; b < std::min<size_t>(3, certified.size()); ++b) {
      const size_t r = static_cast<size_t>(
          std::llround(static_cast<double>(base[certified[b]].beat_sample()) * model_rate / rate));
      const std::vector<int> signs = RowSigns(rate, model_rate, r, x.size());
      std::vector<float> p = RandomlyMoved(x, eps, 0, rng);
      for (size_t k = 0; k < x.size(); ++k) {
        if (signs[k] != 0) p[k] = Moved(x[k], signs[k] * double{eps}, eps);
      }
      perturbed.push_back(std::move(p));
    }
    EXPECT_GT(ExpectCertifiedBeatsKeepTheirClass(*model, Config(rate, 0), base, perturbed), 0);
  }
}

// Two channels at the model's rate: each perturbed independently within eps.
TEST(Certify, CertifiedStereoBeatsKeepTheirClassUnderPerturbation) {
  auto model = Load("ecg-beats");
  ASSERT_NE(model, nullptr);
  double rate = 0;
  const std::vector<float> lead = Ecg101(30, &rate);
  std::vector<float> x;
  for (float v : lead) {
    x.push_back(v);
    x.push_back(0.8f * v + 0.05f);
  }
  const float eps = 1e-5f;
  const std::vector<v1::WindowResult> base = Stream(*model, Config(rate, eps, 2), x);
  ASSERT_GT(base.size(), 20u);
  int certified = 0;
  for (const auto& w : base) certified += w.certified();
  EXPECT_GT(certified, 0);
  std::mt19937 rng(47);
  std::vector<std::vector<float>> perturbed;
  for (int trial = 0; trial < 4; ++trial) perturbed.push_back(RandomlyMoved(x, eps, trial, rng));
  EXPECT_GT(ExpectCertifiedBeatsKeepTheirClass(*model, Config(rate, 0, 2), base, perturbed), 0);
}

}  // namespace
}  // namespace wavepool::server
