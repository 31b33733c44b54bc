// Helpers shared by shardy's tests.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace shardy::test {

/// ../shared/fixtures (or $SHARDY_FIXTURES).
std::filesystem::path fixtures_dir();

/// A fresh empty directory under the build tree, removed by the caller or left for inspection.
std::filesystem::path make_temp_dir(std::string_view tag);

std::string read_file(const std::filesystem::path& p);
std::vector<std::string> read_lines(const std::filesystem::path& p);

/// The value of `key` in a SQLite kv shard file (SELECT v FROM kv WHERE k = ?), or "<absent>".
std::string lookup(const std::filesystem::path& shard, std::string_view key);

std::string to_hex(std::string_view bytes);
std::string from_hex(std::string_view hex);

}  // namespace shardy::test
