// wavepool bench's latency histogram against exact order statistics, and its
// JSON report.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "clients/bench_stats.h"
#include "gtest/gtest.h"

namespace wavepool::cli {
namespace {

TEST(LatencyHistogram, BucketsTileTheRangeWithoutGaps) {
  // Bucket b+1 starts where bucket b ends, every value maps into the bucket
  // that contains it, and no bucket is wider than 1/128 of its start.
  uint64_t next = 0;
  for (size_t b = 0; b < 4352; ++b) {
    ASSERT_EQ(LatencyHistogram::BucketLow(b), next) << "bucket " << b;
    const uint64_t low = LatencyHistogram::BucketLow(b), width = LatencyHistogram::BucketWidth(b);
    ASSERT_EQ(LatencyHistogram::BucketOf(low), b);
    ASSERT_EQ(LatencyHistogram::BucketOf(low + width - 1), b);
    if (low >= 256) {
      ASSERT_LE(width * 128, low) << "bucket " << b;
    }
    next = low + width;
  }
  EXPECT_EQ(next, uint64_t{1} << 40);
  EXPECT_EQ(LatencyHistogram::BucketOf(uint64_t{1} << 50), 4351u);  // clamped to the last
}

TEST(LatencyHistogram, PercentilesMatchSortedValuesWithin0p4Percent) {
  const uint32_t seed = 20261127;
  std::mt19937_64 rng(seed);
  // Log-normal around 5 ms with a heavy tail, like window latencies.
  std::lognormal_distribution<double> dist(std::log(5000.0), 1.0);
  std::vector<int64_t> values(100000);
  LatencyHistogram h;
  for (int64_t& v : values) {
    v = static_cast<int64_t>(dist(rng));
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max_micros(), values.back());
  for (const double q : {0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const size_t rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(q * values.size())));
    const double exact = static_cast<double>(values[rank - 1]);
    // Half a bucket: 1/256 of the value above 256 µs, 0.5 µs below.
    EXPECT_NEAR(h.PercentileMicros(q), exact, std::max(0.5, exact / 256))
        << "q " << q << " seed " << seed;
  }
  double sum = 0;
  for (const int64_t v : values) sum += static_cast<double>(v);
  EXPECT_NEAR(h.mean_micros(), sum / values.size(), 1e-6 * sum / values.size());
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v : {7, 3, 250, -4, 100}) h.Record(v);  // -4 counts as 0
  EXPECT_EQ(h.PercentileMicros(0.2), 0);
  EXPECT_EQ(h.PercentileMicros(0.4), 3);
  EXPECT_EQ(h.PercentileMicros(0.6), 7);
  EXPECT_EQ(h.PercentileMicros(0.8), 100);
  EXPECT_EQ(h.PercentileMicros(1.0), 250);
  EXPECT_EQ(LatencyHistogram().PercentileMicros(0.5), 0);
}

TEST(LatencyHistogram, ConcurrentRecordsAreAllCounted) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 50000; ++i) h.Record(1000 * t + i % 1000);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(h.count(), 200000u);
  EXPECT_EQ(h.max_micros(), 3999);
  // Each thread's values span [1000 t, 1000 t + 999], 50 of each: thread 0's
  // quarter ends at 999.
  EXPECT_NEAR(h.PercentileMicros(0.25), 999, 999.0 / 256);
}

TEST(BenchJson, EmptyRunHasNullLatenciesAndCodesByName) {
  BenchResult r;
  r.model = "no\"pe";
  r.streams = 3;
  r.errors = 3;
  r.errors_by_code[StatusCodeName(5)] = 3;
  const std::string json = BenchJson(r);
  EXPECT_NE(json.find("\"model\":\"no\\\"pe\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"latency_ms\":{\"p50\":null,\"p90\":null,\"p99\":null,\"max\":null"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"errors\":3,\"errors_by_code\":{\"NOT_FOUND\":3}"), std::string::npos)
      << json;
  EXPECT_EQ(json.find("server_cpu"), std::string::npos) << json;  // only with --server-pid
  EXPECT_EQ(StatusCodeName(17), "CODE_17");
}

}  // namespace
}  // namespace wavepool::cli
