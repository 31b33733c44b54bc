// ManifestStore over an ObjectStore, laid out like shardyfusion's S3ManifestStore (interop spec
// 1.4, 1.5, 5.1).
#include <algorithm>
#include <shardy/manifest_store.hpp>

namespace shardy {
namespace {

bool digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return false;
  for (std::size_t i = pos; i < pos + n; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

// MANIFEST_PREFIX_RE: ^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_run_id=[^/]+/?$
// Returns the run id, or nullopt when the directory name does not match.
std::optional<std::string> match_manifest_dir(std::string_view name) {
  if (!name.empty() && name.back() == '/') name.remove_suffix(1);
  if (!(digits(name, 0, 4) && name.size() > 4 && name[4] == '-' && digits(name, 5, 2) &&
        name[7] == '-' && digits(name, 8, 2) && name[10] == 'T' && digits(name, 11, 2) &&
        name[13] == ':' && digits(name, 14, 2) && name[16] == ':' && digits(name, 17, 2) &&
        name[19] == '.' && digits(name, 20, 6) && name.size() > 26 && name[26] == 'Z'))
    return std::nullopt;
  constexpr std::string_view marker = "_run_id=";
  if (name.substr(27, marker.size()) != marker) return std::nullopt;
  std::string_view run = name.substr(27 + marker.size());
  if (run.empty() || run.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(run);
}

// First `run_id=([^/]+)` in a ref (spec 5.1 set_current).
std::optional<std::string> run_id_of_ref(std::string_view ref) {
  for (std::size_t pos = ref.find("run_id="); pos != std::string_view::npos;
       pos = ref.find("run_id=", pos + 1)) {
    std::string_view rest = ref.substr(pos + 7);
    std::string_view run = rest.substr(0, rest.find('/'));
    if (!run.empty()) return std::string(run);
  }
  return std::nullopt;
}

Timestamp now_utc() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

class ObjectManifestStore final : public ManifestStore {
 public:
  ObjectManifestStore(std::shared_ptr<ObjectStore> objects, std::string prefix,
                      ManifestStoreOptions options)
      : objects_(std::move(objects)), prefix_(std::move(prefix)), options_(std::move(options)) {
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
    if (prefix_.starts_with("s3://")) {
      auto slash = prefix_.find('/', 5);
      bucket_base_ = slash == std::string::npos ? prefix_ + "/" : prefix_.substr(0, slash + 1);
    } else if (!prefix_.starts_with("file:///")) {
      throw_error(errc::invalid_url,
                  "a snapshot prefix is s3://bucket/prefix or file:///dir, got '" + prefix_ + "'");
    }
  }

  boost::asio::awaitable<std::optional<ManifestRef>> load_current() override {
    std::string url = current_url();
    std::optional<GetResult> got;
    GetOptions go;  // a named local, never a temporary in a co_await operand (g++ 12 rule)
    try {
      got = co_await objects_->get(url, go);
    } catch (const error& e) {
      if (e.code() != errc::object_not_found) throw;
    }
    if (!got) co_return std::nullopt;
    CurrentPointer p = parse_current_pointer(got->body);
    co_return ManifestRef{p.manifest_ref, p.run_id, p.updated_at};
  }

  boost::asio::awaitable<Manifest> load_manifest(std::string ref) override {
    std::string url = resolve(ref);
    GetOptions go;
    GetResult got = co_await objects_->get(url, go);
    co_return parse_manifest(got.body);
  }

  boost::asio::awaitable<std::vector<ManifestRef>> list_manifests(std::size_t limit) override {
    ListOptions lo;
    lo.delimiter = "/";
    const std::string base = prefix_ + "/manifests/";
    ListResult listed = co_await objects_->list(base, lo);
    std::vector<std::string> dirs = listed.common_prefixes;
    std::sort(dirs.begin(), dirs.end());  // ascending names, as the S3 listing returns them
    std::vector<ManifestRef> refs;
    for (const std::string& d : dirs) {
      if (!d.starts_with(base)) continue;
      std::string name = d.substr(base.size());
      auto run = match_manifest_dir(name);
      if (!run) continue;
      auto ts = parse_timestamp(std::string_view(name).substr(0, 27));
      if (!ts) continue;  // matches the pattern but is no date (e.g. month 13)
      if (name.back() == '/') name.pop_back();
      refs.push_back(ManifestRef{base + name + "/" + options_.manifest_name, *run, *ts});
    }
    std::stable_sort(refs.begin(), refs.end(), [](const ManifestRef& a, const ManifestRef& b) {
      return a.published_at > b.published_at;
    });
    if (refs.size() > limit) refs.resize(limit);
    co_return refs;
  }

  boost::asio::awaitable<ManifestRef> publish(const Manifest& manifest) override {
    const std::string& run_id = manifest.build.run_id;
    if (run_id.empty() || run_id.find('/') != std::string::npos)
      throw_error(errc::invalid_argument, "run_id must be non-empty and contain no '/'");
    std::string bytes = build_manifest(manifest);
    Timestamp ts = now_utc();
    std::string ref = prefix_ + "/manifests/" + format_timestamp_dir(ts) + "_run_id=" + run_id +
                      "/" + options_.manifest_name;
    // Manifests are immutable (spec 1.3): create-only, so that a publisher never replaces one.
    // A create that reports a conflict because an earlier attempt of this very PUT landed
    // (the response was lost and the client retried) is recognised by the content and counts
    // as done.
    PutOptions po;
    po.content_type = "application/x-sqlite3";
    po.if_none_match = true;
    bool conflict = false;
    try {
      co_await objects_->put(ref, bytes, po);
    } catch (const error& e) {
      if (e.code() != make_error_code(errc::precondition_failed)) throw;
      conflict = true;
    }
    if (conflict) {
      GetOptions whole;
      const GetResult existing = co_await objects_->get(ref, std::move(whole));
      if (existing.body != bytes) {
        throw_error(errc::precondition_failed,
                    "manifest " + ref + " already exists with other content (not replaced)");
      }
    }
    co_await write_current(ref, run_id);
    co_return ManifestRef{ref, run_id, ts};
  }

  boost::asio::awaitable<ManifestRef> set_current(std::string ref) override {
    auto run = run_id_of_ref(ref);
    if (!run) throw_error(errc::invalid_argument, "no run_id=<id> in manifest ref '" + ref + "'");
    Timestamp at = co_await write_current(ref, *run);
    co_return ManifestRef{ref, *run, at};
  }

 private:
  std::string current_url() const { return prefix_ + "/" + options_.current_pointer_key; }

  // Bucket decision (spec 1.4): like shardyfusion's S3 store, an s3:// ref is read by its key
  // from the bucket this store was configured with; the ref's own bucket is ignored. A snapshot
  // copied to another bucket thus keeps loading its manifests from the copy, and shardy reads
  // exactly the object Python reads. Other refs (file:///...) are used as they are.
  std::string resolve(const std::string& ref) const {
    if (bucket_base_.empty() || !ref.starts_with("s3://")) return ref;
    auto slash = ref.find('/', 5);
    if (slash == std::string::npos)
      throw_error(errc::invalid_url, "manifest ref without a key: '" + ref + "'");
    return bucket_base_ + ref.substr(slash + 1);
  }

  boost::asio::awaitable<Timestamp> write_current(const std::string& ref,
                                                  const std::string& run_id) {
    CurrentPointer p;
    p.manifest_ref = ref;
    p.run_id = run_id;
    p.updated_at = now_utc();
    PutOptions po;
    po.content_type = "application/json";
    std::string body = serialize_current_pointer(p);
    std::string url = current_url();
    co_await objects_->put(url, std::move(body), po);
    co_return p.updated_at;
  }

  std::shared_ptr<ObjectStore> objects_;
  std::string prefix_;
  std::string bucket_base_;  // "s3://bucket/" for s3 prefixes, else empty
  ManifestStoreOptions options_;
};

}  // namespace

std::shared_ptr<ManifestStore> make_object_manifest_store(std::shared_ptr<ObjectStore> objects,
                                                          std::string prefix_url,
                                                          ManifestStoreOptions options) {
  return std::make_shared<ObjectManifestStore>(std::move(objects), std::move(prefix_url),
                                               std::move(options));
}

}  // namespace shardy
