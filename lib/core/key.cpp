#include <boost/algorithm/hex.hpp>
#include <iterator>
#include <limits>
#include <shardy/key.hpp>

namespace shardy {

Key Key::integer(std::int64_t v) noexcept {
  Key k;
  k.kind_ = kind::integer;
  k.negative_ = v < 0;
  // |INT64_MIN| = 2^63 fits in uint64; compute without signed overflow.
  k.magnitude_ =
      v < 0 ? std::uint64_t(0) - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  return k;
}

Key Key::unsigned_integer(std::uint64_t v) noexcept {
  Key k;
  k.kind_ = kind::integer;
  k.magnitude_ = v;
  return k;
}

Key Key::parse_integer(std::string_view s, error_code& ec) {
  ec = {};
  bool neg = false;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == s.size()) {
    ec = errc::invalid_argument;
    return Key::integer(0);
  }
  std::uint64_t mag = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c < '0' || c > '9') {
      ec = errc::invalid_argument;
      return Key::integer(0);
    }
    unsigned d = static_cast<unsigned>(c - '0');
    if (mag > (std::numeric_limits<std::uint64_t>::max() - d) / 10) overflow = true;
    if (!overflow) mag = mag * 10 + d;
  }
  constexpr std::uint64_t two63 = std::uint64_t(1) << 63;
  if (overflow || (neg && mag > two63)) {
    ec = errc::key_not_routable;
    return Key::integer(0);
  }
  Key k;
  k.kind_ = kind::integer;
  k.negative_ = neg && mag != 0;
  k.magnitude_ = mag;
  return k;
}

Key Key::parse_integer(std::string_view decimal) {
  error_code ec;
  Key k = parse_integer(decimal, ec);
  if (ec) throw_error(ec, "integer key '" + std::string(decimal) + "'");
  return k;
}

Key Key::text(std::string_view utf8) {
  Key k;
  k.kind_ = kind::text;
  k.data_.assign(utf8);
  return k;
}

Key Key::bytes(std::string_view raw) {
  Key k;
  k.kind_ = kind::bytes;
  k.data_.assign(raw);
  return k;
}

Key Key::bytes(std::span<const std::byte> raw) {
  return bytes(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

std::optional<std::int64_t> Key::as_int64() const noexcept {
  if (kind_ != kind::integer) return std::nullopt;
  constexpr std::uint64_t two63 = std::uint64_t(1) << 63;
  if (negative_) {
    if (magnitude_ > two63) return std::nullopt;
    return static_cast<std::int64_t>(std::uint64_t(0) - magnitude_);
  }
  if (magnitude_ >= two63) return std::nullopt;
  return static_cast<std::int64_t>(magnitude_);
}

std::optional<std::uint64_t> Key::as_uint64() const noexcept {
  if (kind_ != kind::integer || negative_) return std::nullopt;
  return magnitude_;
}

std::string Key::to_string() const {
  switch (kind_) {
    case kind::integer: {
      std::string s = negative_ ? "-" : "";  // not `"-" + std::to_string(...)`: g++ 12 -Wrestrict
      s += std::to_string(magnitude_);
      return s;
    }
    case kind::text:
      return data_;
    case kind::bytes: {
      std::string out;
      out.reserve(data_.size() * 2);
      boost::algorithm::hex_lower(data_.begin(), data_.end(), std::back_inserter(out));
      return out;
    }
  }
  return {};
}

}  // namespace shardy
