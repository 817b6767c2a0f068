// StreamConfig.certify_epsilon through Session: validation; each window's
// certified / certified_margin equals an independent computation (whole-signal
// features, LogMelBounds, IntervalModel, the window's top class); a certified
// window's class survives perturbed streams (digits and ECG, shipped models);
// off by default.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "dsp/log_mel_bounds.h"
#include "dsp/wav.h"
#include "dsp/wfdb.h"
#include "gtest/gtest.h"
#include "nn/ibp.h"
#include "server/model_repository.h"
#include "server/session.h"

namespace wavepool::server {
namespace {

std::shared_ptr<const LoadedModel> Load(const std::string& name) {
  auto m = ModelRepository::LoadVersion(std::string(WP_SOURCE_DIR) + "/models/" + name + "/2",
                                        name, 2);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : nullptr;
}

std::vector<v1::WindowResult> Stream(const LoadedModel& model, const v1::StreamConfig& config,
                                     const std::vector<float>& x) {
  auto s = Session::Create(config, std::shared_ptr<const LoadedModel>(&model, [](auto*) {}));
  EXPECT_TRUE(s.ok()) << s.status();
  std::vector<v1::WindowResult> out;
  // Named: SessionOutput holds FunctionRefs, which must not outlive their lambdas.
  const auto on_window = [&](v1::WindowResult&& w) { out.push_back(std::move(w)); };
  const auto on_event = [](v1::Event&&) {};
  SessionOutput sink{on_window, on_event};
  for (size_t i = 0; i < x.size(); i += 3000) {
    v1::SampleChunk chunk;
    for (size_t k = i; k < std::min(x.size(), i + 3000); ++k) chunk.add_values(x[k]);
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

v1::StreamConfig Config(double rate, float eps) {
  v1::StreamConfig c;
  c.set_sample_rate_hz(rate);
  c.set_encoding(v1::FLOAT32);
  c.set_certify_epsilon(eps);
  return c;
}

TEST(Certify, BadEpsilonOrStreamIsRefusedWithTheReason) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  for (float eps : {-1e-3f, NAN, INFINITY}) {
    auto s = Session::Create(Config(8000, eps), model);
    ASSERT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << eps;
    EXPECT_NE(s.status().message().find("certify_epsilon"), std::string_view::npos) << s.status();
  }
  auto other_rate = Session::Create(Config(16000, 1e-4f), model);
  EXPECT_EQ(other_rate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(other_rate.status().message().find("8000"), std::string_view::npos);
  v1::StreamConfig stereo = Config(8000, 1e-4f);
  stereo.set_channels(2);
  EXPECT_EQ(Session::Create(stereo, model).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Session::Create(Config(16000, 0), model).ok());  // off: any rate
}

TEST(Certify, DigitMarginsMatchAnIndependentComputation) {
  auto model = Load("digits");
  ASSERT_NE(model, nullptr);
  const std::vector<float> x = DemoDigits(6.0);
  // The shipped digit model certifies only tiny budgets (docs/pooling.md);
  // at 1e-10 some of these 21 windows are certified and most are not.
  const float eps = 1e-10f;
  const std::vector<v1::WindowResult> got = Stream(*model, Config(8000, eps), x);
  const std::vector<v1::WindowResult> off = Stream(*model, Config(8000, 0), x);
  ASSERT_EQ(got.size(), off.size());

  bool padded = false;
  auto features = dsp::FeatureWindows(model->features, x, &padded);
  ASSERT_TRUE(features.ok());
  ASSERT_EQ(features->size(), got.size());
  auto bounds = dsp::LogMelBounds::Create(model->features);
  ASSERT_TRUE(bounds.ok());
  nn::Workspace ws(*model->model, 1);
  nn::IntervalWorkspace iws(*model->interval);
  const size_t len = model->features.window_length, hop = model->features.window_hop;
  const size_t in = model->model->input_size(), out = model->model->output_size();
  int certified = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<float> samples(len, 0.0f);
    for (size_t k = 0; k < len && i * hop + k < x.size(); ++k) samples[k] = x[i * hop + k];
    std::vector<float> lo(in), hi(in), logits(out), llo(out), lhi(out);
    bounds->Compute(samples, eps, lo, hi);
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
  EXPECT_GT(certified, 0);
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

TEST(Certify, CertifiedBeatsKeepTheirClassUnderPerturbation) {
  auto model = Load("ecg-beats");
  ASSERT_NE(model, nullptr);
  auto rec = dsp::ReadWfdbRecord(std::string(WP_TEST_DATA_DIR) + "/mitdb/101.hea");
  ASSERT_TRUE(rec.ok());
  const double rate = rec->header.sampling_frequency;
  std::vector<float> x = rec->Physical(rec->SignalNamed("MLII"));
  x.resize(static_cast<size_t>(30 * rate));
  const float eps = 1e-5f;  // mV: about half of these beats certify
  const std::vector<v1::WindowResult> base = Stream(*model, Config(rate, eps), x);
  ASSERT_GT(base.size(), 20u);
  int certified = 0, checked = 0;
  for (const auto& w : base) certified += w.certified();
  EXPECT_GT(certified, 0);
  std::mt19937 rng(41);
  std::uniform_real_distribution<float> unit(-1, 1);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<float> p(x);
    for (float& v : p) v += eps * (trial % 2 ? unit(rng) : (unit(rng) < 0 ? -1.0f : 1.0f));
    const std::vector<v1::WindowResult> moved = Stream(*model, Config(rate, 0), p);
    // The stated assumption: the detector finds the same R peaks (the RR
    // channels and the template depend on all of them).
    bool same_peaks = moved.size() == base.size();
    for (size_t i = 0; same_peaks && i < base.size(); ++i) {
      same_peaks = moved[i].beat_sample() == base[i].beat_sample();
    }
    if (!same_peaks) continue;
    for (size_t i = 0; i < base.size(); ++i) {
      if (!base[i].certified()) continue;
      ++checked;
      EXPECT_EQ(moved[i].top(0).label(), base[i].top(0).label()) << "trial " << trial << " beat " << i;
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace wavepool::server
