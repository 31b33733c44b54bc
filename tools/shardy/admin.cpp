// Snapshot administration: `shardy history`, `shardy rollback`, `shardy cleanup`.
//
// cleanup follows shardyfusion's semantics (interop spec 1.8): for the target manifest (current,
// --ref or --offset) it deletes every attempt=* directory of its shards that is not the winner;
// with --include-old-runs / --older-than / --keep-last it also deletes run_id=* shard trees not
// protected by the manifest history (protected = intersection of the active criteria, plus the
// target's run). Unlike the reference, a run whose run record is `running` and recent is never
// deleted (it may be writing right now). Nothing is deleted without --yes.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <set>
#include <shardy/manifest_store.hpp>
#include <shardy/writer.hpp>

#include "cli_store.hpp"
#include "commands.hpp"
#include "writer/run_record.hpp"

namespace shardy::cli {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

template <typename T>
T run_sync(asio::io_context& io, asio::awaitable<T> aw) {
  auto fut = asio::co_spawn(io, std::move(aw), asio::use_future);
  io.restart();
  io.run();
  return fut.get();
}

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// "7d", "12h", "30m", "45s" (a bare number is seconds).
std::chrono::seconds parse_duration(const std::string& s) {
  if (s.empty()) throw_error(errc::invalid_argument, "empty duration");
  std::size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(s, &used);
  } catch (const std::exception&) {
    throw_error(errc::invalid_argument, "bad duration '" + s + "'");
  }
  const std::string unit = s.substr(used);
  if (n < 0) throw_error(errc::invalid_argument, "negative duration '" + s + "'");
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  if (unit == "d") return std::chrono::hours(24 * n);
  throw_error(errc::invalid_argument, "bad duration unit in '" + s + "' (s, m, h, d)");
}

struct RefArgs {
  std::string ref;
  int offset = -1;
};

// --ref wins; else --offset (0 = newest manifest, 1 = the one before, ...); else _CURRENT.
asio::awaitable<std::string> resolve_ref(ManifestStore& ms, RefArgs a) {
  if (!a.ref.empty()) co_return a.ref;
  if (a.offset >= 0) {
    auto list = co_await ms.list_manifests(static_cast<std::size_t>(a.offset) + 1);
    if (list.size() <= static_cast<std::size_t>(a.offset)) {
      throw_error(errc::invalid_argument, "--offset " + std::to_string(a.offset) + ": only " +
                                              std::to_string(list.size()) + " manifests");
    }
    co_return list[static_cast<std::size_t>(a.offset)].ref;
  }
  auto cur = co_await ms.load_current();
  if (!cur) throw_error(errc::no_current_pointer, "no _CURRENT under the prefix");
  co_return cur->ref;
}

void print_record(const json::object& o) {
  if (global_options().output == "table") {
    bool first = true;
    for (const auto& [k, v] : o) {
      std::cout << (first ? "" : "  ") << std::string_view(k) << "="
                << (v.is_string() ? std::string(v.get_string()) : json::serialize(v));
      first = false;
    }
    std::cout << "\n";
  } else {
    std::cout << json::serialize(o) << "\n";
  }
}

// --- history ---------------------------------------------------------------------------------

void run_history(std::size_t limit) {
  asio::io_context io;
  auto store = open_cli_store(io.get_executor());
  auto ms = make_object_manifest_store(store, required_prefix());
  auto cur = run_sync(io, ms->load_current());
  auto list = run_sync(io, ms->list_manifests(limit));
  for (const auto& m : list) {
    json::object o;
    o["current"] = cur && cur->ref == m.ref;
    o["published_at"] = format_timestamp_dir(m.published_at);
    o["run_id"] = m.run_id;
    o["ref"] = m.ref;
    print_record(o);
  }
}

// --- rollback --------------------------------------------------------------------------------

void run_rollback(RefArgs a) {
  if (a.ref.empty() && a.offset < 0) {
    throw_error(errc::invalid_argument, "rollback needs --ref REF or --offset N");
  }
  asio::io_context io;
  auto store = open_cli_store(io.get_executor());
  auto ms = make_object_manifest_store(store, required_prefix());
  const std::string ref = run_sync(io, resolve_ref(*ms, a));
  // Refuse to point _CURRENT at something readers would reject.
  (void)run_sync(io, ms->load_manifest(ref));
  const ManifestRef r = run_sync(io, ms->set_current(ref));
  json::object o;
  o["manifest_ref"] = r.ref;
  o["run_id"] = r.run_id;
  o["updated_at"] = format_timestamp(r.published_at);
  print_record(o);
}

// --- cleanup ---------------------------------------------------------------------------------

struct CleanupArgs {
  RefArgs target;
  bool include_old_runs = false;
  std::string older_than;
  int keep_last = -1;
  std::string running_grace = "24h";
  bool yes = false;
};

struct Deletion {
  std::string prefix;  // ends with '/'
  std::string reason;
};

asio::awaitable<void> cleanup(ObjectStore& store, ManifestStore& ms, CleanupArgs a) {
  const std::string prefix = strip_slash(required_prefix());
  const std::string ref = co_await resolve_ref(ms, a.target);
  const Manifest m = co_await ms.load_manifest(ref);
  const std::string base = strip_slash(m.build.s3_prefix);
  std::vector<Deletion> plan;

  // 1. Stale attempts of the target manifest's shards.
  for (const auto& s : m.shards) {
    if (!s.db_url) continue;
    const std::string dir = join_url(base, {m.build.shard_prefix, "run_id=" + m.build.run_id,
                                            format_db_path(m.build.db_path_template, s.db_id)}) +
                            "/";
    ListOptions lo;
    lo.delimiter = "/";
    const ListResult listed = co_await store.list(dir, std::move(lo));
    for (const auto& cp : listed.common_prefixes) {
      const std::string name = strip_slash(cp).substr(dir.size());
      if (name.rfind("attempt=", 0) != 0) continue;
      if (strip_slash(cp) != strip_slash(*s.db_url)) plan.push_back({cp, "stale_attempt"});
    }
  }

  // 2. Old runs.
  const bool old_runs = a.include_old_runs || !a.older_than.empty() || a.keep_last >= 0;
  std::set<std::string> spared_running;
  if (old_runs) {
    const auto history = co_await ms.list_manifests(10000);
    std::optional<std::set<std::string>> keep;
    auto intersect = [&](std::set<std::string> s) {
      if (!keep) {
        keep = std::move(s);
        return;
      }
      std::set<std::string> both;
      for (const auto& r : *keep) {
        if (s.count(r)) both.insert(r);
      }
      keep = std::move(both);
    };
    if (a.include_old_runs) {
      std::set<std::string> s;
      for (const auto& h : history) s.insert(h.run_id);
      intersect(std::move(s));
    }
    if (!a.older_than.empty()) {
      const auto cutoff = std::chrono::system_clock::now() - parse_duration(a.older_than);
      std::set<std::string> s;
      for (const auto& h : history) {
        if (h.published_at >= cutoff) s.insert(h.run_id);
      }
      intersect(std::move(s));
    }
    if (a.keep_last >= 0) {
      std::set<std::string> s;
      for (std::size_t i = 0; i < history.size() && i < static_cast<std::size_t>(a.keep_last);
           ++i) {
        s.insert(history[i].run_id);
      }
      intersect(std::move(s));
    }
    std::set<std::string> protect = keep.value_or(std::set<std::string>{});
    protect.insert(m.build.run_id);

    // Runs in flight: a `running` run record updated (or leased) recently.
    const auto grace = parse_duration(a.running_grace);
    const auto now = std::chrono::system_clock::now();
    ListOptions flat;
    const ListResult records = co_await store.list(prefix + "/runs/", std::move(flat));
    for (const auto& obj : records.objects) {
      if (obj.url.size() < 9 || obj.url.compare(obj.url.size() - 9, 9, "/run.yaml") != 0) continue;
      GetResult g;
      GetOptions whole;  // a named local: no temporaries inside co_await (g++ 12)
      try {
        g = co_await store.get(obj.url, std::move(whole));
      } catch (const error&) {
        continue;
      }
      const auto rec = writer::parse_run_record(g.body);
      if (!rec || rec->status != "running") continue;
      if (rec->lease_expires_at > now || now - rec->updated_at < grace) {
        protect.insert(rec->run_id);
        spared_running.insert(rec->run_id);
      }
    }

    const std::string runs_dir = join_url(prefix, {m.build.shard_prefix}) + "/";
    ListOptions lo;
    lo.delimiter = "/";
    const ListResult listed = co_await store.list(runs_dir, std::move(lo));
    for (const auto& cp : listed.common_prefixes) {
      const std::string name = strip_slash(cp).substr(runs_dir.size());
      if (name.rfind("run_id=", 0) != 0) continue;
      if (!protect.count(name.substr(7))) plan.push_back({cp, "old_run"});
    }
  }

  for (const auto& r : spared_running) {
    json::object o;
    o["action"] = "spared";
    o["reason"] = "running";
    o["run_id"] = r;
    print_record(o);
  }
  for (const auto& d : plan) {
    ListOptions flat;
    const ListResult objs = co_await store.list(d.prefix, std::move(flat));
    std::uint64_t bytes = 0;
    for (const auto& o : objs.objects) bytes += o.size;
    if (a.yes) {
      for (const auto& o : objs.objects) co_await store.remove(o.url);
    }
    json::object o;
    o["action"] = a.yes ? "deleted" : "would_delete";
    o["bytes"] = bytes;
    o["objects"] = objs.objects.size();
    o["prefix"] = d.prefix;
    o["reason"] = d.reason;
    print_record(o);
  }
  if (!a.yes && !plan.empty()) {
    std::cerr << "dry run: nothing deleted (pass --yes to delete)\n";
  }
}

void run_cleanup(const CleanupArgs& a) {
  asio::io_context io;
  auto store = open_cli_store(io.get_executor());
  auto ms = make_object_manifest_store(store, required_prefix());
  run_sync(io, cleanup(*store, *ms, a));
}

}  // namespace

void register_admin_commands(CLI::App& app) {
  auto limit = std::make_shared<std::size_t>(20);
  auto* history = app.add_subcommand("history", "list manifests, newest first, marking _CURRENT");
  history->add_option("--limit", *limit, "at most this many")->capture_default_str();
  history->callback([limit] { run_history(*limit); });

  auto rb = std::make_shared<RefArgs>();
  auto* rollback = app.add_subcommand("rollback", "point _CURRENT at an earlier manifest");
  auto* ref = rollback->add_option("--ref", rb->ref, "manifest URL");
  rollback->add_option("--offset", rb->offset, "0 = newest manifest, 1 = the one before, ...")
      ->excludes(ref);
  rollback->callback([rb] { run_rollback(*rb); });

  auto ca = std::make_shared<CleanupArgs>();
  auto* cl =
      app.add_subcommand("cleanup", "delete stale attempts and old runs (dry run by default)");
  auto* cref = cl->add_option("--ref", ca->target.ref, "target manifest (default: _CURRENT)");
  cl->add_option("--offset", ca->target.offset, "target = the N-th newest manifest (0 = newest)")
      ->excludes(cref);
  cl->add_flag("--include-old-runs", ca->include_old_runs,
               "delete shard trees of runs that have no manifest");
  cl->add_option("--older-than", ca->older_than,
                 "delete runs whose manifest is older than D (e.g. 7d, 12h)");
  cl->add_option("--keep-last", ca->keep_last, "keep the runs of the N newest manifests");
  cl->add_option("--running-grace", ca->running_grace,
                 "spare runs with a `running` run record updated within this (default 24h)")
      ->capture_default_str();
  cl->add_flag("--yes", ca->yes, "really delete");
  cl->callback([ca] { run_cleanup(*ca); });
}

}  // namespace shardy::cli
