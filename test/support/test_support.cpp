#include "support/test_support.hpp"

#include <sqlite3.h>

#include <boost/algorithm/hex.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>

namespace shardy::test {

std::filesystem::path fixtures_dir() {
  if (const char* env = std::getenv("SHARDY_FIXTURES")) return env;
  return SHARDY_FIXTURES_DIR;
}

std::filesystem::path make_temp_dir(std::string_view tag) {
  std::random_device rd;
  auto dir = std::filesystem::path(SHARDY_BINARY_DIR) / "test-tmp" /
             (std::string(tag) + "-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::string lookup(const std::filesystem::path& shard, std::string_view key) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(shard.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?", -1, &st, nullptr);
  sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
  std::string out = "<absent>";
  if (sqlite3_step(st) == SQLITE_ROW) {
    out.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)),
               static_cast<std::size_t>(sqlite3_column_bytes(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  boost::algorithm::hex_lower(bytes.begin(), bytes.end(), std::back_inserter(out));
  return out;
}

std::string from_hex(std::string_view hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  boost::algorithm::unhex(hex.begin(), hex.end(), std::back_inserter(out));  // throws if not hex
  return out;
}

}  // namespace shardy::test
