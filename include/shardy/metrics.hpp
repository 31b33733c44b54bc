// Metrics: a sink interface that readers call synchronously as things happen, and a built-in
// collector that renders the Prometheus text exposition format (version 0.0.4).
//
// A sink must be thread-safe: readers call it from every thread that does work (calling threads
// of the sync Reader, io_context threads, the blocking pool). Every method has an empty default,
// so a sink overrides only what it needs; a null sink (the default) costs one pointer check.
// Handle reads (borrowed shard handles) are not instrumented (reader-features F-07).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace shardy {

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;

  // --- reader lifecycle (Q-02, Q-05, Q-06) ---------------------------------------------------
  virtual void on_reader_initialized(std::uint32_t /*num_shards*/) {}
  virtual void on_refresh(bool /*changed*/) {}
  /// Cold-start fallback to an older manifest after `skipped` could not be parsed (H-09).
  virtual void on_fallback(std::string_view /*skipped_ref*/, std::string_view /*used_ref*/) {}
  virtual void on_reader_closed(std::uint32_t /*num_shards*/) {}

  // --- lookups (Q-03, Q-04) ------------------------------------------------------------------
  /// One successful get; `found` = a value (possibly empty) was returned.
  virtual void on_get(std::chrono::nanoseconds /*latency*/, bool /*found*/) {}
  /// One successful multi_get over `keys` input keys, `found` of which had values.
  virtual void on_multi_get(std::chrono::nanoseconds /*latency*/, std::size_t /*keys*/,
                            std::size_t /*found*/) {}
  /// A get or multi_get that failed (routing, encoding, shard or storage error).
  virtual void on_lookup_error(std::string_view /*operation*/) {}

  // --- shards -------------------------------------------------------------------------------
  /// A shard.db downloaded into the local cache.
  virtual void on_shard_download(std::uint32_t /*db_id*/, std::uint64_t /*bytes*/,
                                 std::chrono::nanoseconds /*duration*/) {}
  /// Progress of a running download (`total` = 0 when unknown).
  virtual void on_shard_download_progress(std::uint32_t /*db_id*/, std::uint64_t /*done*/,
                                          std::uint64_t /*total*/) {}
  /// A shard opened from the local cache without downloading.
  virtual void on_shard_cache_hit(std::uint32_t /*db_id*/) {}
  virtual void on_shard_open_error(std::uint32_t /*db_id*/) {}

  // --- rate limiter (P-06, Q-11) ---------------------------------------------------------------
  virtual void on_rate_limiter_throttled(std::chrono::nanoseconds /*wait*/) {}
  virtual void on_rate_limiter_denied(std::uint64_t /*tokens*/) {}

  // --- object store / S3 (Q-12) --------------------------------------------------------------
  virtual void on_s3_request(std::string_view /*operation*/) {}
  virtual void on_s3_retry(std::string_view /*operation*/, unsigned /*attempt*/) {}
  virtual void on_s3_error(std::string_view /*operation*/) {}
};

/// A MetricsSink that keeps counters and latency histograms in memory (lock-free) and renders
/// them in the Prometheus text exposition format. Series names follow the reference
/// (reader-features Q-13), with the default prefix "shardy_", plus the gaps of Q-15 (hits/misses,
/// errors, refreshes, downloads, fallbacks).
class PrometheusCollector final : public MetricsSink {
 public:
  explicit PrometheusCollector(std::string prefix = "shardy_");
  ~PrometheusCollector() override;

  /// The exposition text (Content-Type: text/plain; version=0.0.4).
  std::string render() const;

  void on_reader_initialized(std::uint32_t num_shards) override;
  void on_refresh(bool changed) override;
  void on_fallback(std::string_view skipped_ref, std::string_view used_ref) override;
  void on_reader_closed(std::uint32_t num_shards) override;
  void on_get(std::chrono::nanoseconds latency, bool found) override;
  void on_multi_get(std::chrono::nanoseconds latency, std::size_t keys, std::size_t found) override;
  void on_lookup_error(std::string_view operation) override;
  void on_shard_download(std::uint32_t db_id, std::uint64_t bytes,
                         std::chrono::nanoseconds duration) override;
  void on_shard_cache_hit(std::uint32_t db_id) override;
  void on_shard_open_error(std::uint32_t db_id) override;
  void on_rate_limiter_throttled(std::chrono::nanoseconds wait) override;
  void on_rate_limiter_denied(std::uint64_t tokens) override;
  void on_s3_request(std::string_view operation) override;
  void on_s3_retry(std::string_view operation, unsigned attempt) override;
  void on_s3_error(std::string_view operation) override;

  /// A fixed-bucket histogram of seconds (Prometheus' default buckets, 5 ms .. 10 s, plus finer
  /// ones down to 1 us because warm lookups take microseconds).
  struct Histogram {
    static constexpr std::array<double, 16> bounds = {
        1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0};
    std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets{};  // last: +Inf
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_ns{0};
    void observe(std::chrono::nanoseconds d) noexcept;
  };

 private:
  struct Counters;
  std::string prefix_;
  std::unique_ptr<Counters> c_;
};

}  // namespace shardy
