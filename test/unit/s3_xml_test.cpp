// The S3 XML subset reader: ListObjectsV2 pages, error documents, malformed and hostile input.
#include <gtest/gtest.h>

#include <shardy/error.hpp>

#include "s3/xml.hpp"

namespace s3 = shardy::s3;

namespace {

void expect_protocol_error(std::string_view doc, std::string_view what) {
  try {
    s3::parse_xml(doc);
    ADD_FAILURE() << "accepted: " << what;
  } catch (const shardy::error& e) {
    EXPECT_EQ(e.code(), shardy::errc::protocol_error) << what;
  }
}

}  // namespace

TEST(S3Xml, ListObjectsV2Page) {
  auto page = s3::parse_list_objects_v2(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name><Prefix>p/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>p/a &amp; b.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size>
    <StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key><![CDATA[p/<cdata>]]></Key><Size>0</Size><ETag>"x"</ETag></Contents>
  <CommonPrefixes><Prefix>p/sub/</Prefix></CommonPrefixes>
  <!-- a comment -->
</ListBucketResult>)");
  ASSERT_EQ(page.objects.size(), 2u);
  EXPECT_EQ(page.objects[0].key, "p/a & b.txt");
  EXPECT_EQ(page.objects[0].size, 434234u);
  EXPECT_EQ(page.objects[0].etag, "\"fba9dede5f27731c9771645a39863328\"");
  ASSERT_TRUE(page.objects[0].last_modified);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(
                page.objects[0].last_modified->time_since_epoch())
                .count(),
            1255369830000);
  EXPECT_EQ(page.objects[1].key, "p/<cdata>");
  ASSERT_EQ(page.common_prefixes.size(), 1u);
  EXPECT_EQ(page.common_prefixes[0], "p/sub/");
  EXPECT_TRUE(page.is_truncated);
  EXPECT_EQ(page.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, UrlEncodedListing) {
  auto page = s3::parse_list_objects_v2(
      "<ListBucketResult><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
      "<Contents><Key>a%20b/%C3%A9%0A+x</Key><Size>1</Size></Contents>"
      "<CommonPrefixes><Prefix>d%2F</Prefix></CommonPrefixes></ListBucketResult>");
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].key, "a b/\xc3\xa9\n+x");
  EXPECT_EQ(page.common_prefixes.at(0), "d/");
  EXPECT_FALSE(page.is_truncated);
}

TEST(S3Xml, ListingErrors) {
  EXPECT_THROW(s3::parse_list_objects_v2("<Error><Code>X</Code></Error>"), shardy::error);
  EXPECT_THROW(s3::parse_list_objects_v2(
                   "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"),
               shardy::error);
  EXPECT_THROW(s3::parse_list_objects_v2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
                                         "</Contents></ListBucketResult>"),
               shardy::error);
  // Truncated without a token would loop forever.
  EXPECT_THROW(s3::parse_list_objects_v2(
                   "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
               shardy::error);
}

TEST(S3Xml, ErrorDocument) {
  auto e = s3::parse_error_xml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The "
      "resource you requested does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource>"
      "<RequestId>4442587FB7D0A2F9</RequestId></Error>");
  EXPECT_EQ(e.code, "NoSuchKey");
  EXPECT_EQ(e.message, "The resource you requested does not exist");
  EXPECT_EQ(e.request_id, "4442587FB7D0A2F9");
  EXPECT_EQ(e.resource, "/mybucket/myfoto.jpg");
  // Not XML, empty, or another document: no fields, no exception.
  EXPECT_TRUE(s3::parse_error_xml("").code.empty());
  EXPECT_TRUE(s3::parse_error_xml("<html>502 Bad Gateway</html>").code.empty());
  EXPECT_TRUE(s3::parse_error_xml("<Error><Code>Trunc").code.empty());
}

TEST(S3Xml, EntitiesAndCharacterReferences) {
  auto el = s3::parse_xml("<a>&lt;&gt;&amp;&quot;&apos;&#65;&#x263A;&#x1F600;</a>");
  EXPECT_EQ(el.text, "<>&\"'A\xe2\x98\xba\xf0\x9f\x98\x80");
  expect_protocol_error("<a>&nbsp;</a>", "undefined entity");
  expect_protocol_error("<a>&#0;</a>", "NUL reference");
  expect_protocol_error("<a>&#xD800;</a>", "surrogate");
  expect_protocol_error("<a>&#x110000;</a>", "beyond Unicode");
  expect_protocol_error("<a>&amp</a>", "unterminated");
}

TEST(S3Xml, HostileInputIsRefused) {
  // Billion laughs: refused at the DOCTYPE, nothing is expanded.
  expect_protocol_error(
      "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 "
      "\"&lol;&lol;&lol;&lol;\">]><lolz>&lol2;</lolz>",
      "entity expansion");
  // External entity (XXE).
  expect_protocol_error("<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><x>&xxe;</x>",
                        "XXE");
  // Deep nesting: bounded before the stack is.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  expect_protocol_error(deep, "deep nesting");
  // Too big.
  s3::XmlLimits small;
  small.max_bytes = 100;
  EXPECT_THROW(s3::parse_xml("<a>" + std::string(200, 'x') + "</a>", small), shardy::error);
  // Too many elements.
  s3::XmlLimits few;
  few.max_elements = 10;
  std::string many = "<r>";
  for (int i = 0; i < 20; ++i) many += "<c/>";
  many += "</r>";
  EXPECT_THROW(s3::parse_xml(many, few), shardy::error);
  EXPECT_NO_THROW(s3::parse_xml(many));
  // Huge but legitimate: a 10000-entry listing parses.
  std::string big = "<ListBucketResult>";
  for (int i = 0; i < 10000; ++i) {
    big += "<Contents><Key>k" + std::to_string(i) + "</Key><Size>" + std::to_string(i) +
           "</Size></Contents>";
  }
  big += "</ListBucketResult>";
  auto page = s3::parse_list_objects_v2(big);
  EXPECT_EQ(page.objects.size(), 10000u);
  EXPECT_EQ(page.objects[9999].size, 9999u);
}

TEST(S3Xml, MalformedInput) {
  expect_protocol_error("", "empty");
  expect_protocol_error("just text", "no element");
  expect_protocol_error("<a>", "unterminated element");
  expect_protocol_error("<a></b>", "mismatched end tag");
  expect_protocol_error("<a><b></a></b>", "crossed tags");
  expect_protocol_error("<a></a><b></b>", "two roots");
  expect_protocol_error("<a x=1></a>", "unquoted attribute");
  expect_protocol_error("<a x=\"1></a>", "unterminated attribute");
  expect_protocol_error("<a><!-- never closed </a>", "unterminated comment");
  expect_protocol_error("<a><![CDATA[ never closed </a>", "unterminated CDATA");
  expect_protocol_error("<a><!ENTITY x \"y\"></a>", "declaration inside");
  expect_protocol_error("< a></a>", "space before name");
  // Every prefix of a valid document is rejected, never crashes.
  std::string doc = "<ListBucketResult><Contents><Key>k&amp;</Key></Contents></ListBucketResult>";
  for (std::size_t n = 0; n < doc.size(); ++n) {
    EXPECT_THROW(s3::parse_xml(doc.substr(0, n)), shardy::error) << n;
  }
  EXPECT_NO_THROW(s3::parse_xml(doc));
  // Namespace prefixes are dropped from names.
  EXPECT_EQ(
      s3::parse_xml("<s3:Error xmlns:s3=\"u\"><s3:Code>X</s3:Code></s3:Error>").child_text("Code"),
      "X");
}

TEST(S3Xml, Dates) {
  using namespace std::chrono;
  auto t = s3::parse_http_date("Wed, 12 Oct 2009 17:50:00 GMT");
  ASSERT_TRUE(t);
  EXPECT_EQ(duration_cast<seconds>(t->time_since_epoch()).count(), 1255369800);
  EXPECT_FALSE(s3::parse_http_date("Wed, 12 Foo 2009 17:50:00 GMT"));
  EXPECT_FALSE(s3::parse_http_date("12 Oct 2009"));
  auto i = s3::parse_iso8601("2009-10-12T17:50:30Z");
  ASSERT_TRUE(i);
  EXPECT_EQ(duration_cast<seconds>(i->time_since_epoch()).count(), 1255369830);
  EXPECT_FALSE(s3::parse_iso8601("2009-13-12T17:50:30Z"));
  EXPECT_FALSE(s3::parse_iso8601("2009-10-12 17:50:30"));
}
