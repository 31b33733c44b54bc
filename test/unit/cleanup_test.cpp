// shardy::cleanup_snapshot (interop spec 1.8 plus shardy's in-flight rule) on real snapshots
// written by the writer into a local directory: stale attempts of the target manifest, old runs
// by each criterion and their intersection, the target's run always kept, dry run by default,
// runs with a recent `running` run record (or an unreadable one) never deleted, a run that starts
// while cleanup lists is spared, and failures before deletion delete nothing.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <shardy/cleanup.hpp>
#include <shardy/local_store.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/writer.hpp>

#include "support/forwarding_store.hpp"
#include "support/run_io.hpp"
#include "support/test_support.hpp"
#include "writer/run_record.hpp"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using shardy::CleanupItem;
using shardy::CleanupOptions;
using shardy::CleanupReport;
using shardy::SparedRun;
using shardy::Timestamp;

namespace {

using shardy::test::run;

Timestamp now_us() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

// Delegates every operation to `inner`; before a listing, `before_list(prefix, options)` runs
// (it may touch the store or throw).
class HookedStore final : public shardy::test::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::function<void(const std::string&, const shardy::ListOptions&)> before_list;

  asio::awaitable<void> remove(std::string url) override {
    ++removes;
    co_await ForwardingStore::remove(std::move(url));
  }
  asio::awaitable<shardy::ListResult> list(std::string prefix, shardy::ListOptions o) override {
    if (before_list) before_list(prefix, o);
    co_return co_await ForwardingStore::list(std::move(prefix), std::move(o));
  }
  int removes = 0;
};

class Cleanup : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = shardy::test::make_temp_dir("cleanup");
    prefix_ = "file://" + (dir_ / "snap").string();
    store_ = std::make_shared<HookedStore>(shardy::make_file_store(io_.get_executor()));
    manifests_ = shardy::make_object_manifest_store(store_, prefix_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  shardy::BuildResult build(const std::string& run_id) {
    std::vector<shardy::Record> recs;
    for (int i = 0; i < 40; ++i)
      recs.push_back({shardy::Key::integer(i), run_id + "-" + std::to_string(i)});
    shardy::WriterOptions o;
    o.prefix = prefix_;
    o.num_dbs = 4;
    o.run_id = run_id;
    o.spill_dir = dir_ / ("spill-" + run_id);
    return run(io_, shardy::build_snapshot(store_, o, shardy::make_record_source(recs)));
  }

  std::string url(const std::string& rel) const { return prefix_ + "/" + rel; }
  fs::path path(const std::string& u) const { return fs::path(u.substr(7)); }
  bool exists(const std::string& u) const { return fs::exists(path(u)); }

  // Written straight to disk (usable from inside a store operation, where io_ is running).
  void put(const std::string& u, const std::string& body) {
    fs::create_directories(path(u).parent_path());
    std::ofstream(path(u), std::ios::binary) << body;
  }

  // Objects under a prefix URL.
  std::size_t count(const std::string& prefix) {
    shardy::ListOptions flat;
    return run(io_, store_->list(prefix, flat)).objects.size();
  }

  // A run's shard object that no manifest names (a run in flight, or an orphan).
  std::string put_shard(const std::string& run_id, int db, int attempt = 0) {
    char rel[128];
    std::snprintf(rel, sizeof rel, "shards/run_id=%s/db=%05d/attempt=%02d/shard.db", run_id.c_str(),
                  db, attempt);
    put(url(rel), "not really a shard " + run_id);
    return url(rel);
  }

  std::string put_run_record(const std::string& run_id, const std::string& status,
                             Timestamp updated_at, Timestamp lease_expires_at) {
    shardy::writer::RunRecord r;
    r.db_path_template = "db={db_id:05d}";
    r.run_id = run_id;
    r.s3_prefix = prefix_;
    r.shard_prefix = "shards";
    r.started_at = updated_at - 1h;
    r.updated_at = updated_at;
    r.lease_expires_at = lease_expires_at;
    r.status = status;
    const std::string u = url("runs/" + shardy::format_timestamp_dir(r.started_at) +
                              "_run_id=" + run_id + "_" + shardy::random_hex_id() + "/run.yaml");
    put(u, shardy::writer::serialize_run_record(r));
    return u;
  }

  CleanupReport cleanup(CleanupOptions o) {
    o.prefix = prefix_;
    return run(io_, shardy::cleanup_snapshot(store_, manifests_, std::move(o)));
  }

  static std::set<std::string> prefixes(const CleanupReport& r, CleanupItem::kind k) {
    std::set<std::string> out;
    for (const auto& i : r.items) {
      if (i.reason == k) out.insert(i.prefix);
    }
    return out;
  }

  // Every shard of the manifest _CURRENT names is still there.
  void expect_current_intact() {
    const auto cur = run(io_, manifests_->load_current());
    ASSERT_TRUE(cur);
    const auto m = run(io_, manifests_->load_manifest(cur->ref));
    ASSERT_FALSE(m.shards.empty());
    for (const auto& s : m.shards) {
      EXPECT_TRUE(exists(*s.db_url + "/shard.db")) << *s.db_url;
      EXPECT_TRUE(exists(*s.db_url + "/shard.sidecar")) << *s.db_url;
    }
  }

  std::string run_dir(const std::string& run_id) const {
    return url("shards/run_id=" + run_id + "/");
  }

  asio::io_context io_;
  fs::path dir_;
  std::string prefix_;
  std::shared_ptr<HookedStore> store_;
  std::shared_ptr<shardy::ManifestStore> manifests_;
};

// Spec 1.8 item 2: non-winning attempt=* directories of the target's shards, nothing else;
// a dry run (the default) lists them with their objects and bytes and deletes nothing.
TEST_F(Cleanup, StaleAttemptsDryRunThenDelete) {
  const auto r1 = build("r1");
  ASSERT_GE(r1.shards.size(), 2u);
  const auto& a = r1.shards[0];
  const auto& b = r1.shards[1];
  const std::string loser1 = put_shard("r1", static_cast<int>(a.db_id), 1);
  put(loser1.substr(0, loser1.size() - 8) + "shard.sidecar", "sidecar bytes");
  const std::string loser2 = put_shard("r1", static_cast<int>(b.db_id), 2);
  // Not an attempt directory: never touched.
  const std::string other = url("shards/run_id=r1/db=00000/notes.txt");
  put(other, "keep me");

  CleanupOptions o;  // dry run by default
  ASSERT_TRUE(o.dry_run);
  const auto dry = cleanup(o);
  EXPECT_EQ(dry.target.run_id, "r1");
  const std::set<std::string> want = {loser1.substr(0, loser1.size() - 8),
                                      loser2.substr(0, loser2.size() - 8)};
  EXPECT_EQ(prefixes(dry, CleanupItem::kind::stale_attempt), want);
  EXPECT_EQ(dry.items.size(), 2u);
  std::size_t objects = 0;
  for (const auto& i : dry.items) {
    EXPECT_FALSE(i.deleted);
    EXPECT_EQ(i.run_id, "r1");
    objects += i.objects.size();
    EXPECT_GT(i.bytes, 0u);
  }
  EXPECT_EQ(objects, 3u);
  EXPECT_EQ(store_->removes, 0);
  EXPECT_TRUE(exists(loser1));
  EXPECT_TRUE(exists(loser2));

  o.dry_run = false;
  const auto done = cleanup(o);
  EXPECT_EQ(prefixes(done, CleanupItem::kind::stale_attempt), want);
  for (const auto& i : done.items) EXPECT_TRUE(i.deleted);
  EXPECT_EQ(store_->removes, 3);
  EXPECT_FALSE(exists(loser1));
  EXPECT_FALSE(exists(loser2));
  EXPECT_TRUE(exists(other));
  expect_current_intact();
  // Nothing left to do.
  EXPECT_TRUE(cleanup(o).items.empty());
}

// Spec 1.8 item 3: keep-last, include-old-runs, their intersection, and the target's run.
TEST_F(Cleanup, OldRunsByManifestCriteria) {
  build("r1");
  build("r2");
  build("r3");             // current
  put_shard("orphan", 2);  // a run without a manifest and without a run record

  CleanupOptions o;
  // No old-run criterion: old runs are not considered at all.
  EXPECT_TRUE(cleanup(o).items.empty());

  o.keep_last = 2;
  auto r = cleanup(o);
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run),
            (std::set<std::string>{run_dir("r1"), run_dir("orphan")}));
  EXPECT_EQ(r.protected_runs, (std::vector<std::string>{"r2", "r3"}));

  o.keep_last.reset();
  o.include_old_runs = true;  // every run with a manifest is protected
  r = cleanup(o);
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run), (std::set<std::string>{run_dir("orphan")}));

  o.keep_last = 1;  // intersection: {r1,r2,r3} and {r3}
  r = cleanup(o);
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run),
            (std::set<std::string>{run_dir("r1"), run_dir("r2"), run_dir("orphan")}));

  // The target (the oldest manifest here) is always protected, even outside keep-last.
  o.target_offset = 2;
  r = cleanup(o);
  EXPECT_EQ(r.target.run_id, "r1");
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run),
            (std::set<std::string>{run_dir("r2"), run_dir("orphan")}));
  EXPECT_EQ(store_->removes, 0);  // all dry runs so far

  o.target_offset.reset();
  o.dry_run = false;
  r = cleanup(o);
  EXPECT_EQ(r.items.size(), 3u);
  EXPECT_EQ(count(run_dir("r1")), 0u);
  EXPECT_EQ(count(run_dir("r2")), 0u);
  EXPECT_EQ(count(run_dir("orphan")), 0u);
  EXPECT_GT(count(run_dir("r3")), 0u);
  expect_current_intact();
  // Manifests and run records are never deleted (spec 1.8).
  EXPECT_EQ(run(io_, manifests_->list_manifests(10)).size(), 3u);
  EXPECT_EQ(count(url("runs/")), 3u);
}

// older-than: protects runs whose manifest directory time is within D of now.
TEST_F(Cleanup, OlderThan) {
  build("r1");
  build("r2");
  CleanupOptions o;
  o.older_than = std::chrono::hours(1);
  EXPECT_TRUE(cleanup(o).items.empty());  // both manifests are seconds old
  o.now = now_us() + 2h;                  // ... but not two hours from now
  const auto r = cleanup(o);
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run), (std::set<std::string>{run_dir("r1")}));
}

// shardy's rule: a run with a `running` record updated within the grace period or with an
// unexpired lease, or with an unreadable record, is never deleted, even with keep_last = 0 and
// dry_run = false. Stale `running` records and failed runs do not protect.
TEST_F(Cleanup, RunsInFlightAreNeverDeleted) {
  build("r1");
  const Timestamp now = now_us();
  const std::string live = put_shard("live", 1);
  put_run_record("live", "running", now - 2min, now + 8min);
  const std::string leased = put_shard("leased", 0);
  put_run_record("leased", "running", now - 30h, now + 5min);
  const std::string garbled = put_shard("garbled", 3);
  const std::string garbled_record =
      url("runs/2026-01-01T00:00:00.000000Z_run_id=garbled_0123456789abcdef0123456789abcdef/"
          "run.yaml");
  put(garbled_record, "{{{ this is not a run record");
  const std::string dead = put_shard("dead", 2);
  put_run_record("dead", "running", now - 48h, now - 47h);
  const std::string failed = put_shard("failedrun", 2);
  put_run_record("failedrun", "failed", now - 1min, now - 1min);
  // A later run that reuses the target's run id and is writing right now: the target's stale
  // attempts belong to a live run, so they stay too.
  const std::string r1_attempt = put_shard("r1", 0, 1);
  put_run_record("r1", "running", now, now + 10min);

  CleanupOptions o;
  o.keep_last = 0;
  o.dry_run = false;
  const auto r = cleanup(o);
  EXPECT_EQ(prefixes(r, CleanupItem::kind::old_run),
            (std::set<std::string>{run_dir("dead"), run_dir("failedrun")}));
  EXPECT_TRUE(prefixes(r, CleanupItem::kind::stale_attempt).empty());
  std::map<std::string, SparedRun::kind> spared;
  for (const auto& s : r.spared) spared[s.run_id] = s.reason;
  EXPECT_EQ(spared, (std::map<std::string, SparedRun::kind>{
                        {"garbled", SparedRun::kind::unreadable_run_record},
                        {"leased", SparedRun::kind::running},
                        {"live", SparedRun::kind::running},
                        {"r1", SparedRun::kind::running}}));
  EXPECT_TRUE(exists(live));
  EXPECT_TRUE(exists(leased));
  EXPECT_TRUE(exists(garbled));
  EXPECT_TRUE(exists(r1_attempt));
  EXPECT_FALSE(exists(dead));
  EXPECT_FALSE(exists(failed));
  expect_current_intact();

  // A shorter grace period does not matter for `live` (its lease is unexpired), and once the
  // lease has run out and the update is older than the grace, the run is fair game.
  o.running_grace = std::chrono::seconds(1);
  o.now = now + 9min;
  const auto later = cleanup(o);
  EXPECT_EQ(prefixes(later, CleanupItem::kind::old_run),
            (std::set<std::string>{run_dir("live"), run_dir("leased")}));
}

// A writer that starts while cleanup runs: its run record is written before its first shard,
// and cleanup reads run records only after listing the shard directories, so a run whose
// directory is in the listing is known to be in flight.
TEST_F(Cleanup, RunStartingDuringTheListingIsSpared) {
  build("r1");
  std::string newcomer;
  store_->before_list = [&](const std::string& prefix, const shardy::ListOptions& lo) {
    if (newcomer.empty() && lo.delimiter == "/" && prefix == url("shards/")) {
      const Timestamp now = now_us();
      put_run_record("newcomer", "running", now, now + 10min);  // first the record,
      newcomer = put_shard("newcomer", 1);                      // then a shard
    }
  };
  CleanupOptions o;
  o.keep_last = 0;
  o.dry_run = false;
  const auto r = cleanup(o);
  ASSERT_FALSE(newcomer.empty());
  EXPECT_TRUE(r.items.empty());
  ASSERT_EQ(r.spared.size(), 1u);
  EXPECT_EQ(r.spared[0].run_id, "newcomer");
  EXPECT_TRUE(exists(newcomer));
}

// Failures before the first deletion delete nothing; the error_code form reports them.
TEST_F(Cleanup, FailuresDeleteNothing) {
  CleanupOptions o;
  try {
    cleanup(o);
    ADD_FAILURE() << "no _CURRENT: expected an error";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), make_error_code(shardy::errc::no_current_pointer));
  }
  build("r1");
  build("r2");
  const std::string orphan = put_shard("orphan", 0);
  o.target_offset = 5;
  try {
    cleanup(o);
    ADD_FAILURE() << "offset past the history: expected an error";
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), make_error_code(shardy::errc::invalid_argument));
  }
  o.target_offset.reset();
  // The run registry cannot be listed: no way to tell which runs are in flight.
  store_->before_list = [&](const std::string& prefix, const shardy::ListOptions&) {
    if (prefix == url("runs/")) shardy::throw_error(shardy::errc::io_error, "injected");
  };
  o.include_old_runs = true;
  o.dry_run = false;
  o.prefix = prefix_;
  std::promise<shardy::error_code> got;
  shardy::async_cleanup_snapshot(io_.get_executor(), store_, manifests_, o,
                                 [&](shardy::error_code ec, CleanupReport) { got.set_value(ec); });
  io_.restart();
  io_.run();
  EXPECT_EQ(got.get_future().get(), make_error_code(shardy::errc::io_error));
  EXPECT_EQ(store_->removes, 0);
  EXPECT_TRUE(exists(orphan));
}

}  // namespace
