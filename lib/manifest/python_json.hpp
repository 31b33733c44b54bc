// JSON text exactly as Python's json.dumps(value, sort_keys=True) writes it (ensure_ascii: every
// code point outside 0x20-0x7E is \u-escaped, astral ones as surrogate pairs; floats as
// repr()). shardyfusion writes the manifest's JSON columns this way (interop spec 2.3, 2.4, 2.6).
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace shardy::detail {

/// Separators: default (", " and ": ") or compact ("," and ":").
enum class JsonSeparators { python_default, compact };

/// Appends json.dumps(v, sort_keys=True, separators=...) to `out`. Throws
/// errc::invalid_argument for a string that is not valid UTF-8 or a non-finite double.
void dump_python_json(std::string& out, const boost::json::value& v,
                      JsonSeparators sep = JsonSeparators::python_default);
std::string dump_python_json(const boost::json::value& v,
                             JsonSeparators sep = JsonSeparators::python_default);

/// Appends a JSON string literal of `utf8` with ensure_ascii escaping.
void dump_python_string(std::string& out, std::string_view utf8);

/// True when `s` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace shardy::detail
