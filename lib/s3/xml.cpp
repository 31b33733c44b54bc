#include "s3/xml.hpp"

#include <charconv>
#include <shardy/error.hpp>

namespace shardy::s3 {
namespace {

class Parser {
 public:
  Parser(std::string_view doc, const XmlLimits& limits) : s_(doc), limits_(limits) {}

  XmlElement parse_document() {
    if (s_.size() > limits_.max_bytes) fail("document larger than the limit");
    if (s_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // UTF-8 byte order mark
    skip_misc();
    if (!at('<')) fail("expected the root element");
    XmlElement root;
    parse_element(root, 1);
    skip_misc();
    if (pos_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw error(errc::protocol_error,
                "malformed XML at byte " + std::to_string(pos_) + ": " + std::string(what));
  }

  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool starts(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }

  static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  void skip_space() {
    while (pos_ < s_.size() && space(s_[pos_])) ++pos_;
  }

  void skip_past(std::string_view end, std::string_view what) {
    auto e = s_.find(end, pos_);
    if (e == std::string_view::npos) fail(what);
    pos_ = e + end.size();
  }

  // Whitespace, comments, processing instructions (including the XML declaration). DOCTYPE is
  // refused: S3 never sends one, and it is the door to entity expansion attacks.
  void skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) {
        skip_past("?>", "unterminated processing instruction");
      } else if (starts("<!--")) {
        pos_ += 4;
        skip_past("-->", "unterminated comment");
      } else if (starts("<!")) {
        fail("DOCTYPE and other declarations are not accepted");
      } else {
        return;
      }
    }
  }

  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == ':' || static_cast<unsigned char>(c) >= 0x80;
  }

  std::string_view parse_name() {
    std::size_t b = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_])) ++pos_;
    if (pos_ == b) fail("expected a name");
    return s_.substr(b, pos_ - b);
  }

  static std::string_view local(std::string_view qname) {
    auto c = qname.rfind(':');
    return c == std::string_view::npos ? qname : qname.substr(c + 1);
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // At '&': decodes one predefined entity or character reference into out.
  void parse_reference(std::string& out) {
    auto semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) fail("unterminated reference");
    std::string_view ref = s_.substr(pos_ + 1, semi - pos_ - 1);
    if (ref == "lt") {
      out.push_back('<');
    } else if (ref == "gt") {
      out.push_back('>');
    } else if (ref == "amp") {
      out.push_back('&');
    } else if (ref == "quot") {
      out.push_back('"');
    } else if (ref == "apos") {
      out.push_back('\'');
    } else if (ref.size() > 1 && ref[0] == '#') {
      std::uint32_t cp = 0;
      const bool hex = ref[1] == 'x';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      auto [p, ec] =
          std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
      if (digits.empty() || ec != std::errc() || p != digits.data() + digits.size() || cp == 0 ||
          cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        fail("bad character reference");
      }
      append_utf8(out, cp);
    } else {
      fail("undefined entity '&" + std::string(ref) + ";'");
    }
    pos_ = semi + 1;
  }

  void parse_attributes_until_end(bool& self_closing) {
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) fail("unterminated start tag");
      if (starts("/>")) {
        pos_ += 2;
        self_closing = true;
        return;
      }
      if (at('>')) {
        ++pos_;
        self_closing = false;
        return;
      }
      parse_name();
      skip_space();
      if (!at('=')) fail("expected '=' in attribute");
      ++pos_;
      skip_space();
      if (!at('"') && !at('\'')) fail("expected a quoted attribute value");
      char q = s_[pos_++];
      auto e = s_.find(q, pos_);
      if (e == std::string_view::npos) fail("unterminated attribute value");
      if (s_.substr(pos_, e - pos_).find('<') != std::string_view::npos) fail("'<' in attribute");
      pos_ = e + 1;
    }
  }

  void parse_element(XmlElement& el, std::size_t depth) {
    if (depth > limits_.max_depth) fail("elements nested too deeply");
    if (++elements_ > limits_.max_elements) fail("too many elements");
    ++pos_;  // '<'
    std::string_view qname = parse_name();
    el.name = std::string(local(qname));
    bool self_closing = false;
    parse_attributes_until_end(self_closing);
    if (self_closing) return;
    for (;;) {
      if (pos_ >= s_.size()) fail("unterminated element <" + el.name + ">");
      char c = s_[pos_];
      if (c == '<') {
        if (starts("</")) {
          pos_ += 2;
          std::string_view end = parse_name();
          if (end != qname) fail("mismatched end tag </" + std::string(end) + ">");
          skip_space();
          if (!at('>')) fail("expected '>'");
          ++pos_;
          return;
        }
        if (starts("<!--")) {
          pos_ += 4;
          skip_past("-->", "unterminated comment");
          continue;
        }
        if (starts("<![CDATA[")) {
          pos_ += 9;
          auto e = s_.find("]]>", pos_);
          if (e == std::string_view::npos) fail("unterminated CDATA");
          el.text.append(s_.substr(pos_, e - pos_));
          pos_ = e + 3;
          continue;
        }
        if (starts("<?")) {
          skip_past("?>", "unterminated processing instruction");
          continue;
        }
        if (starts("<!")) fail("declarations are not accepted inside elements");
        el.children.emplace_back();
        parse_element(el.children.back(), depth + 1);
        continue;
      }
      if (c == '&') {
        parse_reference(el.text);
        continue;
      }
      // Character data up to the next markup.
      std::size_t e = s_.find_first_of("<&", pos_);
      if (e == std::string_view::npos) e = s_.size();
      el.text.append(s_.substr(pos_, e - pos_));
      pos_ = e;
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::size_t elements_ = 0;
  const XmlLimits& limits_;
};

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <typename T>
bool to_num(std::string_view s, T& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

std::chrono::system_clock::time_point from_civil(int y, unsigned m, unsigned d, int hh, int mm,
                                                 int ss) {
  using namespace std::chrono;
  auto days = sys_days(year(y) / month(m) / day(d));
  return time_point_cast<system_clock::duration>(days + hours(hh) + minutes(mm) + seconds(ss));
}

}  // namespace

const XmlElement* XmlElement::child(std::string_view n) const noexcept {
  for (const auto& c : children) {
    if (c.name == n) return &c;
  }
  return nullptr;
}

std::string_view XmlElement::child_text(std::string_view n) const noexcept {
  const XmlElement* c = child(n);
  return c ? std::string_view(c->text) : std::string_view{};
}

XmlElement parse_xml(std::string_view doc, const XmlLimits& limits) {
  return Parser(doc, limits).parse_document();
}

S3ErrorInfo parse_error_xml(std::string_view body) noexcept {
  S3ErrorInfo info;
  try {
    XmlLimits limits;
    limits.max_bytes = 1u << 20;
    limits.max_elements = 1000;
    auto root = parse_xml(body, limits);
    if (root.name != "Error") return info;
    info.code = std::string(root.child_text("Code"));
    info.message = std::string(root.child_text("Message"));
    info.request_id = std::string(root.child_text("RequestId"));
    info.resource = std::string(root.child_text("Resource"));
  } catch (...) {
    return S3ErrorInfo{};
  }
  return info;
}

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

ListPage parse_list_objects_v2(std::string_view body) {
  auto root = parse_xml(body);
  if (root.name != "ListBucketResult") {
    throw error(errc::protocol_error, "expected ListBucketResult, got <" + root.name + ">");
  }
  const bool url_encoded = root.child_text("EncodingType") == "url";
  auto decode = [&](std::string_view v) { return url_encoded ? url_decode(v) : std::string(v); };
  ListPage page;
  for (const auto& c : root.children) {
    if (c.name == "Contents") {
      ListPage::Object o;
      const XmlElement* key = c.child("Key");
      if (!key) throw error(errc::protocol_error, "listing entry without a Key");
      o.key = decode(key->text);
      auto size = c.child_text("Size");
      if (!size.empty() && !to_num(size, o.size)) {
        throw error(errc::protocol_error, "bad Size '" + std::string(size) + "' in listing");
      }
      o.etag = std::string(c.child_text("ETag"));
      o.last_modified = parse_iso8601(c.child_text("LastModified"));
      page.objects.push_back(std::move(o));
    } else if (c.name == "CommonPrefixes") {
      for (const auto& p : c.children) {
        if (p.name == "Prefix") page.common_prefixes.push_back(decode(p.text));
      }
    } else if (c.name == "IsTruncated") {
      page.is_truncated = c.text == "true";
    } else if (c.name == "NextContinuationToken") {
      page.next_continuation_token = c.text;
    }
  }
  if (page.is_truncated && page.next_continuation_token.empty()) {
    throw error(errc::protocol_error, "truncated listing without a NextContinuationToken");
  }
  return page;
}

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  int y = 0, hh = 0, mm = 0, ss = 0;
  unsigned mo = 0, d = 0;
  if (!to_num(s.substr(0, 4), y) || !to_num(s.substr(5, 2), mo) || !to_num(s.substr(8, 2), d) ||
      !to_num(s.substr(11, 2), hh) || !to_num(s.substr(14, 2), mm) ||
      !to_num(s.substr(17, 2), ss)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  auto t = from_civil(y, mo, d, hh, mm, ss);
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest[0] == '.') {
    std::size_t i = 1;
    std::int64_t ms = 0;
    int digits = 0;
    while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
      if (digits < 3) {
        ms = ms * 10 + (rest[i] - '0');
        ++digits;
      }
      ++i;
    }
    while (digits < 3) {
      ms *= 10;
      ++digits;
    }
    t += std::chrono::milliseconds(ms);
    rest = rest.substr(i);
  }
  if (rest != "Z") return std::nullopt;
  return t;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) {
  // "Wed, 12 Oct 2009 17:50:00 GMT"
  if (s.size() != 29 || s[3] != ',' || s.substr(26) != "GMT") return std::nullopt;
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  unsigned mo = 0;
  for (unsigned i = 0; i < 12; ++i) {
    if (s.substr(8, 3) == months[i]) mo = i + 1;
  }
  int y = 0, hh = 0, mm = 0, ss = 0;
  unsigned d = 0;
  if (mo == 0 || !to_num(s.substr(5, 2), d) || !to_num(s.substr(12, 4), y) ||
      !to_num(s.substr(17, 2), hh) || !to_num(s.substr(20, 2), mm) ||
      !to_num(s.substr(23, 2), ss)) {
    return std::nullopt;
  }
  if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  return from_civil(y, mo, d, hh, mm, ss);
}

}  // namespace shardy::s3
