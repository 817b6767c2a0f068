// wavepool eval --continuous: long streams built from held-out recordings
// (digits separated by random 0.3-1.5 s gaps of silence or low noise), streamed
// through a real server; reports the digit-sequence error rate (edit distance /
// reference length) and the event timing error.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/cli.h"
#include "clients/digit_data.h"
#include "clients/flags.h"
#include "grpcpp/client_context.h"
#include "wavepool/v1/classifier.grpc.pb.h"

namespace wavepool::cli {
namespace {

struct RefDigit {
  std::string label;
  uint64_t start = 0, end = 0;
};

struct Stream {
  std::vector<float> samples;
  std::vector<RefDigit> digits;
};

// Every test clip once, in a seeded random order, `per_stream` to a stream.
std::vector<Stream> BuildStreams(const std::vector<Clip>& clips, int per_stream, double rate,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng() >> 11) * 0x1p-53;
  };
  std::vector<size_t> order(clips.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::normal_distribution<float> white(0, 1);
  std::vector<Stream> streams;
  auto gap = [&](Stream& s) {
    const size_t n = static_cast<size_t>(uniform(0.3, 1.5) * rate);
    const bool silent = uniform(0, 1) < 0.5;
    const float level = static_cast<float>(std::pow(10.0, uniform(-70, -45) / 20));
    for (size_t i = 0; i < n; ++i) s.samples.push_back(silent ? 0.0f : level * white(rng));
  };
  for (size_t i = 0; i < order.size(); ++i) {
    if (i % static_cast<size_t>(per_stream) == 0) {
      streams.emplace_back();
      gap(streams.back());
    }
    Stream& s = streams.back();
    const Clip& c = clips[order[i]];
    RefDigit d{std::to_string(c.digit), s.samples.size(), s.samples.size() + c.samples.size()};
    s.samples.insert(s.samples.end(), c.samples.begin(), c.samples.end());
    s.digits.push_back(d);
    gap(s);
  }
  return streams;
}

// Levenshtein alignment; returns the distance and the matched (ref, hyp) pairs.
size_t Align(const std::vector<std::string>& ref, const std::vector<std::string>& hyp,
             std::vector<std::pair<size_t, size_t>>* matches) {
  const size_t n = ref.size(), m = hyp.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1)});
    }
  }
  for (size_t i = n, j = m; i > 0 && j > 0;) {
    if (d[i][j] == d[i - 1][j - 1] + (ref[i - 1] == hyp[j - 1] ? 0 : 1)) {
      if (ref[i - 1] == hyp[j - 1]) matches->push_back({i - 1, j - 1});
      --i, --j;
    } else if (d[i][j] == d[i - 1][j] + 1) {
      --i;
    } else {
      --j;
    }
  }
  return d[n][m];
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int RunContinuousEval(const CommonOptions& common, const std::string& model) {
  const std::string data_dir = absl::GetFlag(FLAGS_data);
  if (data_dir.empty()) return Fail("eval --continuous needs --data DIR");
  const std::string split = absl::GetFlag(FLAGS_split);
  constexpr double kRate = 8000;  // FSDD's rate; streams are sent at it
  auto data = LoadDigitData(data_dir, split, kRate);
  if (!data.ok()) return Fail(std::string(data.status().message()));
  const std::vector<Clip>& clips = split == "all" ? data->train : data->test;
  if (clips.empty()) return Fail("the split has no held-out recordings");
  const auto streams = BuildStreams(clips, absl::GetFlag(FLAGS_digits_per_stream), kRate,
                                    absl::GetFlag(FLAGS_seed));
  auto stub = v1::Classifier::NewStub(MakeChannel(common));
  size_t ref_total = 0, errors = 0, hyp_total = 0;
  std::vector<double> start_err_ms, end_err_ms;
  for (size_t si = 0; si < streams.size(); ++si) {
    const Stream& s = streams[si];
    grpc::ClientContext ctx;
    auto call = stub->StreamClassify(&ctx);
    std::thread writer([&] {
      v1::StreamClassifyRequest req;
      req.mutable_config()->set_model(model);
      req.mutable_config()->set_sample_rate_hz(kRate);
      if (!call->Write(req)) return;
      const size_t chunk = 800;  // 100 ms
      for (size_t i = 0; i < s.samples.size(); i += chunk) {
        v1::StreamClassifyRequest c;
        const size_t end = std::min(s.samples.size(), i + chunk);
        for (size_t k = i; k < end; ++k) c.mutable_samples()->add_values(s.samples[k]);
        if (!call->Write(c)) return;
      }
      call->WritesDone();
    });
    std::vector<v1::Event> events;
    v1::StreamClassifyResponse resp;
    while (call->Read(&resp)) {
      if (resp.has_event()) events.push_back(resp.event());
    }
    writer.join();
    grpc::Status status = call->Finish();
    if (!status.ok()) return ReportRpcError(common, status);
    std::vector<std::string> ref, hyp;
    for (const auto& d : s.digits) ref.push_back(d.label);
    for (const auto& e : events) hyp.push_back(e.label());
    std::vector<std::pair<size_t, size_t>> matches;
    const size_t dist = Align(ref, hyp, &matches);
    errors += dist;
    ref_total += ref.size();
    hyp_total += hyp.size();
    for (auto [r, h] : matches) {
      start_err_ms.push_back(1000.0 * std::abs(static_cast<double>(events[h].start_sample()) -
                                               static_cast<double>(s.digits[r].start)) / kRate);
      end_err_ms.push_back(1000.0 * std::abs(static_cast<double>(events[h].end_sample()) -
                                             static_cast<double>(s.digits[r].end)) / kRate);
    }
    if (absl::GetFlag(FLAGS_verbose)) {
      std::printf("stream %zu: ref %s | hyp %s | errors %zu\n", si,
                  absl::StrJoin(ref, "").c_str(), absl::StrJoin(hyp, "").c_str(), dist);
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  std::printf("continuous: %zu streams, %zu reference digits, %zu events\n", streams.size(),
              ref_total, hyp_total);
  std::printf("sequence error rate %.2f%% (%zu edits / %zu digits)\n",
              100.0 * static_cast<double>(errors) / static_cast<double>(ref_total), errors, ref_total);
  std::printf("event timing error over %zu matched digits: start mean %.0f ms, median %.0f ms, "
              "p90 %.0f ms; end mean %.0f ms, median %.0f ms, p90 %.0f ms\n",
              start_err_ms.size(), mean(start_err_ms), Percentile(start_err_ms, 0.5),
              Percentile(start_err_ms, 0.9), mean(end_err_ms), Percentile(end_err_ms, 0.5),
              Percentile(end_err_ms, 0.9));
  return 0;
}

}  // namespace wavepool::cli
