// The writer against the fixture's S3 server (s3rver behind the SigV4-verifying front end):
// the write protocol of spec 6.1 as seen by the store (run record first, each shard.db before
// its sidecar, every shard before the manifest, the manifest create-only before _CURRENT, the
// run record last), each sidecar bound to the ETag the server returned for its shard.db, and the
// snapshot read back from S3 (manifest store + shard files queried directly, and the Reader).
// A manifest PUT whose response is lost is retried and recognised as already written.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <mutex>
#include <shardy/manifest_store.hpp>
#include <shardy/reader.hpp>
#include <shardy/routing.hpp>
#include <shardy/store.hpp>
#include <shardy/writer.hpp>

#include "s3_test_env.hpp"
#include "shard/sidecar.hpp"
#include "support/forwarding_store.hpp"
#include "support/test_support.hpp"
#include "writer/run_record.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace shardy;
using namespace shardy::test;

namespace {

// Delegates to an S3 store and logs when each PUT starts and completes (with the ETag).
class RecordingStore final : public ForwardingStore {
 public:
  struct Event {
    bool done = false;
    std::string url;
    PutOptions options;
    std::string etag;
  };
  using ForwardingStore::ForwardingStore;

  asio::awaitable<PutResult> put(std::string url, std::string body, PutOptions o) override {
    log(false, url, o, "");
    PutResult r = co_await ForwardingStore::put(url, std::move(body), o);
    log(true, url, o, r.etag);
    co_return r;
  }
  asio::awaitable<PutResult> put_file(std::string url, fs::path file, PutOptions o) override {
    log(false, url, o, "");
    PutResult r = co_await ForwardingStore::put_file(url, std::move(file), o);
    log(true, url, o, r.etag);
    co_return r;
  }

  std::vector<Event> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  void log(bool done, const std::string& url, const PutOptions& o, const std::string& etag) {
    std::lock_guard lock(mutex_);
    events_.push_back(Event{done, url, o, etag});
  }
  mutable std::mutex mutex_;
  std::vector<Event> events_;
};

bool ends_with(std::string_view s, std::string_view t) {
  return s.size() >= t.size() && s.substr(s.size() - t.size()) == t;
}

std::optional<std::string> lookup(const fs::path& shard, std::string_view key) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(shard.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return std::nullopt;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?", -1, &st, nullptr);
  sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  std::optional<std::string> out;
  if (sqlite3_step(st) == SQLITE_ROW) {
    out.emplace(static_cast<const char*>(sqlite3_column_blob(st, 0)),
                static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

class WriterS3 : public S3ServerTest {
 protected:
  std::shared_ptr<ObjectStore> s3_store(bool via_fault_proxy = false) {
    StoreOptions so;
    so.s3 = options(via_fault_proxy);
    return make_object_store(io.get_executor(), std::move(so));
  }
  std::string snap_prefix() const { return "s3://" + bucket + "/" + prefix + "/snap"; }

  template <typename T>
  T await(asio::awaitable<T> aw) {
    return asio::co_spawn(io, std::move(aw), asio::use_future).get();
  }

  // 600 records over 500 distinct text keys (the later value of a repeated key wins).
  std::vector<Record> records(std::map<std::string, std::string>& want) const {
    std::vector<Record> recs;
    for (int i = 0; i < 600; ++i) {
      const std::string k = "user:" + std::to_string(i % 500);
      std::string v = "value " + std::to_string(i) + " of " + k + std::string(i % 97, '*');
      recs.push_back({Key::text(k), v});
      want[k] = v;
    }
    return recs;
  }

  WriterOptions writer_options(const std::string& run_id) const {
    WriterOptions o;
    o.prefix = snap_prefix();
    o.num_dbs = 8;
    o.key_encoding = KeyEncoding::utf8;
    o.run_id = run_id;
    o.spill_dir = scratch_ / ("spill-" + run_id);
    return o;
  }

  fs::path scratch_ = make_temp_dir("writer-s3");
};

TEST_F(WriterS3, PublishesInProtocolOrderAndReadsBack) {
  auto recording = std::make_shared<RecordingStore>(s3_store());
  std::map<std::string, std::string> want;
  auto src = make_record_source(records(want));
  const BuildResult res =
      await(build_snapshot(recording, writer_options("s3run1"), std::move(src)));
  ASSERT_EQ(res.run_id, "s3run1");
  ASSERT_GE(res.shards.size(), 6u);  // 500 keys over 8 shards: all (or nearly all) non-empty
  EXPECT_EQ(res.stats.rows_written, 600u);

  // --- the protocol, from the PUT log ---------------------------------------------------------
  const auto ev = recording->events();
  auto index_of = [&](bool done, auto pred) {
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if (ev[i].done == done && pred(ev[i].url)) return static_cast<long>(i);
    }
    return -1L;
  };
  auto last_index_of = [&](bool done, auto pred) {
    long at = -1;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if (ev[i].done == done && pred(ev[i].url)) at = static_cast<long>(i);
    }
    return at;
  };
  const std::string current_url = snap_prefix() + "/_CURRENT";
  const auto is_current = [&](const std::string& u) { return u == current_url; };
  const auto is_manifest = [&](const std::string& u) { return u == res.manifest.ref; };
  const auto is_record = [](const std::string& u) { return ends_with(u, "/run.yaml"); };
  const auto is_shard = [](const std::string& u) { return ends_with(u, "/shard.db"); };
  const auto is_sidecar = [](const std::string& u) { return ends_with(u, "/shard.sidecar"); };
  const long manifest_start = index_of(false, is_manifest);
  const long manifest_done = index_of(true, is_manifest);
  const long current_start = index_of(false, is_current);
  ASSERT_GE(manifest_start, 0);
  ASSERT_GE(current_start, 0);
  EXPECT_LT(index_of(false, is_record), index_of(false, is_shard));          // run record first
  EXPECT_GT(manifest_start, last_index_of(true, is_shard));                  // every shard, then
  EXPECT_GT(manifest_start, last_index_of(true, is_sidecar));                // the manifest,
  EXPECT_GT(current_start, manifest_done);                                   // then _CURRENT,
  EXPECT_GT(last_index_of(true, is_record), index_of(true, is_current));     // then the record
  EXPECT_EQ(index_of(false, is_current), last_index_of(false, is_current));  // one _CURRENT PUT
  EXPECT_TRUE(ev[static_cast<std::size_t>(manifest_start)].options.if_none_match);
  EXPECT_EQ(ev[static_cast<std::size_t>(manifest_start)].options.content_type,
            "application/x-sqlite3");
  EXPECT_EQ(ev[static_cast<std::size_t>(current_start)].options.content_type, "application/json");

  // --- each shard: objects, ETags, sidecar binding -------------------------------------------
  auto c = client();
  std::map<std::string, std::string> put_etags;  // url -> ETag the server returned to the PUT
  for (const auto& e : ev) {
    if (e.done) put_etags[e.url] = e.etag;
  }
  for (const auto& s : res.shards) {
    ASSERT_TRUE(s.db_url);
    char tail[64];
    std::snprintf(tail, sizeof tail, "/shards/run_id=s3run1/db=%05u/attempt=00", s.db_id);
    EXPECT_EQ(*s.db_url, snap_prefix() + tail);
    const std::string db_key = prefix + "/snap" + tail + "/shard.db";
    auto [hec, head] = call([&](auto tok) { return c.async_head_object(bucket, db_key, tok); });
    ASSERT_FALSE(hec) << head.diagnostics;
    EXPECT_EQ(head.size, s.db_bytes);
    EXPECT_EQ(head.content_type, "application/x-sqlite3");
    EXPECT_EQ(head.etag, put_etags[*s.db_url + "/shard.db"]);

    const std::string sc_key = prefix + "/snap" + tail + "/shard.sidecar";
    auto [gec, sc] = call([&](auto tok) { return c.async_get_object(bucket, sc_key, tok); });
    ASSERT_FALSE(gec) << sc.diagnostics;
    const auto decoded = shard::decode_sidecar(sc.body);
    ASSERT_TRUE(decoded.sidecar) << shard::to_string(decoded.reason) << ": " << decoded.detail;
    EXPECT_EQ(shard::normalize_etag(decoded.sidecar->db_tag), shard::normalize_etag(head.etag));
    std::string detail;
    EXPECT_EQ(
        shard::check_sidecar_binding(*decoded.sidecar, head.etag, std::nullopt, head.size, &detail),
        shard::SidecarReject::none)
        << detail;
  }

  // --- the manifest store over S3, then every key from the shard files -----------------------
  auto store = s3_store();
  auto ms = make_object_manifest_store(store, snap_prefix());
  const auto cur = await(ms->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->ref, res.manifest.ref);
  EXPECT_EQ(cur->run_id, "s3run1");
  const Manifest m = await(ms->load_manifest(cur->ref));
  EXPECT_EQ(m.build.num_dbs, 8u);
  EXPECT_EQ(m.build.s3_prefix, snap_prefix());
  EXPECT_TRUE(m.build.custom.contains("sqlite_sidecar"));
  ASSERT_EQ(m.shards.size(), res.shards.size());
  const auto history = await(ms->list_manifests(10));
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].ref, res.manifest.ref);

  std::map<std::uint32_t, fs::path> files;
  for (const auto& s : m.shards) {
    const fs::path f = scratch_ / ("db" + std::to_string(s.db_id) + ".db");
    const auto info = await(store->download(*s.db_url + "/shard.db", f, {}, ""));
    EXPECT_EQ(info.size, s.db_bytes);
    files[s.db_id] = f;
  }
  const Router router(m.build.num_dbs, m.build.key_encoding);
  for (const auto& [k, v] : want) {
    const auto r = router.route_lookup(Key::text(k));
    ASSERT_TRUE(files.count(r.db_id)) << k;
    EXPECT_EQ(lookup(files[r.db_id], r.storage_key), v) << k;
  }

  // --- the run record ----------------------------------------------------------------------
  ASSERT_FALSE(res.run_record.empty());
  const GetResult rec_body = await(store->get(res.run_record, GetOptions{}));
  const auto rec = writer::parse_run_record(rec_body.body);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->status, "succeeded");
  EXPECT_EQ(rec->run_id, "s3run1");
  EXPECT_EQ(rec->manifest_ref, res.manifest.ref);

  // --- and through the Reader, from S3 ------------------------------------------------------
  ReaderOptions ro;
  ro.s3 = options();
  ro.local_root = scratch_ / "cache";
  Reader reader(snap_prefix(), ro, 1);
  EXPECT_EQ(reader.snapshot_info().run_id, "s3run1");
  for (const auto& [k, v] : want) {
    const auto got = reader.get(Key::text(k));
    ASSERT_TRUE(got) << k;
    EXPECT_EQ(*got, v) << k;
  }
  EXPECT_FALSE(reader.get(Key::text("user:absent")));
  reader.close();
  fs::remove_all(scratch_);
}

// A second publish under the same prefix moves _CURRENT, keeps the first manifest, and a
// rollback through the manifest store points back at it (what `shardy rollback` does).
TEST_F(WriterS3, SecondRunAndRollback) {
  auto store = s3_store();
  std::map<std::string, std::string> want;
  auto src1 = make_record_source(records(want));
  const BuildResult first = await(build_snapshot(store, writer_options("runA"), std::move(src1)));
  std::vector<Record> recs2;
  recs2.push_back({Key::text("user:1"), "second"});
  auto src2 = make_record_source(recs2);
  const BuildResult second = await(build_snapshot(store, writer_options("runB"), std::move(src2)));

  auto ms = make_object_manifest_store(store, snap_prefix());
  auto history = await(ms->list_manifests(10));
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].ref, second.manifest.ref);  // newest first
  EXPECT_EQ(history[1].ref, first.manifest.ref);
  EXPECT_EQ(await(ms->load_current())->run_id, "runB");
  EXPECT_EQ(await(ms->load_manifest(second.manifest.ref)).shards.size(), 1u);

  const ManifestRef back = await(ms->set_current(history[1].ref));
  EXPECT_EQ(back.run_id, "runA");
  const auto cur = await(ms->load_current());
  EXPECT_EQ(cur->ref, first.manifest.ref);
  EXPECT_EQ(await(ms->load_manifest(cur->ref)).shards.size(), first.shards.size());
  fs::remove_all(scratch_);
}

// The manifest PUT's response is lost (the proxy forwards it, then resets the connection): the
// client retries, the create-only PUT meets the object the first attempt wrote (412), and
// publish recognises its own bytes and goes on to _CURRENT.
TEST_F(WriterS3, LostManifestResponseIsRetriedIdempotently) {
  const std::string manifests = path_prefix() + "snap/manifests/";
  inject_faults(manifests, {Fault::of("reset_before_response")}, "PUT");
  std::map<std::string, std::string> want;
  auto src = make_record_source(records(want));
  auto store = s3_store(/*via_fault_proxy=*/true);
  const BuildResult res = await(build_snapshot(store, writer_options("lost"), std::move(src)));
  EXPECT_EQ(pending_faults(manifests), 0u);
  const RequestStats puts = request_stats(manifests, "front", "PUT");
  EXPECT_EQ(puts.requests, 2u);  // the first attempt landed, the retry found it

  auto ms = make_object_manifest_store(s3_store(), snap_prefix());
  const auto cur = await(ms->load_current());
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->ref, res.manifest.ref);
  EXPECT_EQ(await(ms->load_manifest(cur->ref)).shards.size(), res.shards.size());
  fs::remove_all(scratch_);
}

}  // namespace
