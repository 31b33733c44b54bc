// Sidecar v8 decoder and validator (interop spec 4.5; reader-features L-14) against the
// shardyfusion fixtures, plus one mutation test per rejection rule.
#include "shard/sidecar.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <functional>

#include "unit/range_test_support.hpp"

namespace shardy::test {
namespace {

using shard::SidecarReject;

// Non-gap regions of a file page: [0, cpa_end) and [cca, page_size). Pages that are not
// b-tree pages compare whole.
std::pair<std::size_t, std::size_t> gap_of(std::string_view page, std::uint32_t pageno) {
  const std::size_t base = pageno == 1 ? 100 : 0;
  const auto type = static_cast<unsigned char>(page[base]);
  if (type != 2 && type != 5 && type != 10 && type != 13) return {0, 0};
  const std::size_t hdr = (type == 2 || type == 5) ? 12 : 8;
  auto u16 = [&](std::size_t p) {
    return std::size_t(static_cast<unsigned char>(page[p])) << 8 |
           static_cast<unsigned char>(page[p + 1]);
  };
  std::size_t cca = u16(base + 5);
  if (cca == 0) cca = 65536;
  return {base + hdr + 2 * u16(base + 3), cca};
}

TEST(Sidecar, EveryFixtureSidecarDecodesAndMatchesExpected) {
  // sidecars.json rows by shard URL
  std::map<std::string, boost::json::object> expected;
  for (auto& e : std::filesystem::directory_iterator(fixtures_dir() / "expected")) {
    const auto p = e.path() / "sidecars.json";
    if (!std::filesystem::exists(p)) continue;
    const boost::json::value doc = boost::json::parse(read_file(p));
    for (auto& row : doc.as_array())
      expected[std::string(row.at("db_url").as_string())] = row.as_object();
  }
  ASSERT_GT(expected.size(), 30u);

  std::size_t checked = 0, with_expected = 0, total_chains = 0;
  for (const auto& dir : fixture_shard_dirs()) {
    SCOPED_TRACE(dir.string());
    const std::string db = read_file(dir / "shard.db");
    const std::string bytes = read_file(dir / "shard.sidecar");
    auto res = shard::decode_sidecar(bytes);
    ASSERT_EQ(res.reason, SidecarReject::none) << res.detail;
    ASSERT_TRUE(res.sidecar);
    const auto& sc = *res.sidecar;
    const std::uint32_t ps = sc.page_size;
    ASSERT_EQ(shard::sqlite_header_page_size(db), ps);

    // ETag binding: the tag is S3's ETag of shard.db (quoted MD5).
    EXPECT_EQ(sc.db_tag, s3_etag(db));
    EXPECT_EQ(shard::check_sidecar_binding(sc, s3_etag(db), ps, db.size()), SidecarReject::none);

    auto it = expected.find(fixture_url(dir));
    if (it != expected.end()) {
      ++with_expected;
      const auto& row = it->second;
      const auto [prefix, body] = split_sidecar(bytes);
      EXPECT_EQ(sha256_hex(body), row.at("body_sha256").as_string());
      EXPECT_EQ(sc.body_size, row.at("body_size").to_number<std::uint64_t>());
      EXPECT_EQ(sc.page_size, row.at("page_size").to_number<std::uint32_t>());
      EXPECT_EQ(sc.pagenos.size(), row.at("n_pages").to_number<std::size_t>());
      EXPECT_EQ(sc.chain_count(), row.at("chain_count").to_number<std::size_t>());
      EXPECT_EQ(sc.db_tag, row.at("db_tag").as_string());
      EXPECT_EQ(sc.db_tag, row.at("db_head_e_tag").as_string());
      EXPECT_EQ(db.size(), row.at("db_bytes").to_number<std::size_t>());
    }

    // Every reconstructed page equals the file's page outside the unallocated gap.
    for (std::size_t i = 0; i < sc.pagenos.size(); ++i) {
      const std::uint32_t pn = sc.pagenos[i];
      ASSERT_LE(std::size_t(pn) * ps, db.size());
      const std::string_view file_page = std::string_view(db).substr((pn - 1) * ps, ps);
      const std::string& page = sc.pages[i];
      ASSERT_EQ(page.size(), ps);
      auto [cpa_end, cca] = gap_of(file_page, pn);
      EXPECT_EQ(page.substr(0, cpa_end), file_page.substr(0, cpa_end)) << "page " << pn;
      EXPECT_EQ(page.substr(cca), file_page.substr(cca)) << "page " << pn;
      EXPECT_EQ(page.substr(cpa_end, cca - cpa_end), std::string(cca - cpa_end, '\0'));
    }
    // Each chain follows the file's overflow pointers (first 4 bytes BE, 0 ends).
    for (std::size_t c = 0; c < sc.chain_count(); ++c) {
      auto chain = sc.chain(c);
      ASSERT_FALSE(chain.empty());
      for (std::size_t k = 0; k < chain.size(); ++k) {
        const char* p = db.data() + std::size_t(chain[k] - 1) * ps;
        std::uint32_t next = 0;
        for (int b = 0; b < 4; ++b) next = next << 8 | static_cast<unsigned char>(p[b]);
        EXPECT_EQ(next, k + 1 < chain.size() ? chain[k + 1] : 0u);
      }
      ++total_chains;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 47u);
  EXPECT_EQ(with_expected, expected.size());
  EXPECT_GT(total_chains, 40u);  // kv_str has overflow chains in every shard
}

// --- mutations ---------------------------------------------------------------------------

// A fixture sidecar with overflow chains (kv_str), decomposed.
struct Parts {
  SidecarPrefix prefix;
  SidecarBody body;
  std::string db;
};

Parts chain_fixture() {
  for (const auto& dir : fixture_shard_dirs()) {
    if (dir.string().find("kv_str") == std::string::npos) continue;
    auto [prefix, body] = split_sidecar(read_file(dir / "shard.sidecar"));
    auto parsed = SidecarBody::parse(body);
    if (parsed.chain_heads.size() >= 2 && parsed.pagenos.size() >= 2)
      return Parts{prefix, parsed, read_file(dir / "shard.db")};
  }
  throw std::runtime_error("no kv_str sidecar with chains");
}

std::string encode(const Parts& p, bool fix_body_size = true, bool checksum = true) {
  const std::string body = p.body.serialize();
  SidecarPrefix prefix = p.prefix;
  if (fix_body_size) prefix.body_size = body.size();
  return encode_prefix(prefix) + zstd_frame(body, checksum);
}

SidecarReject reason_of(const std::string& bytes) { return shard::decode_sidecar(bytes).reason; }

TEST(SidecarMutation, UnmodifiedRoundTripIsAccepted) {
  auto p = chain_fixture();
  auto res = shard::decode_sidecar(encode(p));
  ASSERT_EQ(res.reason, SidecarReject::none) << res.detail;
  EXPECT_EQ(shard::check_sidecar_binding(*res.sidecar, s3_etag(p.db), 4096, p.db.size()),
            SidecarReject::none);
}

TEST(SidecarMutation, PrefixRules) {
  auto p = chain_fixture();
  const std::string good = encode(p);
  EXPECT_EQ(reason_of(good.substr(0, 10)), SidecarReject::truncated_prefix);
  EXPECT_EQ(reason_of(good.substr(0, 18 + p.prefix.tag.size() - 1)),
            SidecarReject::truncated_prefix);
  {
    std::string b = good;
    b[0] = 'X';
    EXPECT_EQ(reason_of(b), SidecarReject::bad_magic);
  }
  {
    std::string b = good;
    b[4] = 9;  // a newer format: treated as absent
    auto r = shard::decode_sidecar(b);
    EXPECT_EQ(r.reason, SidecarReject::newer_version);
    EXPECT_FALSE(r.sidecar);
    b[4] = 7;
    EXPECT_EQ(reason_of(b), SidecarReject::older_version);
  }
  for (std::uint32_t ps : {0u, 256u, 1000u, 4095u, 131072u}) {
    Parts q = p;
    q.prefix.page_size = ps;
    EXPECT_EQ(reason_of(encode(q)), SidecarReject::bad_page_size) << ps;
  }
  {
    Parts q = p;
    q.prefix.body_size = 1ull << 40;
    EXPECT_EQ(reason_of(encode(q, false)), SidecarReject::body_too_large);
  }
}

TEST(SidecarMutation, ZstdRules) {
  auto p = chain_fixture();
  const std::string good = encode(p);
  const std::size_t frame_at = 18 + p.prefix.tag.size();
  EXPECT_EQ(reason_of(encode(p, true, /*checksum=*/false)), SidecarReject::zstd_no_checksum);
  {
    std::string b = good;
    b.back() ^= 0x5a;  // the checksum is the frame's last 4 bytes
    EXPECT_EQ(reason_of(b), SidecarReject::zstd_checksum_mismatch);
  }
  EXPECT_EQ(reason_of(good + "x"), SidecarReject::zstd_error);  // trailing bytes
  EXPECT_EQ(reason_of(good.substr(0, good.size() - 6)), SidecarReject::zstd_error);  // truncated
  {
    std::string b = good;
    b.replace(frame_at, 4, "ABCD");  // frame magic
    EXPECT_EQ(reason_of(b), SidecarReject::zstd_error);
  }
  {
    Parts q = p;
    q.prefix.body_size = q.body.serialize().size() + 1;
    EXPECT_EQ(reason_of(encode(q, false)), SidecarReject::body_size_mismatch);
    q.prefix.body_size -= 2;
    EXPECT_EQ(reason_of(encode(q, false)), SidecarReject::body_size_mismatch);
  }
}

TEST(SidecarMutation, BodyRules) {
  const auto p = chain_fixture();
  auto mutate = [&](const std::function<void(SidecarBody&)>& f) {
    Parts q = p;
    f(q.body);
    return reason_of(encode(q));
  };
  EXPECT_EQ(mutate([](SidecarBody& b) { b.pagenos[0] = 0; }), SidecarReject::pageno_zero);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.pagenos[1] = b.pagenos[0]; }),
            SidecarReject::pagenos_not_ascending);
  EXPECT_EQ(mutate([](SidecarBody& b) { std::swap(b.pagenos[0], b.pagenos[1]); }),
            SidecarReject::pagenos_not_ascending);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.offsets[0] = 1; }), SidecarReject::offsets_bad_start);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.offsets[1] = b.offsets[2] + 1; }),
            SidecarReject::offsets_decreasing);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.offsets.back() -= 1; }), SidecarReject::offsets_bad_end);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.blob += "zz"; }), SidecarReject::offsets_bad_end);
  EXPECT_EQ(mutate([](SidecarBody& b) { std::swap(b.chain_heads[0], b.chain_heads[1]); }),
            SidecarReject::chain_heads_not_ascending);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.chain_offsets[0] = 1; }),
            SidecarReject::chain_offsets_bad_start);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.chain_offsets[1] = b.chain_offsets[0]; }),
            SidecarReject::chain_offsets_not_increasing);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.chain_offsets.back() += 1000000; }),
            SidecarReject::chain_offsets_bad_end);
  EXPECT_EQ(mutate([](SidecarBody& b) { b.chain_pages[b.chain_offsets[1]] += 1; }),
            SidecarReject::chain_head_mismatch);
  // A stored page one byte short (the blob and the last offset shrink together).
  EXPECT_EQ(mutate([](SidecarBody& b) {
              b.blob.pop_back();
              b.offsets.back() -= 1;
            }),
            SidecarReject::reconstructed_page_size);
  // A b-tree page whose cell content area lies beyond the page.
  EXPECT_EQ(mutate([](SidecarBody& b) {
              const std::size_t at = b.offsets[1];  // second page: header at offset 0
              b.blob[at + 5] = '\xff';
              b.blob[at + 6] = '\xff';
            }),
            SidecarReject::page_bad_header);
  // The body truncated inside the pagenos array.
  {
    Parts q = p;
    std::string body = q.body.serialize().substr(0, 6);
    SidecarPrefix prefix = q.prefix;
    prefix.body_size = body.size();
    EXPECT_EQ(reason_of(encode_prefix(prefix) + zstd_frame(body)), SidecarReject::body_truncated);
  }
}

TEST(SidecarMutation, PageOneHeaderRules) {
  const auto p = chain_fixture();
  ASSERT_EQ(p.body.pagenos[0], 1u);
  {
    Parts q = p;
    q.body.blob[16] = 0x20;  // page 1 says 8192
    q.body.blob[17] = 0x00;
    EXPECT_EQ(reason_of(encode(q)), SidecarReject::db_page_size_mismatch);
  }
  {
    Parts q = p;
    q.body.blob[20] = 8;
    EXPECT_EQ(reason_of(encode(q)), SidecarReject::db_reserved_bytes);
  }
}

TEST(SidecarBinding, TagRules) {
  const auto p = chain_fixture();
  auto sc = *shard::decode_sidecar(encode(p)).sidecar;
  const std::string etag = s3_etag(p.db);
  const std::string bare = etag.substr(1, etag.size() - 2);
  // Quoting and weak markers are normalized on both sides.
  EXPECT_EQ(shard::check_sidecar_binding(sc, bare, std::nullopt, std::nullopt),
            SidecarReject::none);
  EXPECT_EQ(shard::check_sidecar_binding(sc, "W/" + etag, std::nullopt, std::nullopt),
            SidecarReject::none);
  EXPECT_EQ(shard::check_sidecar_binding(sc, "\"0123\"", std::nullopt, std::nullopt),
            SidecarReject::tag_mismatch);
  EXPECT_EQ(shard::check_sidecar_binding(sc, "", std::nullopt, std::nullopt),
            SidecarReject::tag_mismatch);
  EXPECT_EQ(shard::check_sidecar_binding(sc, etag, 8192u, std::nullopt),
            SidecarReject::db_page_size_mismatch);
  EXPECT_EQ(shard::check_sidecar_binding(sc, etag, 4096u, 4096u), SidecarReject::page_beyond_file);
  Parts q = p;
  q.prefix.tag.clear();  // unbound: decodes, but a strict reader ignores it
  auto unbound = shard::decode_sidecar(encode(q));
  ASSERT_EQ(unbound.reason, SidecarReject::none);
  EXPECT_EQ(shard::check_sidecar_binding(*unbound.sidecar, etag, std::nullopt, std::nullopt),
            SidecarReject::unbound);
  q.prefix.tag = "W/" + etag;
  auto weak = shard::decode_sidecar(encode(q));
  EXPECT_EQ(shard::check_sidecar_binding(*weak.sidecar, bare, std::nullopt, std::nullopt),
            SidecarReject::none);
}

TEST(SidecarMutation, EveryReasonHasAName) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < shard::sidecar_reject_count; ++i) {
    auto n = shard::to_string(static_cast<SidecarReject>(i));
    EXPECT_NE(n, "unknown");
    names.insert(n);
  }
  EXPECT_EQ(names.size(), shard::sidecar_reject_count);
}

TEST(SidecarGap, StripThenReconstructIsIdentityOutsideTheGap) {
  for (const auto& dir : fixture_shard_dirs()) {
    const std::string db = read_file(dir / "shard.db");
    const std::size_t ps = *shard::sqlite_header_page_size(db);
    for (std::uint32_t pn = 1; std::size_t(pn) * ps <= db.size(); ++pn) {
      std::string_view page = std::string_view(db).substr((pn - 1) * ps, ps);
      const std::string stored = shard::strip_page_gap(page, pn);
      auto back = shard::reconstruct_page(stored, pn, static_cast<std::uint32_t>(ps));
      ASSERT_TRUE(back) << dir << " page " << pn;
      auto [a, b] = gap_of(page, pn);
      EXPECT_EQ(back->substr(0, a), page.substr(0, a));
      EXPECT_EQ(back->substr(b), page.substr(b));
    }
  }
}

}  // namespace
}  // namespace shardy::test
