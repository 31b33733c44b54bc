// The sidecar producer on synthetic shards (interop spec 4.5): decode what we produce with an
// independent reading of the spec and check every reader-side validation rule plus page
// reconstruction against the file itself. (Byte-exactness against shardyfusion's own sidecars is
// in test/conformance/writer_sidecar_fixtures_test.cpp.)
#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <shardy/error.hpp>
#include <string>

#include "core/sidecar_format.hpp"
#include "support/test_support.hpp"
#include "writer/sidecar_builder.hpp"
#include "writer/sqlite_shard_builder.hpp"

namespace fs = std::filesystem;
namespace sf = shardy::sidecar_format;
using namespace shardy::writer;

namespace {

std::uint32_t u32(std::string_view s, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, s.data() + off, 4);  // little-endian host (x86-64/aarch64)
  return v;
}

struct Decoded {
  std::string tag;
  std::uint32_t page_size = 0;
  std::vector<std::uint32_t> pagenos, offsets, heads, chain_offsets, chain_pages;
  std::string pages;
};

Decoded decode(std::string_view obj) {
  Decoded d;
  EXPECT_EQ(obj.substr(0, 4), "SQPC");
  EXPECT_EQ(obj[4], 8);
  std::uint64_t body_size;
  std::memcpy(&body_size, obj.data() + 5, 8);
  d.page_size = u32(obj, 13);
  const std::size_t tl = static_cast<unsigned char>(obj[17]);
  d.tag = std::string(obj.substr(18, tl));
  const std::string_view frame = obj.substr(18 + tl);
  // content checksum flag set (frame header descriptor bit 2)
  EXPECT_TRUE(static_cast<unsigned char>(frame[4]) & 0x04);
  std::string body(body_size, '\0');
  const std::size_t n = ZSTD_decompress(body.data(), body.size(), frame.data(), frame.size());
  EXPECT_FALSE(ZSTD_isError(n));
  EXPECT_EQ(n, body_size);
  std::size_t pos = 0;
  auto take = [&]() {
    const auto v = u32(body, pos);
    pos += 4;
    return v;
  };
  const std::uint32_t np = take();
  for (std::uint32_t i = 0; i < np; ++i) d.pagenos.push_back(take());
  for (std::uint32_t i = 0; i <= np; ++i) d.offsets.push_back(take());
  const std::uint32_t c = take();
  for (std::uint32_t i = 0; i < c; ++i) d.heads.push_back(take());
  for (std::uint32_t i = 0; i <= c; ++i) d.chain_offsets.push_back(take());
  const std::uint32_t m = c ? d.chain_offsets.back() : 0;
  for (std::uint32_t i = 0; i < m; ++i) d.chain_pages.push_back(take());
  d.pages = body.substr(pos);
  return d;
}

fs::path build_shard(const fs::path& dir, int n, std::size_t big_every, std::size_t big_size) {
  const auto p = dir / "shard.db";
  SqliteShardBuilder b(p, 4096);
  for (int i = 0; i < n; ++i) {
    char key[8];
    for (int j = 0; j < 8; ++j)
      key[j] = static_cast<char>((std::uint64_t(i) * 2654435761u) >> (8 * (7 - j)));
    const std::size_t len = (big_every && i % big_every == 0) ? big_size : 40;
    b.put(std::string_view(key, 8), std::string(len, static_cast<char>('a' + i % 26)));
  }
  b.finish();
  return p;
}

}  // namespace

// Every validation rule a reader applies (spec 4.5 "Reject when"), and each reconstructed page
// equals the file's page outside the gap.
TEST(SidecarBuild, DecodesAndReconstructsPages) {
  const auto dir = shardy::test::make_temp_dir("sidecar-build");
  const auto db = build_shard(dir, 20000, 97, 9000);  // several b-tree levels + overflow chains
  const std::string file = shardy::test::read_file(db);
  const std::string obj = build_sidecar(db, "\"etag-abc\"");
  const Decoded d = decode(obj);
  EXPECT_EQ(d.tag, "\"etag-abc\"");
  EXPECT_EQ(d.page_size, 4096u);
  ASSERT_FALSE(d.pagenos.empty());
  EXPECT_EQ(d.pagenos.front(), 1u);  // page 1 (schema) always
  EXPECT_TRUE(std::is_sorted(d.pagenos.begin(), d.pagenos.end()));
  EXPECT_EQ(std::set<std::uint32_t>(d.pagenos.begin(), d.pagenos.end()).size(), d.pagenos.size());
  EXPECT_EQ(d.offsets.front(), 0u);
  EXPECT_EQ(d.offsets.back(), d.pages.size());
  EXPECT_TRUE(std::is_sorted(d.offsets.begin(), d.offsets.end()));
  bool saw_interior = false;
  for (std::size_t i = 0; i < d.pagenos.size(); ++i) {
    const std::uint32_t pg = d.pagenos[i];
    const std::string stored = d.pages.substr(d.offsets[i], d.offsets[i + 1] - d.offsets[i]);
    const std::string real = file.substr(std::size_t{pg - 1} * 4096, 4096);
    const std::size_t base = pg == 1 ? 100 : 0;
    const auto type = static_cast<unsigned char>(real[base]);
    if (type == 2 || type == 5) saw_interior = true;
    const std::size_t hdr = (type == 2 || type == 5) ? 12 : 8;
    const std::size_t ncells = (static_cast<unsigned char>(real[base + 3]) << 8) |
                               static_cast<unsigned char>(real[base + 4]);
    const std::size_t cca = (static_cast<unsigned char>(real[base + 5]) << 8) |
                            static_cast<unsigned char>(real[base + 6]);
    const std::size_t cpa_end = base + hdr + 2 * ncells;
    const std::string rebuilt =
        stored.substr(0, cpa_end) + std::string(cca - cpa_end, '\0') + stored.substr(cpa_end);
    ASSERT_EQ(rebuilt.size(), 4096u) << "page " << pg;
    EXPECT_EQ(rebuilt.substr(0, cpa_end), real.substr(0, cpa_end)) << "page " << pg;
    EXPECT_EQ(rebuilt.substr(cca), real.substr(cca)) << "page " << pg;
  }
  EXPECT_TRUE(saw_interior);

  // Chains: heads ascending, CSR offsets strictly increasing from 0 to M, each chain starts with
  // its head and follows the file's own next-page pointers to 0.
  ASSERT_FALSE(d.heads.empty());
  EXPECT_TRUE(std::is_sorted(d.heads.begin(), d.heads.end()));
  EXPECT_EQ(d.chain_offsets.front(), 0u);
  EXPECT_EQ(d.chain_offsets.back(), d.chain_pages.size());
  for (std::size_t c = 0; c < d.heads.size(); ++c) {
    ASSERT_LT(d.chain_offsets[c], d.chain_offsets[c + 1]);
    EXPECT_EQ(d.chain_pages[d.chain_offsets[c]], d.heads[c]);
    for (std::uint32_t j = d.chain_offsets[c]; j < d.chain_offsets[c + 1]; ++j) {
      const std::uint32_t pg = d.chain_pages[j];
      const std::string_view p(file.data() + std::size_t{pg - 1} * 4096, 4);
      const std::uint32_t next = (std::uint32_t(static_cast<unsigned char>(p[0])) << 24) |
                                 (std::uint32_t(static_cast<unsigned char>(p[1])) << 16) |
                                 (std::uint32_t(static_cast<unsigned char>(p[2])) << 8) |
                                 static_cast<unsigned char>(p[3]);
      if (j + 1 < d.chain_offsets[c + 1]) {
        EXPECT_EQ(next, d.chain_pages[j + 1]);
      } else {
        EXPECT_EQ(next, 0u);
      }
    }
  }
  // 9000-byte values at 4096: 20000/97 + 1 values, each with one chain.
  EXPECT_EQ(d.heads.size(), 20000u / 97 + 1);
}

TEST(SidecarBuild, TagBindingAndUnboundForm) {
  const auto dir = shardy::test::make_temp_dir("sidecar-tag");
  const auto db = build_shard(dir, 10, 0, 0);
  const std::string unbound = build_sidecar(db, "");
  EXPECT_EQ(unbound[sf::tag_len_offset], 0);
  const std::string long_tag(300, 'x');
  EXPECT_EQ(build_sidecar(db, long_tag)[sf::tag_len_offset], 0);  // > 255: omitted
  const std::string bound = build_sidecar(db, "\"abc\"");
  EXPECT_EQ(bound[sf::tag_len_offset], 5);
  EXPECT_EQ(bound.substr(sf::tag_offset, 5), "\"abc\"");
  // Same body either way: the tag lives in the uncompressed prefix only.
  EXPECT_EQ(bound.substr(sf::tag_offset + 5), unbound.substr(sf::tag_offset));
  const Decoded d = decode(bound);
  EXPECT_TRUE(d.heads.empty());
  EXPECT_EQ(d.pagenos, std::vector<std::uint32_t>{1});  // a one-leaf table: only the schema page
}

TEST(SidecarBuild, LargePageSizesAreSupported) {
  const auto dir = shardy::test::make_temp_dir("sidecar-64k");
  const auto p = dir / "shard.db";
  {
    SqliteShardBuilder b(p, 65536);
    for (int i = 0; i < 3000; ++i) b.put("key" + std::to_string(i), std::string(100, 'v'));
    b.finish();
  }
  const auto body = build_sidecar_body(p);
  EXPECT_EQ(body.page_size, 65536u);
  const Decoded d = decode(build_sidecar(p, "t"));
  EXPECT_EQ(d.page_size, 65536u);
  EXPECT_GE(d.pagenos.size(), 2u);  // schema page + the kv root (interior)
}

TEST(SidecarBuild, RejectsMissingFile) {
  EXPECT_THROW(build_sidecar_body("/nonexistent/shard.db"), shardy::error);
}
