// Routing unit tests: the tables of interop spec 3.2 (hash vectors) and 3.3 (key encodings).
#include <gtest/gtest.h>

#include <shardy/routing.hpp>

#include "support/test_support.hpp"

namespace shardy {
namespace {

using test::from_hex;
using test::to_hex;

struct HashRow {
  Key key;
  const char* canonical;
  std::uint64_t hash;
  std::uint32_t n7, n8, n64;
};

TEST(Routing, Spec32HashTable) {
  const HashRow rows[] = {
      {Key::integer(0), "0000000000000000", 0xc77b3abb6f87acd9ULL, 3, 1, 25},
      {Key::integer(1), "0100000000000000", 0x2fbc593564db792eULL, 0, 6, 46},
      {Key::integer(42), "2a00000000000000", 0xd5a6f8c838df27c8ULL, 1, 0, 8},
      {Key::integer(-1), "ffffffffffffffff", 0x5111c7e47d784413ULL, 4, 3, 19},
      {Key::integer(INT64_MAX), "ffffffffffffff7f", 0xa233cf376558df46ULL, 3, 6, 6},
      {Key::integer(INT64_MIN), "0000000000000080", 0x828f2476789a0e5fULL, 1, 7, 31},
      {Key::text(""), "", 0x2d06800538d394c2ULL, 4, 2, 2},
      {Key::text("user:42"), "757365723a3432", 0x9fc1e605fa7174aaULL, 4, 2, 42},
      {Key::text("\xe6\x97\xa5\xe6\x9c\xac"), "e697a5e69cac", 0x2c17fb837f1a1bc0ULL, 3, 0, 0},
      {Key::bytes(from_hex("000000000000002a")), "000000000000002a", 0x2e4fe982b68910acULL, 2, 4,
       44},
      {Key::bytes("hello"), "68656c6c6f", 0x9555e8555c62dcfdULL, 1, 5, 61},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.key.to_string());
    std::string c = canonical_bytes(r.key);
    EXPECT_EQ(to_hex(c), r.canonical);
    EXPECT_EQ(xxh3_64(c), r.hash);
    EXPECT_EQ(Router(1, KeyEncoding::u64be).shard_for(r.key), 0u);
    EXPECT_EQ(Router(7, KeyEncoding::u64be).shard_for(r.key), r.n7);
    EXPECT_EQ(Router(8, KeyEncoding::utf8).shard_for(r.key), r.n8);  // encoding-independent
    EXPECT_EQ(Router(64, KeyEncoding::raw).shard_for(r.key), r.n64);
  }
}

TEST(Routing, IntegersOutsideSigned64AreNotRoutable) {
  error_code ec;
  canonical_bytes(Key::unsigned_integer(std::uint64_t(1) << 63), ec);
  EXPECT_EQ(ec, errc::key_not_routable);
  canonical_bytes(Key::unsigned_integer(UINT64_MAX), ec);
  EXPECT_EQ(ec, errc::key_not_routable);
  EXPECT_THROW(canonical_bytes(Key::unsigned_integer(UINT64_MAX)), error);
  Router r(8, KeyEncoding::u64be);
  r.shard_for(Key::unsigned_integer(UINT64_MAX), ec);
  EXPECT_EQ(ec, errc::key_not_routable);
  // Storable under u64be, but routing fails first (spec 3.3 interplay trap).
  EXPECT_EQ(to_hex(encode_key_for_write(Key::unsigned_integer(UINT64_MAX), KeyEncoding::u64be)),
            "ffffffffffffffff");
  r.route_write(Key::unsigned_integer(UINT64_MAX), ec);
  EXPECT_EQ(ec, errc::key_not_routable);
}

// Spec 3.3 table: (key, u64be, u32be, utf8, raw); "" marks an error.
TEST(Routing, Spec33EncodingTable) {
  struct Row {
    Key key;
    const char* enc[4];
  };
  const Row rows[] = {
      {Key::integer(0), {"0000000000000000", "00000000", nullptr, nullptr}},
      {Key::integer(42), {"000000000000002a", "0000002a", nullptr, nullptr}},
      {Key::integer(4294967295), {"00000000ffffffff", "ffffffff", nullptr, nullptr}},
      {Key::integer(4294967296), {"0000000100000000", nullptr, nullptr, nullptr}},
      {Key::unsigned_integer(UINT64_MAX), {"ffffffffffffffff", nullptr, nullptr, nullptr}},
      {Key::integer(-1), {nullptr, nullptr, nullptr, nullptr}},
      {Key::text("hello"), {nullptr, nullptr, "68656c6c6f", "68656c6c6f"}},
      {Key::bytes(from_hex("0102")), {nullptr, nullptr, "0102", "0102"}},
  };
  const KeyEncoding encs[] = {KeyEncoding::u64be, KeyEncoding::u32be, KeyEncoding::utf8,
                              KeyEncoding::raw};
  for (const auto& row : rows) {
    for (int i = 0; i < 4; ++i) {
      SCOPED_TRACE(row.key.to_string() + " / " + std::string(to_string(encs[i])));
      error_code ec;
      std::string w = encode_key_for_write(row.key, encs[i], ec);
      if (row.enc[i]) {
        EXPECT_FALSE(ec);
        EXPECT_EQ(to_hex(w), row.enc[i]);
      } else {
        EXPECT_EQ(ec, errc::key_encoding_error);
        EXPECT_THROW(encode_key_for_write(row.key, encs[i]), error);
      }
    }
  }
}

TEST(Routing, LookupPassesThroughFixedWidthBytes) {
  const std::string be42 = from_hex("000000000000002a");
  EXPECT_EQ(encode_key_for_lookup(Key::bytes(be42), KeyEncoding::u64be), be42);
  EXPECT_EQ(encode_key_for_lookup(Key::bytes(from_hex("0000002a")), KeyEncoding::u32be),
            from_hex("0000002a"));
  error_code ec;
  encode_key_for_write(Key::bytes(be42), KeyEncoding::u64be, ec);
  EXPECT_EQ(ec, errc::key_encoding_error);  // the writer does not pass through
  encode_key_for_lookup(Key::bytes(from_hex("0000002a")), KeyEncoding::u64be, ec);
  EXPECT_EQ(ec, errc::key_encoding_error);  // wrong length
  encode_key_for_lookup(Key::bytes(be42), KeyEncoding::u32be, ec);
  EXPECT_EQ(ec, errc::key_encoding_error);
  encode_key_for_lookup(Key::text("42"), KeyEncoding::u64be, ec);
  EXPECT_EQ(ec, errc::key_encoding_error);  // strings never look up an int snapshot
  try {
    encode_key_for_lookup(Key::bytes("abc"), KeyEncoding::u64be);
    ADD_FAILURE();
  } catch (const error& e) {
    EXPECT_NE(e.diagnostics().find("length 8"), std::string::npos);
  }
  // The pre-encoded form routes as a bytes key: shard 4, not the int's shard 0 (spec 3.3).
  Router r(8, KeyEncoding::u64be);
  auto as_int = r.route_lookup(Key::integer(42));
  auto as_bytes = r.route_lookup(Key::bytes(be42));
  EXPECT_EQ(as_int.storage_key, as_bytes.storage_key);
  EXPECT_EQ(as_int.db_id, 0u);
  EXPECT_EQ(as_bytes.db_id, 4u);
}

TEST(Routing, RouteThenEncode) {
  Router r(8, KeyEncoding::u64be);
  error_code ec;
  r.route_lookup(Key::integer(-1), ec);  // routes (shard 3) but cannot be stored
  EXPECT_EQ(ec, errc::key_encoding_error);
  auto w = r.route_write(Key::integer(5));
  EXPECT_EQ(w.db_id, 4u);  // spec 3.2 end-to-end check: key 5 -> db 4 with num_dbs 8
  EXPECT_EQ(to_hex(w.storage_key), "0000000000000005");
  EXPECT_THROW(Router(0, KeyEncoding::u64be), error);
}

TEST(Routing, KeyEncodingNames) {
  for (auto e : {KeyEncoding::u64be, KeyEncoding::u32be, KeyEncoding::utf8, KeyEncoding::raw})
    EXPECT_EQ(parse_key_encoding(to_string(e)), e);
  EXPECT_FALSE(parse_key_encoding("U64BE"));
  EXPECT_FALSE(parse_key_encoding("u64le"));
  EXPECT_FALSE(parse_key_encoding(""));
}

}  // namespace
}  // namespace shardy
