#include "clients/digit_data.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "dsp/resampler.h"
#include "dsp/wav.h"

namespace wavepool::cli {
namespace {

double Rms(const float* s, size_t n) {
  if (n == 0) return 0;
  double e = 0;
  for (size_t i = 0; i < n; ++i) e += static_cast<double>(s[i]) * s[i];
  return std::sqrt(e / static_cast<double>(n));
}

double DbToGain(double db) { return std::pow(10.0, db / 20.0); }

// FSDD names: {digit}_{speaker}_{take}.wav, digit 0-9, speaker letters only.
bool ParseFsddName(const std::string& name, Clip* clip) {
  const std::vector<std::string> parts = absl::StrSplit(name, '_');
  if (parts.size() != 3 || parts[0].size() != 1 || parts[0][0] < '0' || parts[0][0] > '9') {
    return false;
  }
  if (parts[1].empty() || !std::all_of(parts[1].begin(), parts[1].end(),
                                       [](char c) { return absl::ascii_isalpha(c); })) {
    return false;
  }
  const std::string& last = parts[2];
  if (last.size() < 5 || last.substr(last.size() - 4) != ".wav") return false;
  const std::string take = last.substr(0, last.size() - 4);
  if (take.empty() || !std::all_of(take.begin(), take.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    return false;
  }
  clip->digit = parts[0][0] - '0';
  clip->speaker = parts[1];
  return absl::SimpleAtoi(take, &clip->take);
}

}  // namespace

absl::StatusOr<DigitData> LoadDigitData(const std::string& dir, const std::string& split,
                                        double model_rate_hz) {
  std::string held_out;
  if (split.rfind("speaker:", 0) == 0) {
    held_out = split.substr(8);
    if (held_out.empty()) return absl::InvalidArgumentError("--split speaker: needs a name");
  } else if (split != "official" && split != "all") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--split \"", split, "\" is not one of official, all, speaker:NAME"));
  }
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot read data folder ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  DigitData data;
  data.sample_rate_hz = model_rate_hz;
  bool speaker_seen = false;
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    Clip clip;
    if (!ParseFsddName(name, &clip)) continue;
    clip.path = path.string();
    absl::StatusOr<dsp::Audio> audio = dsp::ReadAudio(clip.path);
    if (!audio.ok()) return audio.status();
    if (audio->sample_rate_hz != model_rate_hz) {
      return absl::InvalidArgumentError(absl::StrCat(clip.path, " is at ", audio->sample_rate_hz,
                                                     " Hz; the model takes ", model_rate_hz));
    }
    clip.samples = dsp::Downmix(*audio);
    bool test = false;
    if (split == "official") test = clip.take < 5;
    if (!held_out.empty()) {
      test = clip.speaker == held_out;
      speaker_seen |= test;
    }
    (test ? data.test : data.train).push_back(std::move(clip));
  }
  if (!held_out.empty() && !speaker_seen) {
    return absl::NotFoundError(absl::StrCat("no recordings of speaker \"", held_out, "\" in ", dir));
  }
  if (data.train.empty() && data.test.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no FSDD recordings ({digit}_{speaker}_{take}.wav) in ", dir));
  }
  return data;
}

ExampleSynth::ExampleSynth(const DigitData& data, size_t window_samples,
                           const AugmentOptions& options, uint64_t seed)
    : data_(data), window_(window_samples), options_(options), rng_(seed) {}

double ExampleSynth::Uniform(double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(rng_() >> 11) * 0x1p-53;
}

std::vector<float> ExampleSynth::Speed(const std::vector<float>& in, double factor) {
  // Treat the recording as if it were captured at rate r * factor and convert it
  // back to r: factor > 1 makes it shorter and higher, as speaking faster does.
  const double rate = data_.sample_rate_hz;
  auto resampler = dsp::Resampler::Create(rate * factor, rate);
  if (!resampler.ok()) return in;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(static_cast<double>(in.size()) / factor) + 16);
  auto append = [&](std::span<const float> s) { out.insert(out.end(), s.begin(), s.end()); };
  if (!(*resampler)->Push(in, append).ok() || !(*resampler)->Finish(append).ok()) return in;
  return out;
}

void ExampleSynth::AddNoise(std::vector<float>& w, size_t begin, size_t end, double rms) {
  if (end <= begin || rms <= 0) return;
  std::normal_distribution<float> white(0.0f, 1.0f);
  const int kind = static_cast<int>(rng_() % 3);
  std::vector<float> n(end - begin);
  float b0 = 0, b1 = 0, b2 = 0;
  for (float& x : n) {
    const float v = white(rng_);
    if (kind == 0) {
      x = v;
    } else if (kind == 1) {  // pink, Paul Kellet's economy filter
      b0 = 0.99765f * b0 + v * 0.0990460f;
      b1 = 0.96300f * b1 + v * 0.2965164f;
      b2 = 0.57000f * b2 + v * 1.0526913f;
      x = b0 + b1 + b2 + v * 0.1848f;
    } else {  // brown (leaky integrator)
      b0 = 0.98f * b0 + v;
      x = b0;
    }
  }
  const double have = Rms(n.data(), n.size());
  if (have <= 0) return;
  const float scale = static_cast<float>(rms / have);
  for (size_t i = 0; i < n.size(); ++i) w[begin + i] += scale * n[i];
}

void ExampleSynth::Bed(std::vector<float>& w) {
  std::fill(w.begin(), w.end(), 0.0f);
  if (Uniform(0, 1) < 0.25) return;  // digital silence
  AddNoise(w, 0, w.size(), DbToGain(Uniform(-80, -30)));
}

void ExampleSynth::RandomEq(std::vector<float>& s) {
  // Another microphone or channel: a one- or two-pole low-pass at 1-3.8 kHz
  // (a dull recording loses the consonants' high frequencies), and/or a
  // first-order high-pass at 80-400 Hz (a thin one loses the low end).
  const double rate = data_.sample_rate_hz;
  if (Uniform(0, 1) < options_.lowpass_prob) {
    const double a = std::exp(-2 * M_PI * Uniform(1000, 3800) / rate);
    const int poles = Uniform(0, 1) < 0.5 ? 1 : 2;
    for (int p = 0; p < poles; ++p) {
      double y = 0;
      for (float& x : s) {
        y = a * y + (1 - a) * x;
        x = static_cast<float>(y);
      }
    }
  }
  if (Uniform(0, 1) < options_.highpass_prob) {
    const double a = std::exp(-2 * M_PI * Uniform(80, 400) / rate);
    double y = 0, prev = 0;
    for (float& x : s) {
      y = a * (y + x - prev);
      prev = x;
      x = static_cast<float>(y);
    }
  }
}

namespace {

// RBJ Audio EQ Cookbook shelving filter (shelf slope 1), applied in place.
void Shelf(std::vector<float>& s, bool high, double gain_db, double corner_hz, double rate) {
  const double A = std::pow(10.0, gain_db / 40), w0 = 2 * M_PI * corner_hz / rate;
  const double c = std::cos(w0), alpha = std::sin(w0) / 2 * std::sqrt(2.0), r = 2 * std::sqrt(A) * alpha;
  const double sg = high ? 1 : -1;  // the low shelf flips the cos terms' signs
  const double b0 = A * ((A + 1) + sg * (A - 1) * c + r);
  const double b1 = -sg * 2 * A * ((A - 1) + sg * (A + 1) * c);
  const double b2 = A * ((A + 1) + sg * (A - 1) * c - r);
  const double a0 = (A + 1) - sg * (A - 1) * c + r;
  const double a1 = sg * 2 * ((A - 1) - sg * (A + 1) * c);
  const double a2 = (A + 1) - sg * (A - 1) * c - r;
  ApplyBiquad(Biquad{b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0}, s);
}

}  // namespace

void ExampleSynth::Shelves(std::vector<float>& s) {
  const double rate = data_.sample_rate_hz;
  Shelf(s, /*high=*/true, Uniform(-15, 15), Uniform(800, 2500), rate);
  if (Uniform(0, 1) < 0.5) Shelf(s, /*high=*/false, Uniform(-10, 10), Uniform(150, 500), rate);
}

std::pair<size_t, size_t> ExampleSynth::EnergySpan(const std::vector<float>& s) {
  double total = 0;
  for (float x : s) total += static_cast<double>(x) * x;
  if (total <= 0) return {0, s.size()};
  double acc = 0;
  size_t a = 0, b = s.size();
  for (size_t i = 0; i < s.size(); ++i) {
    acc += static_cast<double>(s[i]) * s[i];
    if (acc >= 0.025 * total) { a = i; break; }
  }
  acc = 0;
  for (size_t i = s.size(); i-- > 0;) {
    acc += static_cast<double>(s[i]) * s[i];
    if (acc >= 0.025 * total) { b = i + 1; break; }
  }
  return {a, std::max(a + 1, b)};
}

WindowExample ExampleSynth::DigitExample(const Clip& clip) {
  const bool aug = options_.enabled;
  std::vector<float> s = clip.samples;
  if (aug && Uniform(0, 1) < options_.speed_prob) {
    s = Speed(s, Uniform(options_.speed_min, options_.speed_max));
  }
  if (aug && (options_.lowpass_prob > 0 || options_.highpass_prob > 0)) RandomEq(s);
  if (aug && options_.shelf_prob > 0 && Uniform(0, 1) < options_.shelf_prob) Shelves(s);
  // After the tilt: the channel's band limit cuts whatever the microphone gave.
  if (aug && options_.bandlimit_prob > 0) RandomBandLimit(options_, data_.sample_rate_hz, rng_, s);
  if (aug) {
    const float g = static_cast<float>(DbToGain(Uniform(options_.gain_db_min, options_.gain_db_max)));
    float peak = 0;
    for (float& x : s) {
      x *= g;
      peak = std::max(peak, std::abs(x));
    }
    if (peak > 0.99f) for (float& x : s) x *= 0.99f / peak;
  }
  // Crop a clip longer than the window around where its energy is.
  if (s.size() > window_) {
    auto [a, b] = EnergySpan(s);
    const size_t lo = b > window_ ? b - window_ : 0;
    const size_t hi = std::min(a, s.size() - window_);
    const size_t start = lo <= hi ? lo + static_cast<size_t>(Uniform(0, 1) * (hi - lo + 1))
                                  : std::min((a + b) / 2 - std::min((a + b) / 2, window_ / 2),
                                             s.size() - window_);
    s = std::vector<float>(s.begin() + static_cast<long>(start),
                           s.begin() + static_cast<long>(start + window_));
  }
  WindowExample ex;
  ex.label = clip.digit;
  ex.samples.assign(window_, 0.0f);
  if (aug) Bed(ex.samples);
  const size_t room = window_ - s.size();
  // A third of the time the digit comes first, as in a clip a client sends on
  // its own (the server pads its tail with zeros); otherwise anywhere.
  const bool clip_first = aug && Uniform(0, 1) < options_.clip_first_prob;
  size_t offset = aug ? std::min(room, static_cast<size_t>(Uniform(0, 1) * (room + 1))) : room / 2;
  if (clip_first) offset = std::min(room, static_cast<size_t>(Uniform(0, 0.05) * window_));
  for (size_t i = 0; i < s.size(); ++i) ex.samples[offset + i] += s[i];
  if (!aug) return ex;
  if (Uniform(0, 1) < options_.noise_prob) {
    const double rms = Rms(s.data(), s.size());
    AddNoise(ex.samples, 0, window_, rms / DbToGain(Uniform(options_.snr_db_min, options_.snr_db_max)));
  }
  if (Uniform(0, 1) < options_.neighbour_prob && !data_.train.empty()) {
    // The tail of a previous digit or the start of the next one at the far edge.
    const Clip& other = data_.train[rng_() % data_.train.size()];
    const size_t frag = std::min<size_t>(
        static_cast<size_t>(Uniform(0.05, 0.2) * static_cast<double>(other.samples.size())),
        std::max(offset, room - offset));
    const float g = static_cast<float>(DbToGain(Uniform(-12, 0)));
    if (offset >= room - offset) {  // space before the digit: the end of another
      for (size_t i = 0; i < frag && i < offset; ++i) {
        ex.samples[i] += g * other.samples[other.samples.size() - frag + i];
      }
    } else {  // space after: the start of another
      for (size_t i = 0; i < frag && i < room - offset; ++i) {
        ex.samples[window_ - frag + i] += g * other.samples[i];
      }
    }
  }
  if (clip_first || Uniform(0, 1) < options_.zero_tail_prob) {
    const size_t cut = offset + s.size() + static_cast<size_t>(Uniform(0, 1) * (room - offset));
    std::fill(ex.samples.begin() + static_cast<long>(std::min(cut, window_)), ex.samples.end(), 0.0f);
  }
  return ex;
}

WindowExample ExampleSynth::BackgroundExample() {
  WindowExample ex;
  ex.label = kBackgroundLabel;
  ex.samples.assign(window_, 0.0f);
  const double kind = Uniform(0, 1);
  if (kind < 0.3 || data_.train.empty()) {
    // Noise alone, from near silence up to fairly loud.
    Bed(ex.samples);
    if (Uniform(0, 1) < 0.5) AddNoise(ex.samples, 0, window_, DbToGain(Uniform(-60, -15)));
  } else if (kind < 0.5) {
    // The quiet edges of a recording (its first or last 30 ms), repeated.
    const Clip& c = data_.train[rng_() % data_.train.size()];
    const size_t edge = std::min<size_t>(240, c.samples.size());
    const bool head = Uniform(0, 1) < 0.5;
    const float* src = head ? c.samples.data() : c.samples.data() + c.samples.size() - edge;
    for (size_t i = 0; i < window_; ++i) {
      const size_t k = i % (2 * edge);  // back and forth, so no clicks at the seams
      ex.samples[i] = src[k < edge ? k : 2 * edge - 1 - k];
    }
    const float g = static_cast<float>(DbToGain(Uniform(-6, 12)));
    for (float& x : ex.samples) x *= g;
  } else {
    // Digits cut by the window's edges: the end of one at the start, and/or the
    // start of another at the end, each at most half a digit. In a stream these
    // are the windows between two words; they must not become a third word.
    Bed(ex.samples);
    const bool both = kind >= 0.8;
    const bool head = both || Uniform(0, 1) < 0.5;
    const bool tail = both || !head;
    for (int side = 0; side < 2; ++side) {
      if ((side == 0 && !head) || (side == 1 && !tail)) continue;
      const Clip& c = data_.train[rng_() % data_.train.size()];
      const size_t frag = std::min(
          window_ / 2, static_cast<size_t>(Uniform(0.02, 0.5) * static_cast<double>(c.samples.size())));
      const float g = static_cast<float>(DbToGain(Uniform(-18, 6)));
      if (side == 0) {
        for (size_t i = 0; i < frag; ++i) ex.samples[i] += g * c.samples[c.samples.size() - frag + i];
      } else {
        for (size_t i = 0; i < frag; ++i) ex.samples[window_ - frag + i] += g * c.samples[i];
      }
    }
  }
  if (Uniform(0, 1) < options_.zero_tail_prob) {
    const size_t cut = static_cast<size_t>(Uniform(0, 1) * static_cast<double>(window_));
    std::fill(ex.samples.begin() + static_cast<long>(cut), ex.samples.end(), 0.0f);
  }
  return ex;
}

std::vector<WindowExample> ExampleSynth::Epoch() {
  std::vector<WindowExample> out;
  out.reserve(data_.train.size() * 2);
  for (const Clip& c : data_.train) out.push_back(DigitExample(c));
  const size_t backgrounds = static_cast<size_t>(
      options_.background_fraction * static_cast<double>(data_.train.size()));
  for (size_t i = 0; i < backgrounds; ++i) out.push_back(BackgroundExample());
  std::shuffle(out.begin(), out.end(), rng_);
  return out;
}

void SpecAugment(const AugmentOptions& options, size_t bands, size_t frames, std::mt19937_64& rng,
                 std::vector<float>& features) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  for (int m = 0; m < options.freq_masks; ++m) {
    const size_t width = pick(static_cast<size_t>(options.freq_mask_max) + 1);
    if (width == 0 || width >= bands) continue;
    const size_t start = pick(bands - width + 1);
    std::fill(features.begin() + static_cast<long>(start * frames),
              features.begin() + static_cast<long>((start + width) * frames), 0.0f);
  }
  for (int m = 0; m < options.time_masks; ++m) {
    const size_t width = pick(static_cast<size_t>(options.time_mask_max) + 1);
    if (width == 0 || width >= frames) continue;
    const size_t start = pick(frames - width + 1);
    for (size_t b = 0; b < bands; ++b) {
      std::fill(features.begin() + static_cast<long>(b * frames + start),
                features.begin() + static_cast<long>(b * frames + start + width), 0.0f);
    }
  }
}

absl::Status AugmentOptions::ValidateVtlp() const {
  if (!(vtlp_prob >= 0 && vtlp_prob <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("--vtlp-prob (", vtlp_prob, ") must be in [0, 1]"));
  }
  if (!(vtlp_min > 0 && vtlp_min <= vtlp_max && vtlp_max < 2)) {
    return absl::InvalidArgumentError(absl::StrCat("--vtlp-min (", vtlp_min, ") and --vtlp-max (",
                                                   vtlp_max, ") must satisfy 0 < min <= max < 2"));
  }
  if (!(vtlp_boundary > 0 && vtlp_boundary < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the VTLP boundary (", vtlp_boundary, ") must be in (0, 1)"));
  }
  return absl::OkStatus();
}

absl::Status AugmentOptions::ValidateBandlimit(double sample_rate_hz) const {
  if (!(bandlimit_prob >= 0 && bandlimit_prob <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bandlimit-prob (", bandlimit_prob, ") must be in [0, 1]"));
  }
  if (!(bandlimit_min_hz > 0 && bandlimit_min_hz <= bandlimit_max_hz &&
        bandlimit_max_hz < sample_rate_hz / 2)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--bandlimit-min-hz (", bandlimit_min_hz, ") and --bandlimit-max-hz (", bandlimit_max_hz,
        ") must satisfy 0 < min <= max < ", sample_rate_hz / 2, " (half the model's rate)"));
  }
  return absl::OkStatus();
}

std::array<Biquad, 2> ButterworthLowpass4(double corner_hz, double rate_hz) {
  assert(corner_hz > 0 && corner_hz < rate_hz / 2);
  // The 4th-order Butterworth prototype's poles pair up into sections with
  // Q = 1 / (2 cos(theta)), theta = pi/8 and 3 pi/8 from the negative real axis.
  const double w0 = 2 * M_PI * corner_hz / rate_hz, c = std::cos(w0), sn = std::sin(w0);
  std::array<Biquad, 2> out;
  for (int k = 0; k < 2; ++k) {
    const double q = 1 / (2 * std::cos(M_PI * (2 * k + 1) / 8));
    const double alpha = sn / (2 * q), a0 = 1 + alpha;
    out[static_cast<size_t>(k)] = Biquad{(1 - c) / 2 / a0, (1 - c) / a0, (1 - c) / 2 / a0,
                                         -2 * c / a0, (1 - alpha) / a0};
  }
  return out;
}

void ApplyBiquad(const Biquad& q, std::span<float> s) {
  double x1 = 0, x2 = 0, y1 = 0, y2 = 0;
  for (float& v : s) {
    const double x = v;
    const double y = q.b0 * x + q.b1 * x1 + q.b2 * x2 - q.a1 * y1 - q.a2 * y2;
    x2 = x1;
    x1 = x;
    y2 = y1;
    y1 = y;
    v = static_cast<float>(y);
  }
}

void BandLimit(std::span<float> s, double corner_hz, double rate_hz) {
  for (const Biquad& q : ButterworthLowpass4(corner_hz, rate_hz)) ApplyBiquad(q, s);
}

double RandomBandLimit(const AugmentOptions& options, double rate_hz, std::mt19937_64& rng,
                       std::span<float> s) {
  auto unit = [&] { return static_cast<double>(rng() >> 11) * 0x1p-53; };
  if (options.bandlimit_prob <= 0 || unit() >= options.bandlimit_prob) return 0;
  const double corner =
      options.bandlimit_min_hz + (options.bandlimit_max_hz - options.bandlimit_min_hz) * unit();
  BandLimit(s, corner, rate_hz);
  return corner;
}

double VtlpWarpHz(double hz, double alpha, double boundary_hz, double top_hz) {
  const double low = boundary_hz * std::min(alpha, 1.0);
  const double f0 = low / alpha;
  if (hz <= f0) return alpha * hz;
  return top_hz - (top_hz - low) / (top_hz - f0) * (top_hz - hz);
}

void VtlpWarp(const dsp::MelOptions& mel, size_t frames, double alpha, double boundary,
              std::span<float> features) {
  const size_t bands = mel.num_bands;
  assert(features.size() == bands * frames && alpha > 0 && boundary > 0 && boundary < 1);
  const double mel_lo = dsp::HzToMel(mel.f_min_hz, mel.scale);
  const double step =
      (dsp::HzToMel(mel.f_max_hz, mel.scale) - mel_lo) / static_cast<double>(bands + 1);
  const std::vector<float> in(features.begin(), features.end());
  for (size_t b = 0; b < bands; ++b) {
    const double centre_hz = dsp::MelToHz(mel_lo + step * static_cast<double>(b + 1), mel.scale);
    const double warped_hz = VtlpWarpHz(centre_hz, alpha, boundary * mel.f_max_hz, mel.f_max_hz);
    double x = (dsp::HzToMel(warped_hz, mel.scale) - mel_lo) / step - 1;
    // The Hz -> mel -> Hz round trip is off by ~1e-13 band; snapping keeps
    // alpha = 1 (and any band that lands on a centre) an exact copy.
    if (std::abs(x - std::round(x)) < 1e-6) x = std::round(x);
    x = std::clamp(x, 0.0, static_cast<double>(bands - 1));
    const size_t i0 = static_cast<size_t>(x);
    const size_t i1 = std::min(i0 + 1, bands - 1);
    const float w = static_cast<float>(x - static_cast<double>(i0));
    for (size_t t = 0; t < frames; ++t) {
      const float a = in[i0 * frames + t], c = in[i1 * frames + t];
      // Clamped because a + w * (c - a) can round a hair past c in float.
      features[b * frames + t] =
          w == 0 ? a : std::clamp(a + w * (c - a), std::min(a, c), std::max(a, c));
    }
  }
}

double RandomVtlp(const AugmentOptions& options, const dsp::MelOptions& mel, size_t frames,
                  std::mt19937_64& rng, std::span<float> features) {
  auto unit = [&] { return static_cast<double>(rng() >> 11) * 0x1p-53; };
  if (options.vtlp_prob <= 0 || unit() >= options.vtlp_prob) return 1.0;
  const double alpha = options.vtlp_min + (options.vtlp_max - options.vtlp_min) * unit();
  VtlpWarp(mel, frames, alpha, options.vtlp_boundary, features);
  return alpha;
}

}  // namespace wavepool::cli
