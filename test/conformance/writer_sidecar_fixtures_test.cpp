// The sidecar producer rebuilds shardyfusion's v8 sidecars byte for byte (interop spec 4.5):
// for every shard of every fixture snapshot, the decompressed body we build from shard.db equals
// the body of the shard.sidecar shardyfusion wrote, and the fields in expected/<name>/sidecars.json
// (body_sha256, n_pages, chain_count, body_size, page_size) match.
#include <gtest/gtest.h>
#include <zstd.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <string>

#include "core/sidecar_format.hpp"
#include "support/digest_hex.hpp"
#include "support/test_support.hpp"
#include "writer/sidecar_builder.hpp"

namespace fs = std::filesystem;
namespace sf = shardy::sidecar_format;
using shardy::test::fixtures_dir;
using shardy::test::read_file;
using shardy::test::sha256_hex;
using shardy::test::to_hex;

namespace {

std::uint64_t le(std::string_view s, std::size_t off, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i)
    v |= std::uint64_t(static_cast<unsigned char>(s[off + i])) << (8 * i);
  return v;
}

struct ParsedSidecar {
  std::uint64_t body_size = 0;
  std::uint32_t page_size = 0;
  std::string tag;
  std::string body;  // decompressed
};

ParsedSidecar parse(std::string_view obj) {
  ParsedSidecar p;
  EXPECT_EQ(obj.substr(0, 4), sf::magic);
  EXPECT_EQ(static_cast<std::uint8_t>(obj[sf::version_offset]), sf::version);
  p.body_size = le(obj, sf::body_size_offset, 8);
  p.page_size = static_cast<std::uint32_t>(le(obj, sf::page_size_offset, 4));
  const std::size_t tag_len = static_cast<unsigned char>(obj[sf::tag_len_offset]);
  p.tag = std::string(obj.substr(sf::tag_offset, tag_len));
  const std::string_view frame = obj.substr(sf::tag_offset + tag_len);
  p.body.resize(p.body_size);
  const std::size_t n = ZSTD_decompress(p.body.data(), p.body.size(), frame.data(), frame.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  EXPECT_EQ(n, p.body_size);
  return p;
}

// s3://shardy-fixtures/<key> is <fixtures>/<key>.
fs::path local_path(std::string_view url) {
  constexpr std::string_view bucket = "s3://shardy-fixtures/";
  EXPECT_EQ(url.substr(0, bucket.size()), bucket);
  return fixtures_dir() / std::string(url.substr(bucket.size()));
}

}  // namespace

// Every shard.db in every fixture snapshot (all published versions, not only the current one).
TEST(WriterSidecarFixtures, RebuiltBodyEqualsShardyfusionBodyForEveryShard) {
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(fixtures_dir() / "snapshots")) {
    if (entry.path().filename() != "shard.db") continue;
    const fs::path sidecar = entry.path().parent_path() / "shard.sidecar";
    if (!fs::exists(sidecar)) continue;
    SCOPED_TRACE(entry.path().string());
    const ParsedSidecar ref = parse(read_file(sidecar));
    const shardy::writer::SidecarBody mine = shardy::writer::build_sidecar_body(entry.path());
    EXPECT_EQ(mine.page_size, ref.page_size);
    EXPECT_EQ(mine.body.size(), ref.body_size);
    EXPECT_TRUE(mine.body == ref.body) << "body differs";

    // Framed with the same tag, our prefix is byte-identical and the frame decodes to the body.
    const std::string framed = shardy::writer::build_sidecar(entry.path(), ref.tag);
    const std::string ref_obj = read_file(sidecar);
    EXPECT_EQ(framed.substr(0, sf::tag_offset + ref.tag.size()),
              ref_obj.substr(0, sf::tag_offset + ref.tag.size()));
    EXPECT_EQ(parse(framed).body, ref.body);
    ++checked;
  }
  EXPECT_GE(checked, 8 + 5 + 18);  // kv_small, kv_str, kv_sparse at least
}

// The reference's own record of each sidecar (expected/<name>/sidecars.json).
TEST(WriterSidecarFixtures, MatchesSidecarsJson) {
  int checked = 0;
  for (const auto& dir : fs::directory_iterator(fixtures_dir() / "expected")) {
    const fs::path json = dir.path() / "sidecars.json";
    if (!fs::exists(json)) continue;
    const auto doc = boost::json::parse(read_file(json));
    for (const auto& e : doc.as_array()) {
      const auto& o = e.as_object();
      const std::string url(o.at("db_url").as_string());
      SCOPED_TRACE(url);
      const fs::path db = local_path(url) / "shard.db";
      const auto body = shardy::writer::build_sidecar_body(db);
      EXPECT_EQ(sha256_hex(body.body), o.at("body_sha256").as_string());
      EXPECT_EQ(body.n_pages, o.at("n_pages").to_number<std::uint32_t>());
      EXPECT_EQ(body.chain_count, o.at("chain_count").to_number<std::uint32_t>());
      EXPECT_EQ(body.body.size(), o.at("body_size").to_number<std::uint64_t>());
      EXPECT_EQ(body.page_size, o.at("page_size").to_number<std::uint32_t>());
      EXPECT_EQ(fs::file_size(db), o.at("db_bytes").to_number<std::uint64_t>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 8 + 5 + 18 + 4);
}

// kv_str has overflow chains in every shard: the chain map is non-trivial there.
TEST(WriterSidecarFixtures, KvStrHasChains) {
  const auto doc = boost::json::parse(read_file(fixtures_dir() / "expected/kv_str/sidecars.json"));
  for (const auto& e : doc.as_array()) {
    const auto body = shardy::writer::build_sidecar_body(
        local_path(e.as_object().at("db_url").as_string()) / "shard.db");
    EXPECT_GT(body.chain_count, 0u);
  }
}
