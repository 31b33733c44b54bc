#include "manifest/python_json.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <shardy/error.hpp>
#include <vector>

namespace shardy::detail {
namespace {

// Decodes one UTF-8 sequence at s[i]; returns the code point or -1 when malformed.
long decode_utf8(std::string_view s, std::size_t& i) noexcept {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len;
  long cp;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return -1;
  }
  if (i + static_cast<std::size_t>(len) > s.size()) return -1;
  for (int k = 1; k < len; ++k) {
    unsigned char cc = byte(i + static_cast<std::size_t>(k));
    if ((cc & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (cc & 0x3f);
  }
  static constexpr long min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  i += static_cast<std::size_t>(len);
  return cp;
}

void append_u_escape(std::string& out, unsigned v) {
  static constexpr char hex[] = "0123456789abcdef";
  out += "\\u";
  out.push_back(hex[(v >> 12) & 15]);
  out.push_back(hex[(v >> 8) & 15]);
  out.push_back(hex[(v >> 4) & 15]);
  out.push_back(hex[v & 15]);
}

// Python's float.__repr__: the shortest round-tripping digits; scientific notation when the
// decimal exponent is < -4 or >= 16, otherwise positional with at least one fractional digit.
void append_python_float(std::string& out, double d) {
  if (!std::isfinite(d)) throw_error(errc::invalid_argument, "JSON cannot hold NaN or Infinity");
  if (d == 0) {
    out += std::signbit(d) ? "-0.0" : "0.0";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));  // -d.ddde[+-]xx
  bool neg = sci.front() == '-';
  if (neg) sci.remove_prefix(1);
  auto epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits.push_back(c);
  int exp10 = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exp10);
  if (neg) out.push_back('-');
  const int decpt = exp10 + 1;  // value = 0.digits * 10^decpt
  if (decpt > 16 || decpt < -3) {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exp10 < 0 ? '-' : '+');
    int a = exp10 < 0 ? -exp10 : exp10;
    if (a < 10) out.push_back('0');
    out += std::to_string(a);
  } else if (decpt <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-decpt), '0');
    out += digits;
  } else if (static_cast<std::size_t>(decpt) >= digits.size()) {
    out += digits;
    out.append(static_cast<std::size_t>(decpt) - digits.size(), '0');
    out += ".0";
  } else {
    out.append(digits, 0, static_cast<std::size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(decpt));
  }
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();)
    if (decode_utf8(s, i) < 0) return false;
  return true;
}

void dump_python_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    long cp = decode_utf8(s, i);
    if (cp < 0) throw_error(errc::invalid_argument, "string is not valid UTF-8");
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x10000) {
      append_u_escape(out, static_cast<unsigned>(cp));
    } else {
      long v = cp - 0x10000;
      append_u_escape(out, static_cast<unsigned>(0xd800 + (v >> 10)));
      append_u_escape(out, static_cast<unsigned>(0xdc00 + (v & 0x3ff)));
    }
  }
  out.push_back('"');
}

void dump_python_json(std::string& out, const boost::json::value& v, JsonSeparators sep) {
  const char* item_sep = sep == JsonSeparators::compact ? "," : ", ";
  const char* key_sep = sep == JsonSeparators::compact ? ":" : ": ";
  switch (v.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      out += std::to_string(v.get_int64());
      return;
    case boost::json::kind::uint64:
      out += std::to_string(v.get_uint64());
      return;
    case boost::json::kind::double_:
      append_python_float(out, v.get_double());
      return;
    case boost::json::kind::string:
      dump_python_string(out, v.get_string());
      return;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += item_sep;
        first = false;
        dump_python_json(out, e, sep);
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::object: {
      const auto& o = v.get_object();
      std::vector<const boost::json::key_value_pair*> items;
      items.reserve(o.size());
      for (const auto& kv : o) items.push_back(&kv);
      // Python sorts str keys by code point: for valid UTF-8 that is byte order.
      std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      bool first = true;
      for (auto* kv : items) {
        if (!first) out += item_sep;
        first = false;
        dump_python_string(out, kv->key());
        out += key_sep;
        dump_python_json(out, kv->value(), sep);
      }
      out.push_back('}');
      return;
    }
  }
}

std::string dump_python_json(const boost::json::value& v, JsonSeparators sep) {
  std::string out;
  dump_python_json(out, v, sep);
  return out;
}

}  // namespace shardy::detail
