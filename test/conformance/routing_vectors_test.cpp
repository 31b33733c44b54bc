// Every line of fixtures/routing_vectors.jsonl (interop spec 3.1-3.3): canonical bytes, hash,
// shard id, the writer's and the reader's key encodings, and each expected error. Errors are
// compared as error-or-not plus the class: the reference's ValueError from canonical_bytes maps to
// key_not_routable; encoder errors (ConfigValidationError, lookup ValueError) map to
// key_encoding_error.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <shardy/routing.hpp>

#include "support/test_support.hpp"

namespace shardy {
namespace {

namespace json = boost::json;
using test::from_hex;
using test::to_hex;

std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

bool has_error(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string();
}

TEST(RoutingVectors, EveryLineMatchesTheReference) {
  auto lines = test::read_lines(test::fixtures_dir() / "routing_vectors.jsonl");
  ASSERT_EQ(lines.size(), 1500u);
  std::size_t checked = 0, unrepresentable = 0, errors_checked = 0;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    SCOPED_TRACE("line " + std::to_string(n + 1) + ": " + lines[n].substr(0, 200));
    json::object o = json::parse(lines[n]).as_object();
    const std::string type = str(o, "key_type");
    auto encoding = parse_key_encoding(str(o, "key_encoding"));
    ASSERT_TRUE(encoding);
    const auto num_dbs = static_cast<std::uint32_t>(o.at("num_dbs").to_number<std::uint64_t>());

    std::optional<Key> key;
    if (type == "int") {
      error_code ec;
      Key k = Key::parse_integer(str(o, "key_dec"), ec);
      if (ec) {
        // Outside [-2^63, 2^64-1]: Key cannot hold it; the reference fails everywhere too.
        EXPECT_EQ(ec, errc::key_not_routable);
        EXPECT_TRUE(has_error(o, "canonical_error"));
        EXPECT_TRUE(has_error(o, "route_error"));
        EXPECT_TRUE(has_error(o, "write_key_error"));
        EXPECT_TRUE(has_error(o, "lookup_key_error"));
        ++unrepresentable;
        continue;
      }
      key = k;
    } else if (type == "str") {
      key = Key::text(from_hex(str(o, "key_utf8_hex")));
      EXPECT_EQ(key->data(), std::string(o.at("key").as_string()));
    } else {
      ASSERT_EQ(type, "bytes");
      key = Key::bytes(from_hex(str(o, "key_hex")));
    }

    // canonical bytes and hash
    error_code ec;
    std::string canon = canonical_bytes(*key, ec);
    if (has_error(o, "canonical_error")) {
      EXPECT_EQ(ec, errc::key_not_routable);
      EXPECT_TRUE(has_error(o, "hash_error"));
      ++errors_checked;
    } else {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(to_hex(canon), str(o, "canonical_hex"));
      std::uint64_t h = xxh3_64(canon);
      char hex[17];
      std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
      EXPECT_EQ(hex, str(o, "hash_hex"));
      EXPECT_EQ(h, o.at("hash").to_number<std::uint64_t>());
    }

    // shard id
    Router router(num_dbs, *encoding);
    std::uint32_t shard = router.shard_for(*key, ec);
    if (o.at("shard_id").is_null()) {
      EXPECT_TRUE(has_error(o, "route_error"));
      EXPECT_EQ(ec, errc::key_not_routable);
      ++errors_checked;
    } else {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(shard, o.at("shard_id").to_number<std::uint32_t>());
    }

    // write encoding
    std::string w = encode_key_for_write(*key, *encoding, ec);
    if (has_error(o, "write_key_error")) {
      EXPECT_EQ(ec, errc::key_encoding_error);
      EXPECT_TRUE(o.at("write_key_hex").is_null());
      ++errors_checked;
    } else {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(to_hex(w), str(o, "write_key_hex"));
    }

    // lookup encoding
    std::string l = encode_key_for_lookup(*key, *encoding, ec);
    if (has_error(o, "lookup_key_error")) {
      EXPECT_EQ(ec, errc::key_encoding_error);
      EXPECT_TRUE(o.at("lookup_key_hex").is_null());
      ++errors_checked;
    } else {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(to_hex(l), str(o, "lookup_key_hex"));
    }

    // Router::route_lookup: route first, then encode (the route error wins).
    RouteResult r = router.route_lookup(*key, ec);
    if (o.at("shard_id").is_null())
      EXPECT_EQ(ec, errc::key_not_routable);
    else if (has_error(o, "lookup_key_error"))
      EXPECT_EQ(ec, errc::key_encoding_error);
    else {
      EXPECT_FALSE(ec);
      EXPECT_EQ(r.db_id, shard);
      EXPECT_EQ(r.storage_key, l);
    }
    ++checked;
  }
  EXPECT_EQ(checked + unrepresentable, lines.size());
  EXPECT_GT(unrepresentable, 0u);  // 2^64, 2^64+1, -2^63-1 are in the set
  EXPECT_GT(errors_checked, 1000u);
}

}  // namespace
}  // namespace shardy
