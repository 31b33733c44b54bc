#include <cstdio>
#include <shardy/metrics.hpp>

namespace shardy {

struct PrometheusCollector::Counters {
  std::atomic<std::uint64_t> initialized{0}, refresh_changed{0}, refresh_unchanged{0}, fallbacks{0},
      closed{0};
  std::atomic<std::uint64_t> gets{0}, get_hits{0}, get_misses{0};
  std::atomic<std::uint64_t> multi_gets{0}, multi_get_keys{0}, multi_get_found{0};
  std::atomic<std::uint64_t> errors_get{0}, errors_multi_get{0}, errors_other{0};
  std::atomic<std::uint64_t> downloads{0}, download_bytes{0}, cache_hits{0}, open_errors{0};
  std::atomic<std::uint64_t> throttled{0}, denied{0};
  std::atomic<std::uint64_t> s3_requests{0}, s3_retries{0}, s3_errors{0};
  Histogram get_seconds, multi_get_seconds, download_seconds, limiter_wait_seconds;
};

namespace {
constexpr auto relaxed = std::memory_order_relaxed;
}

void PrometheusCollector::Histogram::observe(std::chrono::nanoseconds d) noexcept {
  const double s = std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < bounds.size() && s > bounds[i]) ++i;
  buckets[i].fetch_add(1, relaxed);
  count.fetch_add(1, relaxed);
  sum_ns.fetch_add(static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count()), relaxed);
}

PrometheusCollector::PrometheusCollector(std::string prefix)
    : prefix_(std::move(prefix)), c_(std::make_unique<Counters>()) {}
PrometheusCollector::~PrometheusCollector() = default;

void PrometheusCollector::on_reader_initialized(std::uint32_t) {
  c_->initialized.fetch_add(1, relaxed);
}
void PrometheusCollector::on_refresh(bool changed) {
  (changed ? c_->refresh_changed : c_->refresh_unchanged).fetch_add(1, relaxed);
}
void PrometheusCollector::on_fallback(std::string_view, std::string_view) {
  c_->fallbacks.fetch_add(1, relaxed);
}
void PrometheusCollector::on_reader_closed(std::uint32_t) { c_->closed.fetch_add(1, relaxed); }
void PrometheusCollector::on_get(std::chrono::nanoseconds latency, bool found) {
  c_->gets.fetch_add(1, relaxed);
  (found ? c_->get_hits : c_->get_misses).fetch_add(1, relaxed);
  c_->get_seconds.observe(latency);
}
void PrometheusCollector::on_multi_get(std::chrono::nanoseconds latency, std::size_t keys,
                                       std::size_t found) {
  c_->multi_gets.fetch_add(1, relaxed);
  c_->multi_get_keys.fetch_add(keys, relaxed);
  c_->multi_get_found.fetch_add(found, relaxed);
  c_->multi_get_seconds.observe(latency);
}
void PrometheusCollector::on_lookup_error(std::string_view op) {
  if (op == "get")
    c_->errors_get.fetch_add(1, relaxed);
  else if (op == "multi_get")
    c_->errors_multi_get.fetch_add(1, relaxed);
  else
    c_->errors_other.fetch_add(1, relaxed);
}
void PrometheusCollector::on_shard_download(std::uint32_t, std::uint64_t bytes,
                                            std::chrono::nanoseconds d) {
  c_->downloads.fetch_add(1, relaxed);
  c_->download_bytes.fetch_add(bytes, relaxed);
  c_->download_seconds.observe(d);
}
void PrometheusCollector::on_shard_cache_hit(std::uint32_t) {
  c_->cache_hits.fetch_add(1, relaxed);
}
void PrometheusCollector::on_shard_open_error(std::uint32_t) {
  c_->open_errors.fetch_add(1, relaxed);
}
void PrometheusCollector::on_rate_limiter_throttled(std::chrono::nanoseconds wait) {
  c_->throttled.fetch_add(1, relaxed);
  c_->limiter_wait_seconds.observe(wait);
}
void PrometheusCollector::on_rate_limiter_denied(std::uint64_t) {
  c_->denied.fetch_add(1, relaxed);
}
void PrometheusCollector::on_s3_request(std::string_view) { c_->s3_requests.fetch_add(1, relaxed); }
void PrometheusCollector::on_s3_retry(std::string_view, unsigned) {
  c_->s3_retries.fetch_add(1, relaxed);
}
void PrometheusCollector::on_s3_error(std::string_view) { c_->s3_errors.fetch_add(1, relaxed); }

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Builds the exposition text: one metric family per call, each with its HELP and TYPE lines,
// names prefixed with the collector's prefix.
class Exposition {
 public:
  explicit Exposition(const std::string& prefix) : prefix_(prefix) {}

  struct Series {
    std::string_view label_value;
    const std::atomic<std::uint64_t>& value;
  };

  void counter(std::string_view name, std::string_view help,
               const std::atomic<std::uint64_t>& value) {
    header(name, help, "counter");
    series(name, {}, {}, value.load(relaxed));
  }

  // A counter family with one series per value of `label`.
  void counter(std::string_view name, std::string_view help, std::string_view label,
               std::initializer_list<Series> by_label) {
    header(name, help, "counter");
    for (const auto& s : by_label) series(name, label, s.label_value, s.value.load(relaxed));
  }

  void histogram(std::string_view name, std::string_view help,
                 const PrometheusCollector::Histogram& h) {
    header(name, help, "histogram");
    const std::string n = prefix_ + std::string(name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.buckets[i].load(relaxed);
      out_ +=
          n + "_bucket{le=\"" + number(h.bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
    }
    cumulative += h.buckets[h.bounds.size()].load(relaxed);
    out_ += n + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
    out_ += n + "_sum " + number(static_cast<double>(h.sum_ns.load(relaxed)) / 1e9) + "\n";
    out_ += n + "_count " + std::to_string(h.count.load(relaxed)) + "\n";
  }

  std::string take() { return std::move(out_); }

 private:
  void header(std::string_view name, std::string_view help, std::string_view type) {
    const std::string n = prefix_ + std::string(name);
    out_ +=
        "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " " + std::string(type) + "\n";
  }

  // One sample line; `label` empty: no labels. Appended piece by piece: `"{" + std::string(...)`
  // trips g++ 12 -Wrestrict.
  void series(std::string_view name, std::string_view label, std::string_view label_value,
              std::uint64_t value) {
    out_ += prefix_;
    out_ += name;
    if (!label.empty()) {
      out_ += '{';
      out_ += label;
      out_ += "=\"";
      out_ += label_value;
      out_ += "\"}";
    }
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }

  const std::string& prefix_;
  std::string out_;
};

}  // namespace

std::string PrometheusCollector::render() const {
  const auto& c = *c_;
  Exposition e(prefix_);
  e.counter("reader_gets_total", "Successful get calls.", c.gets);
  e.counter("reader_get_results_total", "Successful get calls by outcome.", "result",
            {{"hit", c.get_hits}, {"miss", c.get_misses}});
  e.histogram("reader_get_duration_seconds", "Latency of successful get calls.", c.get_seconds);
  e.counter("reader_multi_gets_total", "Successful multi_get calls.", c.multi_gets);
  e.counter("reader_multi_get_keys_total", "Keys requested by successful multi_get calls.",
            c.multi_get_keys);
  e.counter("reader_multi_get_found_total", "Keys found by successful multi_get calls.",
            c.multi_get_found);
  e.histogram("reader_multi_get_duration_seconds", "Latency of successful multi_get calls.",
              c.multi_get_seconds);
  e.counter("reader_errors_total", "Failed lookups by operation.", "operation",
            {{"get", c.errors_get}, {"multi_get", c.errors_multi_get}, {"other", c.errors_other}});
  e.counter("reader_initialized_total", "Readers opened.", c.initialized);
  e.counter("reader_refreshes_total", "Refresh calls by outcome.", "changed",
            {{"true", c.refresh_changed}, {"false", c.refresh_unchanged}});
  e.counter("reader_fallbacks_total", "Cold-start fallbacks to an older manifest.", c.fallbacks);
  e.counter("reader_closed_total", "Readers closed.", c.closed);
  e.counter("shard_downloads_total", "Shard files downloaded into the local cache.", c.downloads);
  e.counter("shard_download_bytes_total", "Bytes of shard files downloaded.", c.download_bytes);
  e.histogram("shard_download_duration_seconds", "Duration of shard downloads.",
              c.download_seconds);
  e.counter("shard_cache_hits_total", "Shards opened from the local cache.", c.cache_hits);
  e.counter("shard_open_errors_total", "Shards that failed to open.", c.open_errors);
  e.counter("rate_limiter_throttled_total", "Rate limiter waits.", c.throttled);
  e.histogram("rate_limiter_wait_seconds", "Rate limiter wait time.", c.limiter_wait_seconds);
  e.counter("rate_limiter_denied_total", "Rate limiter requests refused.", c.denied);
  e.counter("s3_requests_total", "Object store requests.", c.s3_requests);
  e.counter("s3_retries_total", "Object store request retries.", c.s3_retries);
  e.counter("s3_errors_total", "Object store requests that failed.", c.s3_errors);
  return e.take();
}

}  // namespace shardy
