// wavepool bench's latency histogram against exact order statistics, and its
// JSON report.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
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

TEST(BenchJson, FaultsByKindAndCodeAndTheWindowCheck) {
  BenchResult r;
  r.streams = 10;
  r.faulty_share = 0.2;
  r.faulty_streams = 2;
  r.faults["cancel"]["CANCELLED"] = 1;
  r.faults["silent"]["RESOURCE_EXHAUSTED"] = 1;
  r.checked_streams = 8;
  r.windows_expected = 80;
  r.windows_lost = 1;
  const std::string json = BenchJson(r);
  EXPECT_NE(json.find("\"faulty_share\":0.200,\"faulty_streams\":2,\"faults\":{\"cancel\":{"
                      "\"CANCELLED\":1},\"silent\":{\"RESOURCE_EXHAUSTED\":1}}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"checked_streams\":8,\"checked_errors\":0,\"windows_expected\":80,"
                      "\"windows_lost\":1,\"windows_disordered\":0"),
            std::string::npos)
      << json;
  EXPECT_TRUE(r.healthy_failed());
  r.windows_lost = 0;
  EXPECT_FALSE(r.healthy_failed());
  r.windows_disordered = 1;
  EXPECT_TRUE(r.healthy_failed());
}

TEST(AssignFaults, ExactShareEveryKindAndSeeded) {
  for (const uint64_t seed : {1u, 2u, 99u}) {
    SCOPED_TRACE(seed);
    const std::vector<FaultKind> a = AssignFaults(300, 0.1, seed);
    ASSERT_EQ(a.size(), 300u);
    std::map<FaultKind, int> count;
    for (FaultKind k : a) ++count[k];
    EXPECT_EQ(count[FaultKind::kNone], 270);
    // 30 faulty streams round the 6 kinds: 5 each.
    for (FaultKind k : {FaultKind::kVanish, FaultKind::kCancel, FaultKind::kDeadline,
                        FaultKind::kStall, FaultKind::kOneSample, FaultKind::kSilent}) {
      EXPECT_EQ(count[k], 5) << FaultKindName(k);
    }
    EXPECT_EQ(AssignFaults(300, 0.1, seed), a);  // the seed decides
  }
  EXPECT_NE(AssignFaults(300, 0.1, 1), AssignFaults(300, 0.1, 2));
  EXPECT_EQ(AssignFaults(7, 0, 1), std::vector<FaultKind>(7, FaultKind::kNone));
  for (FaultKind k : AssignFaults(7, 1, 1)) EXPECT_NE(k, FaultKind::kNone);
  // round(0.1 x 25) = 3 (2.5 rounds away from zero).
  int faulty = 0;
  for (FaultKind k : AssignFaults(25, 0.1, 3)) faulty += k != FaultKind::kNone;
  EXPECT_EQ(faulty, 3);
  EXPECT_TRUE(AssignFaults(0, 0.5, 1).empty());
}

TEST(FixedWindowCount, CompleteWindowsPlusThePaddedTail) {
  // Against a direct walk over window starts: window j covers [j hop, j hop +
  // length); a tail when the last real sample is past the last complete one.
  for (uint64_t length : {800u, 8000u}) {
    for (uint64_t hop : {400u, 800u, 2000u}) {
      for (uint64_t n = 0; n < 3 * length; n += 37) {
        uint64_t complete = 0;
        for (uint64_t start = 0; start + length <= n; start += hop) ++complete;
        const uint64_t covered = complete == 0 ? 0 : (complete - 1) * hop + length;
        const uint64_t want = complete + (n > covered ? 1 : 0);
        ASSERT_EQ(FixedWindowCount(n, length, hop), want)
            << "n " << n << " length " << length << " hop " << hop;
      }
    }
  }
  EXPECT_EQ(FixedWindowCount(24000, 8000, 2000), 9u);   // cli_bench_test.sh's realtime plan
  EXPECT_EQ(FixedWindowCount(105040, 8000, 2000), 50u);  // and its --chunks 101 run
}

}  // namespace
}  // namespace wavepool::cli
