#include "writer/run_record.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace shardy::writer {
namespace {

bool all_of_set(std::string_view s, std::string_view set) {
  return !s.empty() && s.find_first_not_of(set) == std::string_view::npos;
}

// Strings YAML 1.1's implicit resolvers (PyYAML) would read as something other than a string:
// bool/null words, ints (decimal, 0b, 0o, 0x, sexagesimal), floats, timestamps. Conservative:
// anything that merely looks numeric is quoted.
bool resolves_to_non_string(std::string_view s) {
  static constexpr std::string_view kWords[] = {
      "yes",   "Yes",   "YES", "no", "No",   "NO",   "true", "True", "TRUE", "false",
      "False", "FALSE", "on",  "On", "ON",   "off",  "Off",  "OFF",  "~",    "null",
      "Null",  "NULL",  "<<",  "=",  ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"};
  for (auto w : kWords) {
    if (s == w) return true;
  }
  std::string_view body = s;
  if (!body.empty() && (body.front() == '-' || body.front() == '+')) body.remove_prefix(1);
  if (body == ".inf" || body == ".Inf" || body == ".INF") return true;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'b')) {
    return all_of_set(body.substr(2), "0123456789abcdefABCDEF_");
  }
  // decimal / octal / sexagesimal ints and floats: digits with '_', ':', at most one '.', and an
  // optional exponent after a '.'.
  if (!body.empty() && (std::isdigit(static_cast<unsigned char>(body.front())) ||
                        (body.front() == '.' && body.size() > 1))) {
    const auto e = body.find_first_of("eE");
    std::string_view mant = body.substr(0, e);
    if (all_of_set(mant, "0123456789_:.") && std::count(mant.begin(), mant.end(), '.') <= 1) {
      if (e == std::string_view::npos) return true;
      std::string_view exp = body.substr(e + 1);
      if (!exp.empty() && (exp.front() == '-' || exp.front() == '+')) exp.remove_prefix(1);
      if (all_of_set(exp, "0123456789")) return true;
    }
  }
  // timestamps: YYYY-M[M]-D[D] optionally followed by a time
  if (s.size() >= 8 && all_of_set(s.substr(0, 4), "0123456789") && s[4] == '-') {
    return true;
  }
  return false;
}

bool printable_ascii_only(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
}

// Plain style is allowed when nothing in the string is a YAML indicator in that position.
bool plain_allowed(std::string_view s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  static constexpr std::string_view kLeading = "-?:,[]{}#&*!|>'\"%@`";
  if (kLeading.find(s.front()) != std::string_view::npos) {
    // "-", "?" and ":" start a plain scalar only when followed by a non-space.
    if (!((s.front() == '-' || s.front() == '?' || s.front() == ':') && s.size() > 1 &&
          s[1] != ' ')) {
      return false;
    }
  }
  if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos) {
    return false;
  }
  if (s.back() == ':') return false;
  return !resolves_to_non_string(s);
}

std::string double_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", u);
          out += buf;
        } else {
          out.push_back(c);  // UTF-8 passes through (PyYAML's allow_unicode is off: close enough)
        }
    }
  }
  out += '"';
  return out;
}

std::string unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    std::string out;
    v = v.substr(1, v.size() - 2);
    for (std::size_t i = 0; i < v.size(); ++i) {
      out.push_back(v[i]);
      if (v[i] == '\'' && i + 1 < v.size() && v[i + 1] == '\'') ++i;
    }
    return out;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    std::string out;
    v = v.substr(1, v.size() - 2);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) {
        const char e = v[++i];
        if (e == 'n')
          out.push_back('\n');
        else if (e == 't')
          out.push_back('\t');
        else if (e == 'r')
          out.push_back('\r');
        else if (e == 'x' && i + 2 < v.size()) {
          out.push_back(static_cast<char>(std::stoi(std::string(v.substr(i + 1, 2)), nullptr, 16)));
          i += 2;
        } else
          out.push_back(e);
      } else {
        out.push_back(v[i]);
      }
    }
    return out;
  }
  return std::string(v);
}

}  // namespace

std::string yaml_scalar(std::string_view s) {
  if (!printable_ascii_only(s)) {
    bool has_control = std::any_of(s.begin(), s.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return u < 0x20 || u == 0x7f;
    });
    if (has_control) return double_quoted(s);
  }
  if (plain_allowed(s)) return std::string(s);
  std::string out = "'";
  for (char c : s) {
    out.push_back(c);
    if (c == '\'') out.push_back('\'');
  }
  out += '\'';
  return out;
}

std::string serialize_run_record(const RunRecord& r) {
  auto opt = [](const std::optional<std::string>& v) {
    return v ? yaml_scalar(*v) : std::string("null");
  };
  auto ts = [](Timestamp t) { return yaml_scalar(format_timestamp(t)); };
  std::string out;
  out += "db_path_template: " + yaml_scalar(r.db_path_template) + "\n";
  out += "error_message: " + opt(r.error_message) + "\n";
  out += "error_type: " + opt(r.error_type) + "\n";
  out += "format_version: " + std::to_string(r.format_version) + "\n";
  out += "lease_expires_at: " + ts(r.lease_expires_at) + "\n";
  out += "manifest_ref: " + opt(r.manifest_ref) + "\n";
  out += "run_id: " + yaml_scalar(r.run_id) + "\n";
  out += "s3_prefix: " + yaml_scalar(r.s3_prefix) + "\n";
  out += "shard_prefix: " + yaml_scalar(r.shard_prefix) + "\n";
  out += "started_at: " + ts(r.started_at) + "\n";
  out += "status: " + yaml_scalar(r.status) + "\n";
  out += "updated_at: " + ts(r.updated_at) + "\n";
  out += "writer_type: " + yaml_scalar(r.writer_type) + "\n";
  return out;
}

std::optional<RunRecord> parse_run_record(std::string_view yaml) {
  RunRecord r;
  bool have_status = false, have_run_id = false;
  while (!yaml.empty()) {
    const auto nl = yaml.find('\n');
    std::string_view line = yaml.substr(0, nl);
    yaml = nl == std::string_view::npos ? std::string_view{} : yaml.substr(nl + 1);
    const auto colon = line.find(": ");
    if (colon == std::string_view::npos || line.empty() || line.front() == ' ') continue;
    const std::string_view key = line.substr(0, colon);
    std::string_view raw = line.substr(colon + 2);
    while (!raw.empty() && (raw.back() == '\r' || raw.back() == ' ')) raw.remove_suffix(1);
    const bool is_null = raw == "null" || raw == "~";
    const std::string v = unquote(raw);
    auto opt = [&]() -> std::optional<std::string> {
      if (is_null) return std::nullopt;
      return v;
    };
    auto time = [&]() { return parse_timestamp(v).value_or(Timestamp{}); };
    if (key == "db_path_template")
      r.db_path_template = v;
    else if (key == "error_message")
      r.error_message = opt();
    else if (key == "error_type")
      r.error_type = opt();
    else if (key == "format_version")
      r.format_version = std::atoll(v.c_str());
    else if (key == "lease_expires_at")
      r.lease_expires_at = time();
    else if (key == "manifest_ref")
      r.manifest_ref = opt();
    else if (key == "run_id")
      r.run_id = v, have_run_id = true;
    else if (key == "s3_prefix")
      r.s3_prefix = v;
    else if (key == "shard_prefix")
      r.shard_prefix = v;
    else if (key == "started_at")
      r.started_at = time();
    else if (key == "status")
      r.status = v, have_status = true;
    else if (key == "updated_at")
      r.updated_at = time();
    else if (key == "writer_type")
      r.writer_type = v;
  }
  if (!have_status || !have_run_id) return std::nullopt;
  return r;
}

}  // namespace shardy::writer
