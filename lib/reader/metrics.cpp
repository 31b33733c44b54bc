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

void counter(std::string& out, const std::string& name, std::string_view help, std::uint64_t value,
             std::string_view labels = {}) {
  out += "# HELP " + name + " " + std::string(help) + "\n# TYPE " + name + " counter\n";
  out += name;
  if (!labels
           .empty()) {  // appended piece by piece: `"{" + std::string(...)` trips g++ 12 -Wrestrict
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

// Two series of one counter family with a label.
void counter2(std::string& out, const std::string& name, std::string_view help,
              std::string_view label, std::string_view a, std::uint64_t va, std::string_view b,
              std::uint64_t vb) {
  out += "# HELP " + name + " " + std::string(help) + "\n# TYPE " + name + " counter\n";
  out +=
      name + "{" + std::string(label) + "=\"" + std::string(a) + "\"} " + std::to_string(va) + "\n";
  out +=
      name + "{" + std::string(label) + "=\"" + std::string(b) + "\"} " + std::to_string(vb) + "\n";
}

void histogram(std::string& out, const std::string& name, std::string_view help,
               const PrometheusCollector::Histogram& h) {
  out += "# HELP " + name + " " + std::string(help) + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.buckets[i].load(relaxed);
    out +=
        name + "_bucket{le=\"" + number(h.bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += h.buckets[h.bounds.size()].load(relaxed);
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  out += name + "_sum " + number(static_cast<double>(h.sum_ns.load(relaxed)) / 1e9) + "\n";
  out += name + "_count " + std::to_string(h.count.load(relaxed)) + "\n";
}

}  // namespace

std::string PrometheusCollector::render() const {
  const auto& c = *c_;
  const std::string& p = prefix_;
  std::string out;
  counter(out, p + "reader_gets_total", "Successful get calls.", c.gets.load(relaxed));
  counter2(out, p + "reader_get_results_total", "Successful get calls by outcome.", "result", "hit",
           c.get_hits.load(relaxed), "miss", c.get_misses.load(relaxed));
  histogram(out, p + "reader_get_duration_seconds", "Latency of successful get calls.",
            c.get_seconds);
  counter(out, p + "reader_multi_gets_total", "Successful multi_get calls.",
          c.multi_gets.load(relaxed));
  counter(out, p + "reader_multi_get_keys_total", "Keys requested by successful multi_get calls.",
          c.multi_get_keys.load(relaxed));
  counter(out, p + "reader_multi_get_found_total", "Keys found by successful multi_get calls.",
          c.multi_get_found.load(relaxed));
  histogram(out, p + "reader_multi_get_duration_seconds", "Latency of successful multi_get calls.",
            c.multi_get_seconds);
  out += "# HELP " + p + "reader_errors_total Failed lookups by operation.\n# TYPE " + p +
         "reader_errors_total counter\n";
  out += p + "reader_errors_total{operation=\"get\"} " +
         std::to_string(c.errors_get.load(relaxed)) + "\n";
  out += p + "reader_errors_total{operation=\"multi_get\"} " +
         std::to_string(c.errors_multi_get.load(relaxed)) + "\n";
  out += p + "reader_errors_total{operation=\"other\"} " +
         std::to_string(c.errors_other.load(relaxed)) + "\n";
  counter(out, p + "reader_initialized_total", "Readers opened.", c.initialized.load(relaxed));
  counter2(out, p + "reader_refreshes_total", "Refresh calls by outcome.", "changed", "true",
           c.refresh_changed.load(relaxed), "false", c.refresh_unchanged.load(relaxed));
  counter(out, p + "reader_fallbacks_total", "Cold-start fallbacks to an older manifest.",
          c.fallbacks.load(relaxed));
  counter(out, p + "reader_closed_total", "Readers closed.", c.closed.load(relaxed));
  counter(out, p + "shard_downloads_total", "Shard files downloaded into the local cache.",
          c.downloads.load(relaxed));
  counter(out, p + "shard_download_bytes_total", "Bytes of shard files downloaded.",
          c.download_bytes.load(relaxed));
  histogram(out, p + "shard_download_duration_seconds", "Duration of shard downloads.",
            c.download_seconds);
  counter(out, p + "shard_cache_hits_total", "Shards opened from the local cache.",
          c.cache_hits.load(relaxed));
  counter(out, p + "shard_open_errors_total", "Shards that failed to open.",
          c.open_errors.load(relaxed));
  counter(out, p + "rate_limiter_throttled_total", "Rate limiter waits.",
          c.throttled.load(relaxed));
  histogram(out, p + "rate_limiter_wait_seconds", "Rate limiter wait time.",
            c.limiter_wait_seconds);
  counter(out, p + "rate_limiter_denied_total", "Rate limiter requests refused.",
          c.denied.load(relaxed));
  counter(out, p + "s3_requests_total", "Object store requests.", c.s3_requests.load(relaxed));
  counter(out, p + "s3_retries_total", "Object store request retries.", c.s3_retries.load(relaxed));
  counter(out, p + "s3_errors_total", "Object store requests that failed.",
          c.s3_errors.load(relaxed));
  return out;
}

}  // namespace shardy
