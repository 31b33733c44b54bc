// Snapshot administration: `shardy history`, `shardy rollback`, `shardy cleanup`.
//
// cleanup is shardy::cleanup_snapshot (include/shardy/cleanup.hpp; interop spec 1.8): stale
// attempts of the target manifest, and with --include-old-runs / --older-than / --keep-last old
// run_id=* shard trees; runs in flight are spared. Nothing is deleted without --yes.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <shardy/cleanup.hpp>
#include <shardy/manifest_store.hpp>

#include "cli_store.hpp"
#include "commands.hpp"

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

void run_cleanup(const CleanupArgs& a) {
  CleanupOptions o;
  o.prefix = required_prefix();
  o.target_ref = a.target.ref;
  if (a.target.offset >= 0) o.target_offset = static_cast<std::size_t>(a.target.offset);
  o.include_old_runs = a.include_old_runs;
  if (!a.older_than.empty()) o.older_than = parse_duration(a.older_than);
  if (a.keep_last >= 0) o.keep_last = static_cast<std::size_t>(a.keep_last);
  o.running_grace = parse_duration(a.running_grace);
  o.dry_run = !a.yes;

  asio::io_context io;
  auto store = open_cli_store(io.get_executor());
  auto ms = make_object_manifest_store(store, o.prefix);
  const CleanupReport report = run_sync(io, cleanup_snapshot(store, ms, o));

  for (const auto& s : report.spared) {
    json::object j;
    j["action"] = "spared";
    j["reason"] = to_string(s.reason);
    j["run_id"] = s.run_id;
    j["run_record"] = s.run_record;
    print_record(j);
  }
  for (const auto& item : report.items) {
    json::object j;
    j["action"] = item.deleted ? "deleted" : "would_delete";
    j["bytes"] = item.bytes;
    j["objects"] = item.objects.size();
    j["prefix"] = item.prefix;
    j["reason"] = to_string(item.reason);
    j["run_id"] = item.run_id;
    print_record(j);
  }
  if (o.dry_run && !report.items.empty()) {
    std::cerr << "dry run: nothing deleted (pass --yes to delete)\n";
  }
  if (report.items.empty()) std::cerr << "nothing to clean up\n";
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
