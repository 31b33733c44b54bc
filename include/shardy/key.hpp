// A lookup or write key: an integer, a UTF-8 string or raw bytes, exactly as shardyfusion
// distinguishes them (Python int / str / bytes). The kind decides how the key is routed
// (interop spec 3.1) and how it is encoded for storage (spec 3.3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <shardy/error.hpp>
#include <span>
#include <string>
#include <string_view>

namespace shardy {

/// Values are opaque bytes held in a std::string (which may contain NULs). An empty value is a
/// value; an absent key is std::nullopt.
using Value = std::string;

class Key {
 public:
  enum class kind : std::uint8_t { integer, text, bytes };

  /// An integer key in the signed 64-bit range (routable).
  static Key integer(std::int64_t v) noexcept;
  /// An integer key given as unsigned 64-bit. Values >= 2^63 are valid keys for the u64be
  /// storage encoding but cannot be routed (spec 3.3, "interplay traps").
  static Key unsigned_integer(std::uint64_t v) noexcept;
  /// A decimal integer ("-12", "18446744073709551615"); leading '+'/'-' allowed. Values outside
  /// [-2^63, 2^64-1] fail with errc::key_not_routable, anything else malformed with
  /// errc::invalid_argument.
  static Key parse_integer(std::string_view decimal, error_code& ec);
  static Key parse_integer(std::string_view decimal);
  /// A string key; `utf8` must be UTF-8 (not checked here: routing hashes the bytes as given).
  static Key text(std::string_view utf8);
  /// A raw byte-string key.
  static Key bytes(std::string_view raw);
  static Key bytes(std::span<const std::byte> raw);

  kind type() const noexcept { return kind_; }
  bool is_integer() const noexcept { return kind_ == kind::integer; }
  bool is_text() const noexcept { return kind_ == kind::text; }
  bool is_bytes() const noexcept { return kind_ == kind::bytes; }

  /// For integer keys: the value if it fits in int64 / uint64.
  std::optional<std::int64_t> as_int64() const noexcept;
  std::optional<std::uint64_t> as_uint64() const noexcept;
  bool is_negative() const noexcept { return kind_ == kind::integer && negative_; }

  /// For text and bytes keys: the bytes. Empty for integers.
  std::string_view data() const noexcept { return data_; }

  /// Human-readable form: decimal for integers, the string for text, hex for bytes.
  std::string to_string() const;

  friend bool operator==(const Key& a, const Key& b) noexcept = default;

 private:
  Key() = default;
  kind kind_ = kind::integer;
  bool negative_ = false;        // integer: sign
  std::uint64_t magnitude_ = 0;  // integer: |value|
  std::string data_;             // text / bytes
};

}  // namespace shardy
