// A small Prometheus metrics registry: counters, gauges and histograms in
// labelled families, rendered in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
// Thread-safety and cost: a family's WithLabels() takes the family's mutex and
// may allocate, so look a child up once (per model version, per error kind) and
// keep the reference; children are never destroyed before their registry. The
// hot path on a child (Increment, Add, Set, Observe) is a relaxed atomic
// read-modify-write: no lock, no allocation. Render() may run concurrently with
// all of it; a scrape sees each value at some recent moment, and a histogram's
// _sum may lag its buckets by the observations in flight.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace wavepool::server {

// The Content-Type of Render()'s output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// A monotonically increasing count.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  // std::atomic<double>::fetch_add is a compare-and-swap loop (C++20).
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Increment() { Add(1); }
  void Decrement() { Add(-1); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with fixed upper bounds (value <= bound), plus
// the implicit +Inf bucket, and keeps their sum. NaN counts in +Inf only.
class Histogram {
 public:
  // `bounds` (finite, strictly increasing) must outlive the histogram; the
  // family that creates it owns them.
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  template <class Rep, class Period>
  void Observe(std::chrono::duration<Rep, Period> d) {
    Observe(std::chrono::duration<double>(d).count());  // seconds
  }

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // bounds().size() + 1 (the last is +Inf)
    double sum = 0;
    uint64_t count = 0;                // == cumulative.back()
  };
  Snapshot Read() const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0};
};

// What the registry holds: a named family of one metric type.
class MetricFamily {
 public:
  virtual ~MetricFamily() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends this family's # HELP, # TYPE and sample lines; nothing when a
  // labelled family has no children yet.
  virtual void Render(std::string& out) const = 0;

 protected:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

 private:
  std::string name_, help_;
  std::vector<std::string> label_names_;
};

// T is Counter, Gauge or Histogram (instantiated in metrics.cc only).
template <typename T>
class Family final : public MetricFamily {
 public:
  // The child for these label values (one per label name, in the same order),
  // created on first use. The reference stays valid for the registry's life.
  // A count that differs from label_names().size() is a programming error: it
  // asserts in debug builds; release builds pad with "" or drop the extras.
  T& WithLabels(std::span<const std::string_view> values);
  T& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  // The child of a family without labels.
  T& Get() { return WithLabels(std::span<const std::string_view>()); }

  void Render(std::string& out) const override;

 private:
  friend class MetricsRegistry;
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds);

  std::vector<double> bounds_;  // Histogram only
  mutable std::mutex mu_;
  // Sorted by label values: the stable order in which children are rendered.
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class MetricsRegistry {
 public:
  // INVALID_ARGUMENT when a name is not a Prometheus metric name
  // ([a-zA-Z_:][a-zA-Z0-9_:]*), a label name is not [a-zA-Z_][a-zA-Z0-9_]* or
  // starts with "__" or repeats, or the name is already registered.
  // Families without labels get their one child at once, so they render as 0.
  // The returned pointer stays valid for the registry's life. Thread-safe.
  absl::StatusOr<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names = {});
  // Also INVALID_ARGUMENT when `bounds` are not finite and strictly increasing
  // (+Inf is implicit) or a label is named "le".
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds);

  // The text exposition format 0.0.4: families sorted by name, children by
  // label values. Thread-safe.
  std::string Render() const;

 private:
  absl::Status CheckNew(std::string_view name, const std::vector<std::string>& label_names,
                        bool histogram) const;  // mu_ held

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<MetricFamily>, std::less<>> families_;
};

// The server's metrics, all prefixed wavepool_ (docs/metrics.md lists them).

// One model version's children, for the hot path: non-owning, never null, valid
// for the life of the ServerMetrics that made them.
struct ModelMetrics {
  Gauge* streams_open;                // StreamClassify calls now bound to this version
  Counter* streams_total;             // StreamClassify calls ever bound to it
  Counter* windows_total;             // window results produced (padded tails included)
  Histogram* batch_size;              // windows per network run
  Histogram* queue_delay_seconds;     // a window's wait in the batcher before its run
  Histogram* inference_seconds;       // one batch's network run
  Histogram* window_latency_seconds;  // window's last sample received -> result queued
};

class ServerMetrics {
 public:
  // Powers of two up to the default max_batch_size (32) and beyond, to 128.
  static constexpr std::array<double, 8> kBatchSizeBounds = {1, 2, 4, 8, 16, 32, 64, 128};
  // 50 us .. 1 s, dense around the default max_queue_delay_ms (2 ms).
  static constexpr std::array<double, 14> kQueueDelayBounds = {
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
      250e-3, 1};
  // 100 us (one small window) .. 2.5 s (a batch of 128 big windows on a busy core).
  static constexpr std::array<double, 14> kInferenceBounds = {
      100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
      1, 2.5};
  // 250 us .. 5 s: queue delay + inference + post-processing, under overload too.
  static constexpr std::array<double, 14> kWindowLatencyBounds = {
      250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5,
      5};

  // Registers every family and sets wavepool_build_info{version=build_version}
  // to 1. Fails only on a bug in the definitions (the tests render them all).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(std::string_view build_version);

  // The children for one model version, created on first call (under a mutex,
  // allocating) and the same object on every later call: call once when a
  // stream binds to its model (or when a version is loaded) and keep it.
  const ModelMetrics& ForModel(std::string_view model, int64_t version);
  // wavepool_errors_total{method, code}: method is the RPC's short name
  // ("StreamClassify"), code the canonical name ("RESOURCE_EXHAUSTED"); a
  // grpc::StatusCode converts with static_cast<absl::StatusCode> (same numbers).
  // Takes the family's mutex: fine on an error path; cache it if it is not one.
  Counter& Errors(std::string_view method, absl::StatusCode code);
  Gauge& models_loaded() { return *models_loaded_; }
  Counter& model_load_errors() { return *model_load_errors_; }

  // The body of GET /metrics.
  std::string Render() const { return registry_.Render(); }
  // For families the server adds beyond these.
  MetricsRegistry& registry() { return registry_; }

 private:
  ServerMetrics() = default;

  MetricsRegistry registry_;
  GaugeFamily* streams_open_ = nullptr;
  CounterFamily* streams_total_ = nullptr;
  CounterFamily* windows_total_ = nullptr;
  HistogramFamily* batch_size_ = nullptr;
  HistogramFamily* queue_delay_ = nullptr;
  HistogramFamily* inference_ = nullptr;
  HistogramFamily* window_latency_ = nullptr;
  CounterFamily* errors_ = nullptr;
  Gauge* models_loaded_ = nullptr;
  Counter* model_load_errors_ = nullptr;

  std::mutex mu_;
  std::map<std::pair<std::string, int64_t>, std::unique_ptr<ModelMetrics>> models_;
};

// Formats a sample value as Prometheus' own clients do (Go's 'g' with the
// shortest round-trip digits): "0.25", "5e-05", "1e+06", "+Inf", "-Inf", "NaN".
void AppendPrometheusDouble(double value, std::string& out);

}  // namespace wavepool::server
