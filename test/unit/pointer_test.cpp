// _CURRENT and datetimes (interop spec 1.4, 1.5).
#include <gtest/gtest.h>

#include <shardy/manifest.hpp>

namespace shardy {
namespace {

using namespace std::chrono;

Timestamp at(int y, unsigned mo, unsigned d, int h, int mi, int s, int us = 0) {
  return Timestamp(sys_days(year{y} / mo / d)) + hours(h) + minutes(mi) + seconds(s) +
         microseconds(us);
}

TEST(Timestamp, ParsesEveryFormThePythonReaderAccepts) {
  auto base = at(2026, 3, 14, 10, 30, 0);
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00Z"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00.123456Z"), base + microseconds(123456));
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00.1Z"), base + milliseconds(100));
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00.123456789Z"), base + microseconds(123456));
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00+00:00"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14T12:30:00+02:00"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14T05:00:00-05:30"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14T12:30:00+0200"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14T10:30:00"), base);  // naive = UTC
  EXPECT_EQ(parse_timestamp("2026-03-14 10:30:00"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14t10:30z"), base);
  EXPECT_EQ(parse_timestamp("2026-03-14"), at(2026, 3, 14, 0, 0, 0));
  EXPECT_EQ(parse_timestamp("1773484200"), base);     // integer Unix seconds
  EXPECT_EQ(parse_timestamp("1773484200000"), base);  // speedate: > 2e10 means milliseconds
  EXPECT_EQ(parse_timestamp("0"), Timestamp{});
  EXPECT_EQ(parse_timestamp("2026-11-22T01:48:24.188648+00:00"),
            at(2026, 11, 22, 1, 48, 24, 188648));
}

TEST(Timestamp, RejectsMalformed) {
  for (const char* s :
       {"", "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-03-14T24:00:00Z",
        "2026-03-14T10:60:00Z", "2026-03-14T10:30:00.Z", "2026-03-14T10:30:00Q",
        "2026-03-14T10:30:00+25:00", "2026-03-14X10:30", "12ab", "2026-03-14T10:30:00Z "}) {
    EXPECT_FALSE(parse_timestamp(s)) << s;
  }
}

TEST(Timestamp, Formats) {
  EXPECT_EQ(format_timestamp(at(2026, 3, 14, 10, 30, 0)), "2026-03-14T10:30:00Z");
  EXPECT_EQ(format_timestamp(at(2026, 3, 14, 10, 30, 0, 123)), "2026-03-14T10:30:00.000123Z");
  EXPECT_EQ(format_timestamp_dir(at(2026, 3, 14, 10, 30, 0)), "2026-03-14T10:30:00.000000Z");
  EXPECT_EQ(format_timestamp_dir(at(1969, 12, 31, 23, 59, 59, 999999)),
            "1969-12-31T23:59:59.999999Z");
  auto t = at(2026, 11, 22, 1, 21, 27, 259672);
  EXPECT_EQ(parse_timestamp(format_timestamp(t)), t);
  EXPECT_EQ(parse_timestamp(format_timestamp_dir(t)), t);
}

constexpr const char* kSpecExample =
    R"({"format_version":1,"manifest_content_type":"application/x-sqlite3","manifest_ref":"s3://bucket/snap/manifests/2026-11-22T01:21:27.259610Z_run_id=run0001/manifest","run_id":"run0001","updated_at":"2026-11-22T01:21:27.259672Z"})";

TEST(CurrentPointer, SerializesByteExactlyLikeTheReference) {
  CurrentPointer p;
  p.manifest_ref = "s3://bucket/snap/manifests/2026-11-22T01:21:27.259610Z_run_id=run0001/manifest";
  p.run_id = "run0001";
  p.updated_at = at(2026, 11, 22, 1, 21, 27, 259672);
  EXPECT_EQ(serialize_current_pointer(p), kSpecExample);
  auto q = parse_current_pointer(kSpecExample);
  EXPECT_EQ(q.manifest_ref, p.manifest_ref);
  EXPECT_EQ(q.run_id, "run0001");
  EXPECT_EQ(q.updated_at, p.updated_at);
  EXPECT_EQ(q.format_version, 1);
  EXPECT_EQ(q.manifest_content_type, "application/x-sqlite3");
  EXPECT_EQ(serialize_current_pointer(q), kSpecExample);
}

TEST(CurrentPointer, TolerantRead) {
  auto p = parse_current_pointer(
      R"({"run_id":"r","manifest_ref":"s3://b/p/m","updated_at":"2026-03-14 10:30:00+01:00",
          "format_version":7,"extra":{"ignored":true}})");
  EXPECT_EQ(p.updated_at, at(2026, 3, 14, 9, 30, 0));
  EXPECT_EQ(p.format_version, 7);  // not checked (spec 1.4)
  EXPECT_EQ(p.manifest_content_type, "application/x-sqlite3");
  auto q = parse_current_pointer(R"({"run_id":"r","manifest_ref":"m","updated_at":1773484200})");
  EXPECT_EQ(q.updated_at, at(2026, 3, 14, 10, 30, 0));
}

TEST(CurrentPointer, MalformedIsAParseErrorNamingTheRule) {
  struct Case {
    const char* json;
    const char* rule;
  };
  const Case cases[] = {
      {"", "json"},
      {"not json", "json"},
      {"[1,2]", "json"},
      {R"({"manifest_ref":"m","updated_at":"2026-03-14T10:30:00Z"})", "run_id"},
      {R"({"run_id":"r","updated_at":"2026-03-14T10:30:00Z"})", "manifest_ref"},
      {R"({"run_id":"r","manifest_ref":5,"updated_at":"2026-03-14T10:30:00Z"})", "manifest_ref"},
      {R"({"run_id":"r","manifest_ref":"m"})", "updated_at"},
      {R"({"run_id":"r","manifest_ref":"m","updated_at":"soon"})", "updated_at"},
      {R"({"run_id":"r","manifest_ref":"m","updated_at":"2026-03-14","format_version":"x"})",
       "format_version"},
      {R"({"run_id":"r","manifest_ref":"m","updated_at":"2026-03-14","manifest_content_type":1})",
       "manifest_content_type"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json);
    error_code ec;
    std::string diag;
    parse_current_pointer(c.json, ec, &diag);
    EXPECT_EQ(ec, errc::manifest_parse_error);
    EXPECT_NE(diag.find(std::string("rule '") + c.rule + "'"), std::string::npos) << diag;
    EXPECT_THROW(parse_current_pointer(c.json), error);
  }
}

}  // namespace
}  // namespace shardy
