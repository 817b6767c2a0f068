// StreamingFeatures must equal FeatureWindows bit for bit under any chunking.
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dsp/log_mel.h"
#include "gtest/gtest.h"

namespace wavepool::dsp {
namespace {

std::vector<float> RandomSignal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

struct Config {
  std::string name;
  FeatureWindowOptions options;
};

FeatureWindowOptions Small(size_t frame_length, size_t frame_hop, size_t fft_size,
                           size_t window_length, size_t window_hop, FeatureNorm norm) {
  FeatureWindowOptions o;
  o.log_mel.sample_rate_hz = 8000;
  o.log_mel.frame_length = frame_length;
  o.log_mel.frame_hop = frame_hop;
  o.log_mel.fft_size = fft_size;
  o.log_mel.num_bands = 6;
  o.log_mel.f_min_hz = 0;
  o.log_mel.f_max_hz = 4000;
  o.window_length = window_length;
  o.window_hop = window_hop;
  o.norm = norm;
  return o;
}

std::vector<Config> Configs() {
  FeatureWindowOptions digit;  // frame 200, hop 80, fft 256, 40 bands, window 8000 / 2000
  FeatureWindowOptions digit_norm = digit;
  digit_norm.norm = FeatureNorm::kPerWindow;
  return {
      {"digit", digit},
      {"digit_per_window_norm", digit_norm},
      // 9 frames per window plus 2 samples that belong to no frame of it.
      {"odd_remainder", Small(25, 10, 32, 107, 30, FeatureNorm::kNone)},
      // hop > frame length: samples between frames belong to none.
      {"hop_longer_than_frame", Small(16, 20, 16, 96, 40, FeatureNorm::kPerFrame)},
      // Back-to-back windows sharing no frame.
      {"window_hop_equals_length", Small(20, 10, 32, 60, 60, FeatureNorm::kNone)},
      // A one-frame window.
      {"one_frame_window", Small(31, 7, 32, 31, 28, FeatureNorm::kPerWindow)},
  };
}

struct Window {
  uint64_t index;
  std::vector<float> values;
};

struct StreamResult {
  std::vector<Window> windows;
  bool padded = false;
};

// Pushes `signal` in random chunks (empty ones, single samples, and chunks
// longer than a window) and collects what the stream emits.
StreamResult RunStream(StreamingFeatures& stream, const std::vector<float>& signal,
                       uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t window = stream.options().window_length;
  std::uniform_int_distribution<size_t> kind(0, 9);
  StreamResult result;
  auto collect = [&](uint64_t index, std::span<const float> values) {
    result.windows.push_back({index, std::vector<float>(values.begin(), values.end())});
  };
  size_t pos = 0;
  while (pos < signal.size()) {
    size_t chunk;
    switch (kind(rng)) {
      case 0: chunk = 0; break;
      case 1: chunk = 1; break;
      case 2: chunk = std::uniform_int_distribution<size_t>(window, 3 * window)(rng); break;
      default: chunk = std::uniform_int_distribution<size_t>(1, window / 3 + 1)(rng); break;
    }
    chunk = std::min(chunk, signal.size() - pos);
    stream.Push(std::span<const float>(signal).subspan(pos, chunk), collect);
    pos += chunk;
  }
  EXPECT_EQ(stream.samples_pushed(), signal.size());
  result.padded = stream.Finish(collect);
  EXPECT_EQ(stream.samples_pushed(), 0u) << "Finish resets the stream";
  EXPECT_EQ(stream.windows_emitted(), 0u) << "Finish resets the stream";
  return result;
}

void ExpectSameAsOffline(const FeatureWindowOptions& o, const std::vector<float>& signal,
                         const StreamResult& got, const std::string& where) {
  bool padded = false;
  absl::StatusOr<std::vector<std::vector<float>>> want = FeatureWindows(o, signal, &padded);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_EQ(got.windows.size(), want->size()) << where;
  EXPECT_EQ(got.padded, padded) << where;
  for (size_t i = 0; i < want->size(); ++i) {
    EXPECT_EQ(got.windows[i].index, i) << where;
    ASSERT_EQ(got.windows[i].values.size(), (*want)[i].size()) << where;
    EXPECT_EQ(std::memcmp(got.windows[i].values.data(), (*want)[i].data(),
                          (*want)[i].size() * sizeof(float)),
              0)
        << where << " window " << i;
  }
}

// Lengths around every boundary: empty, shorter than a frame, shorter than a
// window, exactly whole windows, one past, inside the samples no frame covers,
// and several windows with a tail.
std::vector<size_t> Lengths(const FeatureWindowOptions& o) {
  const size_t wl = o.window_length, wh = o.window_hop, fl = o.log_mel.frame_length;
  return {0,          1,           fl - 1,          fl,          wl - 1,
          wl,         wl + 1,      wl + wh - 1,     wl + wh,     wl + 3 * wh,
          wl + 3 * wh + wh / 2,    3 * wl + 7,      wl + 5 * wh - 1};
}

TEST(StreamingFeatures, EqualsFeatureWindowsUnderRandomChunking) {
  for (const Config& config : Configs()) {
    absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(config.options);
    ASSERT_TRUE(stream.ok()) << stream.status();
    uint32_t seed = 1;
    for (size_t length : Lengths(config.options)) {
      const std::vector<float> signal = RandomSignal(length, 1000 + static_cast<uint32_t>(length));
      for (int split = 0; split < 4; ++split, ++seed) {
        const std::string where = absl::StrCat("config ", config.name, " length ", length,
                                               " chunk seed ", seed);
        // The same object every time: Finish must leave it ready for a new stream.
        const StreamResult got = RunStream(*stream, signal, seed);
        ExpectSameAsOffline(config.options, signal, got, where);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(StreamingFeatures, OneSampleAtATimeAndAllAtOnceAgree) {
  const FeatureWindowOptions o = Configs()[2].options;
  const std::vector<float> signal = RandomSignal(1000, 8);
  absl::StatusOr<StreamingFeatures> a = StreamingFeatures::Create(o);
  absl::StatusOr<StreamingFeatures> b = StreamingFeatures::Create(o);
  ASSERT_TRUE(a.ok() && b.ok());
  StreamResult single, whole;
  auto into = [](StreamResult* r) {
    return [r](uint64_t index, std::span<const float> v) {
      r->windows.push_back({index, std::vector<float>(v.begin(), v.end())});
    };
  };
  auto single_fn = into(&single);
  auto whole_fn = into(&whole);
  for (float x : signal) a->Push(std::span<const float>(&x, 1), single_fn);
  single.padded = a->Finish(single_fn);
  b->Push(signal, whole_fn);
  whole.padded = b->Finish(whole_fn);
  ExpectSameAsOffline(o, signal, single, "one sample at a time");
  ExpectSameAsOffline(o, signal, whole, "all at once");
}

TEST(StreamingFeatures, EmitsAWindowAsSoonAsItsLastSampleArrives) {
  FeatureWindowOptions o;  // window 8000, hop 2000
  absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(o);
  ASSERT_TRUE(stream.ok()) << stream.status();
  const std::vector<float> signal = RandomSignal(10000, 3);
  std::vector<uint64_t> seen;
  auto fn = [&](uint64_t index, std::span<const float>) { seen.push_back(index); };
  // The last 40 samples of window 0 feed no frame of it, yet it waits for them.
  stream->Push(std::span<const float>(signal).subspan(0, 7999), fn);
  EXPECT_TRUE(seen.empty());
  stream->Push(std::span<const float>(signal).subspan(7999, 1), fn);
  EXPECT_EQ(seen, (std::vector<uint64_t>{0}));
  EXPECT_EQ(stream->windows_emitted(), 1u);
  stream->Push(std::span<const float>(signal).subspan(8000, 2000), fn);
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1}));
  // Exactly on a window boundary: nothing remains, so no padded window.
  EXPECT_FALSE(stream->Finish(fn));
  EXPECT_EQ(seen, (std::vector<uint64_t>{0, 1}));
}

TEST(StreamingFeatures, EmptyStreamEmitsNothing) {
  absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(FeatureWindowOptions{});
  ASSERT_TRUE(stream.ok()) << stream.status();
  int calls = 0;
  auto fn = [&](uint64_t, std::span<const float>) { ++calls; };
  stream->Push({}, fn);
  EXPECT_FALSE(stream->Finish(fn));
  EXPECT_EQ(calls, 0);
}

TEST(StreamingFeatures, PaddedTailOfSilenceIsTheLogFloor) {
  // 30 samples of a 107-sample window: frames 1.. start past the data and are
  // all zeros, so every value from the third frame on is ln(log_floor).
  FeatureWindowOptions o = Configs()[2].options;
  absl::StatusOr<StreamingFeatures> stream = StreamingFeatures::Create(o);
  ASSERT_TRUE(stream.ok()) << stream.status();
  const std::vector<float> signal = RandomSignal(30, 4);
  std::vector<float> window;
  auto fn = [&](uint64_t, std::span<const float> v) { window.assign(v.begin(), v.end()); };
  stream->Push(signal, fn);
  EXPECT_TRUE(window.empty());
  EXPECT_TRUE(stream->Finish(fn));
  const size_t frames = o.frames_per_window();
  ASSERT_EQ(window.size(), o.window_values());
  const float floor_value = std::log(o.log_mel.log_floor);
  for (size_t b = 0; b < o.log_mel.num_bands; ++b) {
    EXPECT_GT(window[b * frames + 0], floor_value) << "band " << b;
    for (size_t t = 3; t < frames; ++t) EXPECT_EQ(window[b * frames + t], floor_value);
  }
}

}  // namespace
}  // namespace wavepool::dsp
