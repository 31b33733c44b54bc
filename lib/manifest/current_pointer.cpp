// The _CURRENT pointer (interop spec 1.4): pydantic CurrentPointer semantics on read (extra keys
// ignored, tolerant datetimes), sorted compact JSON on write.
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <cmath>
#include <shardy/manifest.hpp>

#include "manifest/python_json.hpp"

namespace shardy {
namespace {

namespace json = boost::json;

[[noreturn]] void fail(std::string rule, std::string detail) {
  throw_error(errc::manifest_parse_error, "_CURRENT rule '" + rule + "': " + std::move(detail));
}

std::optional<std::int64_t> json_int(const json::value& v) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return static_cast<std::int64_t>(v.get_uint64());
  if (v.is_double()) {  // pydantic lax mode takes 1.0 for an int
    double d = v.get_double();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
      return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

CurrentPointer parse_impl(std::string_view text) {
  error_code jec;
  json::value root = json::parse(text, jec);
  if (jec) fail("json", "not valid JSON: " + jec.message());
  if (!root.is_object()) fail("json", "the pointer must be a JSON object");
  const auto& o = root.get_object();
  CurrentPointer p;
  auto required_string = [&](std::string_view name) -> std::string {
    auto* v = o.if_contains(name);
    if (!v) fail(std::string(name), "missing");
    if (!v->is_string()) fail(std::string(name), "must be a string");
    return std::string(v->get_string());
  };
  p.manifest_ref = required_string("manifest_ref");
  p.run_id = required_string("run_id");
  auto* u = o.if_contains("updated_at");
  if (!u) fail("updated_at", "missing");
  std::optional<Timestamp> t;
  if (u->is_string()) {
    t = parse_timestamp(u->get_string());
  } else if (auto secs = json_int(*u)) {  // pydantic also takes Unix seconds
    t = parse_timestamp(std::to_string(*secs));
  }
  if (!t) fail("updated_at", "not a datetime");
  p.updated_at = *t;
  if (auto* v = o.if_contains("format_version")) {
    auto n = json_int(*v);
    if (!n) fail("format_version", "must be an integer");
    p.format_version = *n;  // not checked against 1, like the reference
  }
  if (auto* v = o.if_contains("manifest_content_type")) {
    if (!v->is_string()) fail("manifest_content_type", "must be a string");
    p.manifest_content_type = std::string(v->get_string());
  }
  return p;
}

}  // namespace

CurrentPointer parse_current_pointer(std::string_view text, error_code& ec,
                                     std::string* diagnostics) {
  ec = {};
  try {
    return parse_impl(text);
  } catch (const error& e) {
    ec = e.code();
    if (diagnostics) *diagnostics = e.diagnostics();
  }
  return {};
}

CurrentPointer parse_current_pointer(std::string_view text) { return parse_impl(text); }

std::string serialize_current_pointer(const CurrentPointer& p) {
  json::object o;
  o["format_version"] = p.format_version;
  o["manifest_content_type"] = p.manifest_content_type;
  o["manifest_ref"] = p.manifest_ref;
  o["run_id"] = p.run_id;
  o["updated_at"] = format_timestamp(p.updated_at);
  return detail::dump_python_json(o, detail::JsonSeparators::compact);
}

}  // namespace shardy
