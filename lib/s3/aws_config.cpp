#include "s3/aws_config.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace shardy::s3 {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

IniFile parse_ini(std::string_view text) {
  IniFile out;
  std::map<std::string, std::string>* section = nullptr;
  std::string parent;  // key with an empty value that may own indented sub-keys
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
    std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (!indented && line.front() == '[') {
      auto close = line.find(']');
      if (close == std::string_view::npos) {
        section = nullptr;  // malformed header: ignore its keys rather than guess
        continue;
      }
      section = &out[std::string(trim(line.substr(1, close - 1)))];
      parent.clear();
      continue;
    }
    if (!section) continue;
    auto eq = line.find_first_of("=:");
    if (eq == std::string_view::npos) continue;
    std::string key = lower(trim(line.substr(0, eq)));
    std::string value(trim(line.substr(eq + 1)));
    if (key.empty()) continue;
    if (indented && !parent.empty()) {
      (*section)[parent + "." + key] = std::move(value);
      continue;
    }
    parent = value.empty() ? key : std::string{};
    (*section)[std::move(key)] = std::move(value);
  }
  return out;
}

IniFile load_ini(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_ini(ss.str());
}

const std::map<std::string, std::string>* config_profile(const IniFile& config,
                                                         std::string_view profile) {
  std::string name = "profile ";
  name += profile;
  if (auto it = config.find(name); it != config.end()) return &it->second;
  if (profile == "default") {
    if (auto it = config.find("default"); it != config.end()) return &it->second;
  }
  return nullptr;
}

const std::map<std::string, std::string>* credentials_profile(const IniFile& credentials,
                                                              std::string_view profile) {
  if (auto it = credentials.find(profile); it != credentials.end()) return &it->second;
  return nullptr;
}

std::optional<std::string> env(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

}  // namespace shardy::s3
