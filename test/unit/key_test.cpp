#include <gtest/gtest.h>

#include <shardy/key.hpp>

namespace shardy {
namespace {

TEST(Key, IntegerRangeAndParsing) {
  EXPECT_EQ(Key::integer(-1).as_int64(), -1);
  EXPECT_EQ(Key::integer(INT64_MIN).as_int64(), INT64_MIN);
  EXPECT_FALSE(Key::integer(-1).as_uint64());
  EXPECT_EQ(Key::parse_integer("18446744073709551615").as_uint64(), UINT64_MAX);
  EXPECT_FALSE(Key::parse_integer("18446744073709551615").as_int64());
  EXPECT_EQ(Key::parse_integer("-9223372036854775808").as_int64(), INT64_MIN);
  error_code ec;
  Key::parse_integer("18446744073709551616", ec);
  EXPECT_EQ(ec, errc::key_not_routable);
  Key::parse_integer("-9223372036854775809", ec);
  EXPECT_EQ(ec, errc::key_not_routable);
  Key::parse_integer("12a", ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  Key::parse_integer("", ec);
  EXPECT_EQ(ec, errc::invalid_argument);
  EXPECT_EQ(Key::parse_integer("-0"), Key::integer(0));
}

TEST(Key, KindsAreDistinct) {
  EXPECT_NE(Key::text("ab"), Key::bytes("ab"));
  EXPECT_EQ(Key::bytes("\x01\xff").to_string(), "01ff");
  EXPECT_EQ(Key::integer(-42).to_string(), "-42");
}

TEST(Error, CategoryAndRetryable) {
  error_code ec = errc::timeout;
  EXPECT_STREQ(ec.category().name(), "shardy");
  EXPECT_TRUE(is_retryable(ec));
  EXPECT_FALSE(is_retryable(errc::object_not_found));
  EXPECT_FALSE(is_retryable(error_code{}));
  try {
    throw_error(errc::manifest_parse_error, "format_version must be 4");
  } catch (const error& e) {
    EXPECT_EQ(e.code(), errc::manifest_parse_error);
    EXPECT_EQ(e.diagnostics(), "format_version must be 4");
    EXPECT_NE(std::string(e.what()).find("format_version"), std::string::npos);
  }
}

}  // namespace
}  // namespace shardy
