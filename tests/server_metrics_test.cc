// The metrics registry against hand-written exposition text (format 0.0.4, as
// https://prometheus.io/docs/instrumenting/exposition_formats/ specifies it),
// exact totals under concurrent updates, and no heap use on the hot path
// (this file counts operator new calls while a flag is set).
#include "server/metrics.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_news{0};
// Called through a pointer so GCC does not pair the inlined free with `new`
// (-Wmismatched-new-delete); both sides of the pair are replaced here.
void (*volatile g_free)(void*) = std::free;
}  // namespace

void* operator new(std::size_t size) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { g_free(p); }
void operator delete[](void* p) noexcept { g_free(p); }
void operator delete(void* p, std::size_t) noexcept { g_free(p); }
void operator delete[](void* p, std::size_t) noexcept { g_free(p); }

namespace wavepool::server {
namespace {

using ::testing::HasSubstr;

std::string Format(double v) {
  std::string s;
  AppendPrometheusDouble(v, s);
  return s;
}

TEST(PrometheusDouble, FormatsAsGoStrconvGShortest) {
  // Expected strings are Go's strconv.FormatFloat(v, 'g', -1, 64), which the
  // Prometheus clients write: exponent form when the exponent is < -4 or >= 6.
  EXPECT_EQ(Format(0), "0");
  EXPECT_EQ(Format(1), "1");
  EXPECT_EQ(Format(-1.5), "-1.5");
  EXPECT_EQ(Format(0.1), "0.1");
  EXPECT_EQ(Format(0.0005), "0.0005");
  EXPECT_EQ(Format(50e-6), "5e-05");
  EXPECT_EQ(Format(1e-5), "1e-05");
  EXPECT_EQ(Format(128), "128");
  EXPECT_EQ(Format(1000), "1000");
  EXPECT_EQ(Format(123456), "123456");
  EXPECT_EQ(Format(1e6), "1e+06");
  EXPECT_EQ(Format(1234567.5), "1.2345675e+06");
  EXPECT_EQ(Format(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(Format(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Format(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Format(std::nan("")), "NaN");
}

TEST(MetricsRegistry, RendersHandWrittenExpositionText) {
  MetricsRegistry r;
  // Registered out of name order: the output sorts families by name.
  auto hist = r.AddHistogram("app_latency_seconds", "Latency.", {"op"}, {0.0005, 0.5, 1, 2e6});
  auto gauge = r.AddGauge("app_temperature", "Temperature.");
  auto unused = r.AddCounter("app_unused_total", "Never touched.", {"x"});
  auto counter = r.AddCounter("app_requests_total", "Requests.\nBackslash \\ and \"quote\".",
                              {"path", "code"});
  ASSERT_TRUE(hist.ok() && gauge.ok() && unused.ok() && counter.ok());

  (*counter)->WithLabels({"/b", "200"}).Increment(3);
  (*counter)->WithLabels({"/a\\\"\n", "500"}).Increment();
  (*counter)->WithLabels({"/b", "200"}).Increment();
  (*gauge)->Get().Set(-1.5);
  Histogram& read = (*hist)->WithLabels({"read"});
  // 2^-13, exactly on a bound, between bounds, above the last finite bound...
  for (double v : {0.0001220703125, 0.5, 0.75, 3.0}) read.Observe(v);
  (*hist)->WithLabels({"write"});  // ...and a child that saw nothing.

  const std::string expected =
      "# HELP app_latency_seconds Latency.\n"
      "# TYPE app_latency_seconds histogram\n"
      "app_latency_seconds_bucket{op=\"read\",le=\"0.0005\"} 1\n"
      "app_latency_seconds_bucket{op=\"read\",le=\"0.5\"} 2\n"
      "app_latency_seconds_bucket{op=\"read\",le=\"1\"} 3\n"
      "app_latency_seconds_bucket{op=\"read\",le=\"2e+06\"} 4\n"
      "app_latency_seconds_bucket{op=\"read\",le=\"+Inf\"} 4\n"
      "app_latency_seconds_sum{op=\"read\"} 4.2501220703125\n"
      "app_latency_seconds_count{op=\"read\"} 4\n"
      "app_latency_seconds_bucket{op=\"write\",le=\"0.0005\"} 0\n"
      "app_latency_seconds_bucket{op=\"write\",le=\"0.5\"} 0\n"
      "app_latency_seconds_bucket{op=\"write\",le=\"1\"} 0\n"
      "app_latency_seconds_bucket{op=\"write\",le=\"2e+06\"} 0\n"
      "app_latency_seconds_bucket{op=\"write\",le=\"+Inf\"} 0\n"
      "app_latency_seconds_sum{op=\"write\"} 0\n"
      "app_latency_seconds_count{op=\"write\"} 0\n"
      "# HELP app_requests_total Requests.\\nBackslash \\\\ and \"quote\".\n"
      "# TYPE app_requests_total counter\n"
      "app_requests_total{path=\"/a\\\\\\\"\\n\",code=\"500\"} 1\n"
      "app_requests_total{path=\"/b\",code=\"200\"} 4\n"
      "# HELP app_temperature Temperature.\n"
      "# TYPE app_temperature gauge\n"
      "app_temperature -1.5\n";
  EXPECT_EQ(r.Render(), expected);
}

TEST(MetricsRegistry, UnlabelledFamiliesRenderZeroFromTheStart) {
  MetricsRegistry r;
  ASSERT_TRUE(r.AddCounter("c_total", "C.").ok());
  ASSERT_TRUE(r.AddHistogram("h", "H.", {}, {1}).ok());
  EXPECT_EQ(r.Render(),
            "# HELP c_total C.\n# TYPE c_total counter\nc_total 0\n"
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\n"
            "h_sum 0\nh_count 0\n");
}

TEST(MetricsRegistry, RejectsBadNamesLabelsAndBounds) {
  MetricsRegistry r;
  ASSERT_TRUE(r.AddCounter("ok_total", "").ok());
  struct Case {
    absl::Status status;
    const char* message_part;
  };
  const Case cases[] = {
      {r.AddCounter("ok_total", "").status(), "already registered"},
      {r.AddCounter("1bad", "").status(), "must match"},
      {r.AddGauge("bad-name", "").status(), "must match"},
      {r.AddGauge("", "").status(), "must match"},
      {r.AddCounter("c", "", {"a:b"}).status(), "label name \"a:b\""},
      {r.AddCounter("c", "", {"__reserved"}).status(), "leading __"},
      {r.AddCounter("c", "", {"a", "a"}).status(), "appears twice"},
      {r.AddHistogram("h", "", {"le"}, {1}).status(), "named \"le\""},
      {r.AddHistogram("h", "", {}, {1, 1}).status(), "must increase"},
      {r.AddHistogram("h", "", {}, {2, 1}).status(), "must increase"},
      {r.AddHistogram("h", "", {}, {1, std::numeric_limits<double>::infinity()}).status(),
       "must be finite"},
      {r.AddHistogram("h", "", {}, {std::nan("")}).status(), "must be finite"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.status.code(), absl::StatusCode::kInvalidArgument) << c.status;
    EXPECT_THAT(std::string(c.status.message()), HasSubstr(c.message_part));
  }
  // None of the failures registered anything.
  EXPECT_EQ(r.Render(), "# HELP ok_total \n# TYPE ok_total counter\nok_total 0\n");
}

TEST(Histogram, NaNCountsInInfBucketOnly) {
  const std::vector<double> bounds = {1, 2};
  Histogram h(bounds);
  h.Observe(std::nan(""));
  h.Observe(2);
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 1, 2}));
  EXPECT_EQ(s.count, 2u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(Metrics, ConcurrentUpdatesAddUpExactly) {
  MetricsRegistry r;
  auto counter = r.AddCounter("c_total", "", {"k"});
  auto gauge = r.AddGauge("g", "", {"k"});
  auto hist = r.AddHistogram("h", "", {"k"}, {0.25, 1});
  ASSERT_TRUE(counter.ok() && gauge.ok() && hist.ok());
  constexpr int kThreads = 8;
  constexpr int kIterations = 100000;
  std::vector<Counter*> counters(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread looks the same children up itself, racing on creation.
      Counter& c = (*counter)->WithLabels({"shared"});
      Gauge& g = (*gauge)->WithLabels({"shared"});
      Histogram& h = (*hist)->WithLabels({"shared"});
      counters[t] = &c;
      for (int i = 0; i < kIterations; ++i) {
        c.Increment();
        g.Add(1);
        g.Add(-0.5);  // halves and wholes: every partial sum is exact in a double
        h.Observe((i % 4) * 0.5);  // 0, 0.5, 1, 1.5 in turn
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (Counter* c : counters) EXPECT_EQ(c, counters[0]) << "one child per label set";
  const uint64_t n = uint64_t{kThreads} * kIterations;
  EXPECT_EQ(counters[0]->value(), n);
  EXPECT_EQ((*gauge)->WithLabels({"shared"}).value(), 0.5 * n);
  const Histogram::Snapshot s = (*hist)->WithLabels({"shared"}).Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{n / 4, 3 * n / 4, n}));
  EXPECT_EQ(s.sum, 0.75 * n);  // mean of 0, 0.5, 1, 1.5
}

TEST(Metrics, HotPathDoesNotAllocate) {
  MetricsRegistry r;
  auto counter = r.AddCounter("c_total", "", {"k"});
  auto gauge = r.AddGauge("g", "", {"k"});
  auto hist = r.AddHistogram("h", "", {"k"}, {0.25, 1});
  ASSERT_TRUE(counter.ok() && gauge.ok() && hist.ok());
  Counter& c = (*counter)->WithLabels({"x"});
  Gauge& g = (*gauge)->WithLabels({"x"});
  Histogram& h = (*hist)->WithLabels({"x"});
  g_news = 0;
  g_counting = true;
  for (int i = 0; i < 1000; ++i) {
    c.Increment();
    g.Increment();
    g.Decrement();
    g.Set(i);
    h.Observe(i * 0.001);
    h.Observe(std::chrono::microseconds(i));
  }
  g_counting = false;
  EXPECT_EQ(g_news.load(), 0);
  // The counter itself works: it saw the calls above (and did not allocate to
  // count them, which a failing hook would otherwise hide).
  g_counting = true;
  const std::string rendered = r.Render();
  g_counting = false;
  EXPECT_GT(g_news.load(), 0) << "Render allocates, so the hook counts";
  EXPECT_THAT(rendered, HasSubstr("c_total{k=\"x\"} 1000\n"));
}

TEST(ServerMetrics, ForModelIsCachedAndRendersEveryFamily) {
  absl::StatusOr<std::unique_ptr<ServerMetrics>> m = ServerMetrics::Create("0.1.0");
  ASSERT_TRUE(m.ok()) << m.status();
  const ModelMetrics& digits = (*m)->ForModel("digits", 1);
  EXPECT_EQ(&digits, &(*m)->ForModel("digits", 1));
  EXPECT_NE(&digits, &(*m)->ForModel("digits", 2));
  EXPECT_NE(digits.windows_total, (*m)->ForModel("digits", 2).windows_total);

  digits.streams_open->Increment();
  digits.streams_total->Increment();
  digits.windows_total->Increment(7);
  digits.batch_size->Observe(3);
  digits.queue_delay_seconds->Observe(std::chrono::microseconds(40));
  digits.inference_seconds->Observe(0.002);
  digits.window_latency_seconds->Observe(0.004);
  (*m)->Errors("StreamClassify", absl::StatusCode::kResourceExhausted).Increment();
  (*m)->Errors("StreamClassify", absl::StatusCode::kResourceExhausted).Increment();
  (*m)->models_loaded().Set(3);
  (*m)->model_load_errors().Increment();

  const std::string text = (*m)->Render();
  for (const char* line : {
           "wavepool_build_info{version=\"0.1.0\"} 1\n",
           "wavepool_streams_open{model=\"digits\",version=\"1\"} 1\n",
           "wavepool_streams_open{model=\"digits\",version=\"2\"} 0\n",
           "wavepool_streams_total{model=\"digits\",version=\"1\"} 1\n",
           "wavepool_windows_total{model=\"digits\",version=\"1\"} 7\n",
           "wavepool_batch_size_bucket{model=\"digits\",version=\"1\",le=\"2\"} 0\n",
           "wavepool_batch_size_bucket{model=\"digits\",version=\"1\",le=\"4\"} 1\n",
           "wavepool_batch_size_bucket{model=\"digits\",version=\"1\",le=\"128\"} 1\n",
           "wavepool_batch_size_sum{model=\"digits\",version=\"1\"} 3\n",
           "wavepool_queue_delay_seconds_bucket{model=\"digits\",version=\"1\",le=\"5e-05\"} 1\n",
           "wavepool_queue_delay_seconds_bucket{model=\"digits\",version=\"1\",le=\"1\"} 1\n",
           "wavepool_inference_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.001\"} 0\n",
           "wavepool_inference_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.0025\"} 1\n",
           "wavepool_window_latency_seconds_bucket{model=\"digits\",version=\"1\",le=\"0.005\"} 1\n",
           "wavepool_window_latency_seconds_count{model=\"digits\",version=\"1\"} 1\n",
           "wavepool_errors_total{method=\"StreamClassify\",code=\"RESOURCE_EXHAUSTED\"} 2\n",
           "wavepool_models_loaded 3\n",
           "wavepool_model_load_errors_total 1\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  for (const char* family : {"wavepool_build_info gauge", "wavepool_streams_open gauge",
                             "wavepool_streams_total counter", "wavepool_windows_total counter",
                             "wavepool_batch_size histogram",
                             "wavepool_queue_delay_seconds histogram",
                             "wavepool_inference_seconds histogram",
                             "wavepool_window_latency_seconds histogram",
                             "wavepool_errors_total counter", "wavepool_models_loaded gauge",
                             "wavepool_model_load_errors_total counter"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + "\n"));
  }
}

}  // namespace
}  // namespace wavepool::server
