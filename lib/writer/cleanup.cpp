// Snapshot cleanup (include/shardy/cleanup.hpp; interop spec 1.8).
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <iterator>
#include <map>
#include <set>
#include <shardy/cleanup.hpp>
#include <shardy/writer.hpp>

#include "writer/run_record.hpp"
#include "writer/spawn_erased.hpp"

namespace shardy {
namespace {

namespace asio = boost::asio;

std::string strip_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The run id in a run record URL: .../<TS>_run_id=<R>_<32 hex>/run.yaml (spec 1.6). Empty when
// the directory name does not have that shape.
std::string run_id_from_record_url(std::string_view url) {
  std::string_view dir = url.substr(0, url.size() - std::string_view("/run.yaml").size());
  dir = dir.substr(dir.rfind('/') + 1);
  const auto at = dir.find("_run_id=");
  if (at == std::string_view::npos) return {};
  std::string_view rest = dir.substr(at + 8);
  const auto us = rest.rfind('_');
  if (us == std::string_view::npos || rest.size() - us - 1 != 32) return {};
  const std::string_view hex = rest.substr(us + 1);
  if (!std::all_of(hex.begin(), hex.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return {};
  }
  return std::string(rest.substr(0, us));
}

asio::awaitable<ManifestRef> resolve_target(ManifestStore& ms, const CleanupOptions& o) {
  if (!o.target_ref.empty()) {
    ManifestRef r;
    r.ref = o.target_ref;
    co_return r;
  }
  if (o.target_offset) {
    const std::size_t n = *o.target_offset;
    auto list = co_await ms.list_manifests(n + 1);
    if (list.size() <= n) {
      throw_error(errc::invalid_argument, "target offset " + std::to_string(n) + ": only " +
                                              std::to_string(list.size()) + " manifests");
    }
    co_return list[n];
  }
  auto cur = co_await ms.load_current();
  if (!cur) throw_error(errc::no_current_pointer, "no _CURRENT under " + o.prefix);
  co_return *cur;
}

// Run ids with a manifest that the active old-run criteria protect (their intersection).
asio::awaitable<std::set<std::string>> protected_by_manifests(ManifestStore& ms,
                                                              const CleanupOptions& o,
                                                              Timestamp now) {
  const auto history = co_await ms.list_manifests(o.max_manifests);
  std::optional<std::set<std::string>> keep;
  const auto intersect = [&keep](std::set<std::string> s) {
    if (!keep) {
      keep = std::move(s);
      return;
    }
    std::set<std::string> both;
    std::set_intersection(keep->begin(), keep->end(), s.begin(), s.end(),
                          std::inserter(both, both.end()));
    keep = std::move(both);
  };
  if (o.include_old_runs) {
    std::set<std::string> s;
    for (const auto& h : history) s.insert(h.run_id);
    intersect(std::move(s));
  }
  if (o.older_than) {
    const Timestamp cutoff =
        now - std::chrono::duration_cast<std::chrono::microseconds>(*o.older_than);
    std::set<std::string> s;
    for (const auto& h : history) {
      if (h.published_at >= cutoff) s.insert(h.run_id);
    }
    intersect(std::move(s));
  }
  if (o.keep_last) {
    std::set<std::string> s;
    for (std::size_t i = 0; i < history.size() && i < *o.keep_last; ++i) {
      s.insert(history[i].run_id);
    }
    intersect(std::move(s));
  }
  co_return keep.value_or(std::set<std::string>{});
}

// Runs that may be in flight, from the run registry, with the record that spares each.
asio::awaitable<std::map<std::string, SparedRun>> runs_in_flight(ObjectStore& store,
                                                                 const CleanupOptions& o,
                                                                 Timestamp now) {
  std::map<std::string, SparedRun> out;
  const std::string dir = join_url(strip_slash(o.prefix), {o.run_registry_prefix}) + "/";
  ListOptions flat;
  const ListResult records = co_await store.list(dir, std::move(flat));
  for (const auto& obj : records.objects) {
    if (!ends_with(obj.url, "/run.yaml")) continue;
    std::optional<writer::RunRecord> rec;
    try {
      GetOptions whole;  // a named local: no temporaries inside co_await (g++ 12)
      const GetResult g = co_await store.get(obj.url, std::move(whole));
      rec = writer::parse_run_record(g.body);
    } catch (const error& e) {
      if (e.code() == make_error_code(errc::object_not_found)) continue;  // deleted meanwhile
    }
    SparedRun s;
    s.run_record = obj.url;
    if (!rec) {
      // Unreadable or unparseable: it may describe a live run, so spare the run its key names.
      s.reason = SparedRun::kind::unreadable_run_record;
      s.run_id = run_id_from_record_url(obj.url);
      if (s.run_id.empty()) continue;
    } else {
      if (rec->status != "running") continue;
      const bool leased = rec->lease_expires_at > now;
      const bool recent = now - rec->updated_at <
                          std::chrono::duration_cast<std::chrono::microseconds>(o.running_grace);
      if (!leased && !recent) continue;
      s.reason = SparedRun::kind::running;
      s.run_id = rec->run_id;
    }
    out.emplace(s.run_id, std::move(s));
  }
  co_return out;
}

// The directory names (without the trailing '/') of `dir`'s common prefixes that start with
// `marker`, with their full URLs.
asio::awaitable<std::vector<std::pair<std::string, std::string>>> subdirs(ObjectStore& store,
                                                                          std::string dir,
                                                                          std::string marker) {
  ListOptions lo;
  lo.delimiter = "/";
  const ListResult listed = co_await store.list(dir, std::move(lo));
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& cp : listed.common_prefixes) {
    std::string name = strip_slash(cp).substr(dir.size());
    if (name.rfind(marker, 0) == 0) out.emplace_back(std::move(name), cp);
  }
  co_return out;
}

asio::awaitable<CleanupReport> cleanup_impl(std::shared_ptr<ObjectStore> store,
                                            std::shared_ptr<ManifestStore> ms, CleanupOptions o) {
  if (o.prefix.empty()) throw_error(errc::invalid_argument, "cleanup: empty prefix");
  const Timestamp now = o.now.value_or(
      std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()));
  CleanupReport report;
  report.target = co_await resolve_target(*ms, o);
  const Manifest m = co_await ms->load_manifest(report.target.ref);
  report.target.run_id = m.build.run_id;
  const std::string base = strip_slash(m.build.s3_prefix);

  std::vector<CleanupItem> candidates;
  // 1. Stale attempts of the target manifest's shards.
  for (const auto& s : m.shards) {
    if (!s.db_url) continue;
    std::string dir = join_url(base, {m.build.shard_prefix, "run_id=" + m.build.run_id,
                                      format_db_path(m.build.db_path_template, s.db_id)}) +
                      "/";
    std::string marker = "attempt=";
    const auto attempts = co_await subdirs(*store, std::move(dir), std::move(marker));
    for (const auto& [name, url] : attempts) {
      if (strip_slash(url) == strip_slash(*s.db_url)) continue;
      CleanupItem item;
      item.reason = CleanupItem::kind::stale_attempt;
      item.prefix = url;
      item.run_id = m.build.run_id;
      candidates.push_back(std::move(item));
    }
  }

  // 2. Old runs.
  if (o.include_old_runs || o.older_than || o.keep_last) {
    std::set<std::string> keep = co_await protected_by_manifests(*ms, o, now);
    keep.insert(m.build.run_id);
    report.protected_runs.assign(keep.begin(), keep.end());
    std::string dir = join_url(strip_slash(o.prefix), {m.build.shard_prefix}) + "/";
    std::string marker = "run_id=";
    const auto runs = co_await subdirs(*store, std::move(dir), std::move(marker));
    for (const auto& [name, url] : runs) {
      std::string run_id = name.substr(7);
      if (keep.count(run_id)) continue;
      CleanupItem item;
      item.reason = CleanupItem::kind::old_run;
      item.prefix = url;
      item.run_id = std::move(run_id);
      candidates.push_back(std::move(item));
    }
  }

  // 3. Runs in flight, read only now (after the shard listings; see the header).
  if (!candidates.empty()) {
    const auto in_flight = co_await runs_in_flight(*store, o, now);
    std::set<std::string> spared_ids;
    for (auto& c : candidates) {
      const auto it = in_flight.find(c.run_id);
      if (it == in_flight.end()) {
        report.items.push_back(std::move(c));
      } else if (spared_ids.insert(c.run_id).second) {
        report.spared.push_back(it->second);
      }
    }
  }

  // 4. What each directory holds; delete it unless this is a dry run.
  for (auto& item : report.items) {
    ListOptions flat;
    const ListResult objs = co_await store->list(item.prefix, std::move(flat));
    for (const auto& obj : objs.objects) {
      item.objects.push_back(obj.url);
      item.bytes += obj.size;
    }
  }
  if (!o.dry_run) {
    for (auto& item : report.items) {
      for (const auto& url : item.objects) {
        std::string u = url;
        co_await store->remove(std::move(u));
      }
      item.deleted = true;
    }
  }
  co_return report;
}

}  // namespace

std::string_view to_string(CleanupItem::kind k) noexcept {
  return k == CleanupItem::kind::stale_attempt ? "stale_attempt" : "old_run";
}

std::string_view to_string(SparedRun::kind k) noexcept {
  return k == SparedRun::kind::running ? "running" : "unreadable_run_record";
}

asio::awaitable<CleanupReport> cleanup_snapshot(std::shared_ptr<ObjectStore> store,
                                                std::shared_ptr<ManifestStore> manifests,
                                                CleanupOptions options) {
  if (!store || !manifests) throw_error(errc::invalid_argument, "cleanup: null store");
  co_return co_await cleanup_impl(std::move(store), std::move(manifests), std::move(options));
}

void async_cleanup_snapshot_erased(
    asio::any_io_executor ex, std::shared_ptr<ObjectStore> store,
    std::shared_ptr<ManifestStore> manifests, CleanupOptions options,
    asio::any_completion_handler<void(error_code, CleanupReport)> handler) {
  auto op = cleanup_snapshot(std::move(store), std::move(manifests), std::move(options));
  detail::co_spawn_erased(ex, std::move(op), std::move(handler));
}

}  // namespace shardy
