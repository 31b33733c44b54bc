// Hex text in the CLI (keys with --key-type hex, --value-encoding hex, value_hex/canonical_hex
// output), on Boost.Algorithm's hex codec: lower-case out, either case in.
#pragma once

#include <boost/algorithm/hex.hpp>
#include <iterator>
#include <optional>
#include <shardy/error.hpp>
#include <string>
#include <string_view>

namespace shardy::cli {

inline std::string to_hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  boost::algorithm::hex_lower(bytes.begin(), bytes.end(), std::back_inserter(out));
  return out;
}

/// The bytes of hex text, or nullopt when it is not hex (a non-hex digit or an odd length).
inline std::optional<std::string> try_from_hex(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 2);
  try {
    boost::algorithm::unhex(text.begin(), text.end(), std::back_inserter(out));
  } catch (const boost::algorithm::hex_decode_error&) {
    return std::nullopt;
  }
  return out;
}

/// The bytes of hex text; invalid_argument naming `what` when it is not hex.
inline std::string from_hex(std::string_view text, std::string_view what) {
  auto out = try_from_hex(text);
  if (!out) {
    throw_error(errc::invalid_argument, std::string(what) + ": not hex: '" + std::string(text) +
                                            "'" + (text.size() % 2 ? " (odd length)" : ""));
  }
  return std::move(*out);
}

}  // namespace shardy::cli
