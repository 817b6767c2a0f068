#include "server/metrics.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <set>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace wavepool::server {
namespace {

bool IsMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(std::string_view s) {
  return IsMetricName(s) && s.find(':') == std::string_view::npos;
}

// HELP text escapes backslash and newline; label values also the double quote.
void AppendEscaped(std::string_view s, bool quote, std::string& out) {
  for (const char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="x",b="y"` plus `,le="..."` when `le` is set, then `}`; nothing for no labels.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  const std::string* le, std::string& out) {
  if (names.empty() && le == nullptr) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    AppendEscaped(values[i], /*quote=*/true, out);
    out += '"';
  }
  if (le != nullptr) {
    if (!names.empty()) out += ',';
    out += "le=\"";
    out += *le;
    out += '"';
  }
  out += '}';
}

void AppendHeader(const MetricFamily& f, std::string_view type, std::string& out) {
  out += "# HELP ";
  out += f.name();
  out += ' ';
  AppendEscaped(f.help(), /*quote=*/false, out);
  out += "\n# TYPE ";
  out += f.name();
  out += ' ';
  out += type;
  out += '\n';
}

template <typename T>
constexpr std::string_view TypeName() {
  if constexpr (std::is_same_v<T, Counter>) return "counter";
  if constexpr (std::is_same_v<T, Gauge>) return "gauge";
  return "histogram";
}

}  // namespace

void AppendPrometheusDouble(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  // Go's strconv.FormatFloat(v, 'g', -1, 64), which Prometheus' clients use:
  // shortest round-trip digits, exponent form when the exponent is < -4 or >= 6
  // (the C++ "general" form switches at the digit count instead: 1e+03, not 1000).
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string_view sci(buf, r.ptr - buf);
  int exponent = 0;
  const size_t e = sci.find('e');
  const char* exp_begin = sci.data() + e + 1;
  if (*exp_begin == '+') ++exp_begin;
  std::from_chars(exp_begin, sci.data() + sci.size(), exponent);
  if (exponent < -4 || exponent >= 6) {
    out += sci;
    return;
  }
  r = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::fixed);
  out.append(buf, r.ptr - buf);
}

// --- Histogram ---

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // lower_bound: the first bound >= value, i.e. the bucket "le" holds it. NaN
  // compares false to everything, so it is sent to +Inf explicitly (as Go does).
  const size_t i = std::isnan(value)
                       ? bounds_.size()
                       : std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// --- Family ---

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
    : MetricFamily(std::move(name), std::move(help), std::move(label_names)),
      bounds_(std::move(bounds)) {}

template <typename T>
T& Family<T>::WithLabels(std::span<const std::string_view> values) {
  assert(values.size() == label_names().size() && "one value per label name");
  std::vector<std::string> key(label_names().size());
  for (size_t i = 0; i < key.size() && i < values.size(); ++i) key[i] = std::string(values[i]);
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<T>& child = children_[std::move(key)];
  if (child == nullptr) {
    if constexpr (std::is_same_v<T, Histogram>) {
      child = std::make_unique<Histogram>(bounds_);
    } else {
      child = std::make_unique<T>();
    }
  }
  return *child;
}

template <typename T>
void Family<T>::Render(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (children_.empty()) return;
  AppendHeader(*this, TypeName<T>(), out);
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      const Histogram::Snapshot s = child->Read();
      std::string le;
      for (size_t i = 0; i < s.cumulative.size(); ++i) {
        le.clear();
        if (i < bounds_.size()) {
          AppendPrometheusDouble(bounds_[i], le);
        } else {
          le = "+Inf";
        }
        out += name();
        out += "_bucket";
        AppendLabels(label_names(), values, &le, out);
        absl::StrAppend(&out, " ", s.cumulative[i], "\n");
      }
      out += name();
      out += "_sum";
      AppendLabels(label_names(), values, nullptr, out);
      out += ' ';
      AppendPrometheusDouble(s.sum, out);
      out += '\n';
      out += name();
      out += "_count";
      AppendLabels(label_names(), values, nullptr, out);
      absl::StrAppend(&out, " ", s.count, "\n");
    } else {
      out += name();
      AppendLabels(label_names(), values, nullptr, out);
      out += ' ';
      if constexpr (std::is_same_v<T, Counter>) {
        absl::StrAppend(&out, child->value());
      } else {
        AppendPrometheusDouble(child->value(), out);
      }
      out += '\n';
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- MetricsRegistry ---

absl::Status MetricsRegistry::CheckNew(std::string_view name,
                                       const std::vector<std::string>& label_names,
                                       bool histogram) const {
  const std::string n(name);  // absl::StrCat takes absl::string_view, distinct from std's here
  if (!IsMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name \"", n, "\" must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
  }
  if (families_.contains(name)) {
    return absl::InvalidArgumentError(absl::StrCat("metric \"", n, "\" is already registered"));
  }
  std::set<std::string_view> seen;
  for (const std::string& l : label_names) {
    if (!IsLabelName(l) || l.starts_with("__")) {
      return absl::InvalidArgumentError(absl::StrCat(
          n, ": label name \"", l, "\" must match [a-zA-Z_][a-zA-Z0-9_]* without a leading __"));
    }
    if (histogram && l == "le") {
      return absl::InvalidArgumentError(
          absl::StrCat(n, ": a histogram cannot have a label named \"le\" (its buckets use it)"));
    }
    if (!seen.insert(l).second) {
      return absl::InvalidArgumentError(absl::StrCat(n, ": label \"", l, "\" appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CounterFamily*> MetricsRegistry::AddCounter(std::string_view name,
                                                           std::string_view help,
                                                           std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names, false));
  const bool no_labels = label_names.empty();
  auto* f = new CounterFamily(std::string(name), std::string(help), std::move(label_names), {});
  families_.emplace(std::string(name), std::unique_ptr<MetricFamily>(f));
  if (no_labels) f->Get();
  return f;
}

absl::StatusOr<GaugeFamily*> MetricsRegistry::AddGauge(std::string_view name,
                                                       std::string_view help,
                                                       std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names, false));
  const bool no_labels = label_names.empty();
  auto* f = new GaugeFamily(std::string(name), std::string(help), std::move(label_names), {});
  families_.emplace(std::string(name), std::unique_ptr<MetricFamily>(f));
  if (no_labels) f->Get();
  return f;
}

absl::StatusOr<HistogramFamily*> MetricsRegistry::AddHistogram(
    std::string_view name, std::string_view help, std::vector<std::string> label_names,
    std::vector<double> bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckNew(name, label_names, true));
  const std::string n(name);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          n, ": bucket bound ", i, " (", bounds[i], ") must be finite; +Inf is implicit"));
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(n, ": bucket bounds must increase, but ",
                                                     bounds[i], " follows ", bounds[i - 1]));
    }
  }
  const bool no_labels = label_names.empty();
  auto* f = new HistogramFamily(std::string(name), std::string(help), std::move(label_names),
                                std::move(bounds));
  families_.emplace(std::string(name), std::unique_ptr<MetricFamily>(f));
  if (no_labels) f->Get();
  return f;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

// --- ServerMetrics ---

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    std::string_view build_version) {
  auto m = std::unique_ptr<ServerMetrics>(new ServerMetrics());
  MetricsRegistry& r = m->registry_;
  const std::vector<std::string> mv = {"model", "version"};
  auto bounds = [](std::span<const double> b) { return std::vector<double>(b.begin(), b.end()); };

  ASSIGN_OR_RETURN(m->streams_open_,
                   r.AddGauge("wavepool_streams_open",
                              "StreamClassify calls now open, by the model version they use.", mv));
  ASSIGN_OR_RETURN(m->streams_total_,
                   r.AddCounter("wavepool_streams_total",
                                "StreamClassify calls opened, by the model version they use.", mv));
  ASSIGN_OR_RETURN(m->windows_total_,
                   r.AddCounter("wavepool_windows_total",
                                "Window results produced (padded tail windows included).", mv));
  ASSIGN_OR_RETURN(m->batch_size_,
                   r.AddHistogram("wavepool_batch_size", "Windows per network run.", mv,
                                  bounds(kBatchSizeBounds)));
  ASSIGN_OR_RETURN(m->queue_delay_,
                   r.AddHistogram("wavepool_queue_delay_seconds",
                                  "Time a window waited in the batcher before its network run.",
                                  mv, bounds(kQueueDelayBounds)));
  ASSIGN_OR_RETURN(m->inference_,
                   r.AddHistogram("wavepool_inference_seconds",
                                  "Wall time of one batch's network run.", mv,
                                  bounds(kInferenceBounds)));
  ASSIGN_OR_RETURN(
      m->window_latency_,
      r.AddHistogram("wavepool_window_latency_seconds",
                     "Server-side latency of a window: its last sample received to its result "
                     "queued for sending.",
                     mv, bounds(kWindowLatencyBounds)));
  ASSIGN_OR_RETURN(m->errors_,
                   r.AddCounter("wavepool_errors_total",
                                "RPCs that ended with an error, by method and gRPC status code.",
                                {"method", "code"}));
  ASSIGN_OR_RETURN(GaugeFamily * loaded,
                   r.AddGauge("wavepool_models_loaded", "Model versions loaded and servable."));
  m->models_loaded_ = &loaded->Get();
  ASSIGN_OR_RETURN(CounterFamily * load_errors,
                   r.AddCounter("wavepool_model_load_errors_total",
                                "Model version folders that failed to load."));
  m->model_load_errors_ = &load_errors->Get();
  ASSIGN_OR_RETURN(GaugeFamily * build_info,
                   r.AddGauge("wavepool_build_info",
                              "Always 1; the version label says which build is running.",
                              {"version"}));
  build_info->WithLabels({build_version}).Set(1);
  return m;
}

const ModelMetrics& ServerMetrics::ForModel(std::string_view model, int64_t version) {
  std::lock_guard<std::mutex> lock(mu_);
  std::unique_ptr<ModelMetrics>& m = models_[{std::string(model), version}];
  if (m == nullptr) {
    const std::string v = absl::StrCat(version);
    const std::initializer_list<std::string_view> labels = {model, v};
    m = std::make_unique<ModelMetrics>(ModelMetrics{
        .streams_open = &streams_open_->WithLabels(labels),
        .streams_total = &streams_total_->WithLabels(labels),
        .windows_total = &windows_total_->WithLabels(labels),
        .batch_size = &batch_size_->WithLabels(labels),
        .queue_delay_seconds = &queue_delay_->WithLabels(labels),
        .inference_seconds = &inference_->WithLabels(labels),
        .window_latency_seconds = &window_latency_->WithLabels(labels),
    });
  }
  return *m;
}

Counter& ServerMetrics::Errors(std::string_view method, absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  if (name.empty()) name = absl::StrCat("CODE_", static_cast<int>(code));  // outside 0..16
  return errors_->WithLabels({method, name});
}

}  // namespace wavepool::server
