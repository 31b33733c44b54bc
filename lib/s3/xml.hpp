// A small, strict XML reader for the S3 response subset (ListObjectsV2 results and error
// documents). It never expands entities beyond the five predefined ones and numeric character
// references, refuses DOCTYPE declarations outright (no entity tricks, no external fetches), and
// bounds input size, nesting depth and element count.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardy::s3 {

struct XmlLimits {
  std::size_t max_bytes = 64u << 20;
  std::size_t max_depth = 16;
  std::size_t max_elements = 1u << 20;
};

struct XmlElement {
  std::string name;  ///< local name (any "prefix:" removed)
  std::string text;  ///< concatenated character data directly inside this element
  std::vector<XmlElement> children;

  /// First child with this local name, or nullptr.
  const XmlElement* child(std::string_view n) const noexcept;
  /// Text of the first child with this name ("" if absent).
  std::string_view child_text(std::string_view n) const noexcept;
};

/// Parses a document with one root element. Throws shardy::error(errc::protocol_error) with a
/// position for malformed, hostile or over-limit input.
XmlElement parse_xml(std::string_view doc, const XmlLimits& limits = {});

/// The fields of an S3 error document (<Error><Code/><Message/><RequestId/>...).
struct S3ErrorInfo {
  std::string code;
  std::string message;
  std::string request_id;
  std::string resource;
};
/// Never throws: malformed or empty bodies give an empty S3ErrorInfo.
S3ErrorInfo parse_error_xml(std::string_view body) noexcept;

struct ListPage {
  struct Object {
    std::string key;
    std::uint64_t size = 0;
    std::string etag;
    std::optional<std::chrono::system_clock::time_point> last_modified;
  };
  std::vector<Object> objects;
  std::vector<std::string> common_prefixes;
  bool is_truncated = false;
  std::string next_continuation_token;
};
/// A ListObjectsV2 result (keys/prefixes URL-decoded when EncodingType is "url"). Throws
/// shardy::error(errc::protocol_error) when it is not one.
ListPage parse_list_objects_v2(std::string_view body);

/// "2009-10-12T17:50:30.000Z" (ISO 8601, as in listings).
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s);
/// "Wed, 12 Oct 2009 17:50:00 GMT" (RFC 7231 IMF-fixdate, as in Last-Modified).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s);

/// Percent-decoding for encoding-type=url listings ('+' stays '+').
std::string url_decode(std::string_view s);

}  // namespace shardy::s3
