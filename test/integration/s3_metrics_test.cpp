// S3 request metrics (reader-features Q-12; issue 5 "counted from the client's own metrics"):
// the S3 client reports on_s3_request for every HTTP request it sends, on_s3_retry before each
// retry and on_s3_error per failed operation, and the counts agree with what the s3rver wrapper
// itself received. Readers pass ReaderOptions::metrics to the client they build, in both tiers.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <mutex>
#include <shardy/metrics.hpp>
#include <shardy/reader.hpp>
#include <shardy/store.hpp>
#include <shardy/writer.hpp>

#include "s3_test_env.hpp"
#include "support/test_support.hpp"

namespace shardy::test {
namespace {

namespace asio = boost::asio;

struct RecordingSink final : MetricsSink {
  std::mutex mu;
  std::map<std::string, int> requests, errors;
  std::vector<std::pair<std::string, unsigned>> retries;
  int total_requests() {
    std::lock_guard l(mu);
    int n = 0;
    for (auto& [op, k] : requests) n += k;
    return n;
  }
  void on_s3_request(std::string_view op) override {
    std::lock_guard l(mu);
    ++requests[std::string(op)];
  }
  void on_s3_retry(std::string_view op, unsigned attempt) override {
    std::lock_guard l(mu);
    retries.emplace_back(std::string(op), attempt);
  }
  void on_s3_error(std::string_view op) override {
    std::lock_guard l(mu);
    ++errors[std::string(op)];
  }
};

class S3Metrics : public S3ServerTest {};

TEST_F(S3Metrics, EveryRequestAndFailureIsReportedAndMatchesTheServer_Q12) {
  auto sink = std::make_shared<RecordingSink>();
  auto o = options();
  o.metrics = sink;
  auto c = client(o);
  std::string body(10000, 'z');
  auto [pec, pr] = call([&](auto t) { return c.async_put_object(bucket, key("a"), body, t); });
  ASSERT_FALSE(pec) << pr.diagnostics;
  auto [gec, gr] = call([&](auto t) { return c.async_get_object(bucket, key("a"), t); });
  ASSERT_FALSE(gec);
  EXPECT_EQ(gr.body, body);
  auto [hec, hr] = call([&](auto t) { return c.async_head_object(bucket, key("a"), t); });
  ASSERT_FALSE(hec);
  auto [mec, mr] = call([&](auto t) { return c.async_get_object(bucket, key("missing"), t); });
  EXPECT_EQ(mec, errc::object_not_found);
  // Three ranges far apart: three coalesced GETs, each a request.
  GetRangesRequest rr(
      {ByteRange::bounded(0, 10), ByteRange::bounded(5000, 10), ByteRange::bounded(9990, 10)});
  rr.max_gap = 0;
  auto [rec, rres] =
      call([&](auto t) { return c.async_get_ranges(bucket, key("a"), std::move(rr), t); });
  ASSERT_FALSE(rec) << rres.diagnostics;
  EXPECT_EQ(rres.requests, 3u);
  ListObjectsRequest lr(prefix + "/");
  auto [lec, lres] = call([&](auto t) { return c.async_list_objects_v2(bucket, lr, t); });
  ASSERT_FALSE(lec);
  auto [dec, dres] = call([&](auto t) { return c.async_delete_object(bucket, key("a"), t); });
  ASSERT_FALSE(dec);

  std::lock_guard l(sink->mu);
  EXPECT_EQ(sink->requests["PutObject"], 1);
  EXPECT_EQ(sink->requests["GetObject"], 1 + 1 + 3);
  EXPECT_EQ(sink->requests["HeadObject"], 1);
  EXPECT_EQ(sink->requests["ListObjectsV2"], 1);
  EXPECT_EQ(sink->requests["DeleteObject"], 1);
  EXPECT_TRUE(sink->retries.empty());
  EXPECT_EQ(sink->errors.size(), 1u);
  EXPECT_EQ(sink->errors["GetObject"], 1);
  // The listing's path is the bucket (prefix in the query): count the object requests only.
  int object_requests = 0;
  for (auto& [op, n] : sink->requests)
    if (op != "ListObjectsV2") object_requests += n;
  EXPECT_EQ(static_cast<int>(request_stats(path_prefix()).requests), object_requests);
}

TEST_F(S3Metrics, RetryIsReportedWithItsAttempt_Q12) {
  auto sink = std::make_shared<RecordingSink>();
  auto plain = client();
  auto [pec, pr] =
      call([&](auto t) { return plain.async_put_object(bucket, key("r"), std::string("x"), t); });
  ASSERT_FALSE(pec);
  auto o = options(/*via_fault_proxy=*/true);
  o.metrics = sink;
  auto c = client(o);
  // 503 then 200: two requests, one retry (attempt 2), no error.
  inject_faults(path_prefix(), {Fault::http_status(503, "SlowDown")}, "GET");
  auto [ec, r] = call([&](auto t) { return c.async_get_object(bucket, key("r"), t); });
  ASSERT_FALSE(ec) << r.diagnostics;
  EXPECT_EQ(r.body, "x");
  {
    std::lock_guard l(sink->mu);
    EXPECT_EQ(sink->requests["GetObject"], 2);
    ASSERT_EQ(sink->retries.size(), 1u);
    EXPECT_EQ(sink->retries[0], std::make_pair(std::string("GetObject"), 2u));
    EXPECT_TRUE(sink->errors.empty());
  }
  EXPECT_EQ(request_stats(path_prefix(), "proxy", "GET").requests, 2u);

  // Persistent 500 with 3 attempts: three requests, two retries, one error.
  auto o3 = options(true);
  o3.metrics = sink;
  o3.retry.max_attempts = 3;
  auto c3 = client(o3);
  inject_faults(path_prefix(),
                {Fault::http_status(500), Fault::http_status(500), Fault::http_status(500)}, "GET");
  auto [ec3, r3] = call([&](auto t) { return c3.async_get_object(bucket, key("r"), t); });
  EXPECT_TRUE(ec3);
  std::lock_guard l(sink->mu);
  EXPECT_EQ(sink->requests["GetObject"], 2 + 3);
  ASSERT_EQ(sink->retries.size(), 1u + 2u);
  EXPECT_EQ(sink->retries[1].second, 2u);
  EXPECT_EQ(sink->retries[2].second, 3u);
  EXPECT_EQ(sink->errors["GetObject"], 1);
}

// A snapshot written to s3rver with the writer, read by Readers in both tiers whose S3 clients
// they build themselves from ReaderOptions::s3: ReaderOptions::metrics sees every request the
// server saw under the snapshot prefix.
TEST_F(S3Metrics, ReadersReportTheirS3RequestsInBothTiers) {
  const std::string snap = "s3://" + bucket + "/" + prefix + "/snap";
  std::vector<Record> records;
  for (int k = 0; k < 3000; ++k) {
    Record r;
    r.key = Key::integer(k);
    r.value = "value-" + std::to_string(k) + std::string(k % 500 == 0 ? 9000 : 40, 'v');
    records.push_back(std::move(r));
  }
  {
    asio::thread_pool pool(1);
    auto store = make_s3_store(client());
    WriterOptions wo;
    wo.prefix = snap;
    wo.num_dbs = 3;
    wo.write_run_record = false;
    auto build = build_snapshot(store, wo, make_record_source(std::move(records)));
    auto result = asio::co_spawn(pool, std::move(build), asio::use_future).get();
    EXPECT_EQ(result.stats.sidecars_written, 3u);
    pool.join();
  }
  const auto snap_path = path_prefix() + "snap/";
  for (AccessMode mode : {AccessMode::range, AccessMode::download}) {
    auto sink = std::make_shared<RecordingSink>();
    const auto server_before = request_stats(snap_path).requests;
    {
      ReaderOptions o;
      o.s3 = options();
      o.metrics = sink;
      o.access_mode = mode;
      o.local_root = make_temp_dir("s3-metrics-cache");
      Reader reader(snap, o);
      EXPECT_EQ(reader.snapshot_info().access_mode, mode);
      for (int k = 0; k < 3000; k += 97) {
        auto want = "value-" + std::to_string(k) + std::string(k % 500 == 0 ? 9000 : 40, 'v');
        ASSERT_EQ(reader.get(Key::integer(k)), std::optional<Value>(want)) << k;
      }
      EXPECT_EQ(reader.get(Key::integer(0)),
                std::optional<Value>("value-0" + std::string(9000, 'v')));
    }
    const int server = static_cast<int>(request_stats(snap_path).requests - server_before);
    EXPECT_GT(server, 3) << to_string(mode);
    // The snapshot's listing-free open (_CURRENT, manifest) and every shard request go under
    // the prefix; the client counted each of them.
    EXPECT_EQ(sink->total_requests(), server) << to_string(mode);
    std::lock_guard l(sink->mu);
    EXPECT_GT(sink->requests["GetObject"], 3) << to_string(mode);
    EXPECT_TRUE(sink->errors.empty()) << to_string(mode);
  }
}

}  // namespace
}  // namespace shardy::test
