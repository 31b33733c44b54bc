// HASH routing and key encodings (interop spec 3.1-3.3). Error classes follow the reference:
// canonical_bytes' ValueError -> key_not_routable; every encoder failure (ConfigValidationError
// and the lookup encoder's ValueError) -> key_encoding_error.
#include <xxhash.h>

#include <shardy/routing.hpp>

namespace shardy {
namespace {

std::string big_endian(std::uint64_t v, int width) {
  std::string out(static_cast<std::size_t>(width), '\0');
  for (int i = width - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

const char* kind_name(const Key& key) {
  switch (key.type()) {
    case Key::kind::integer:
      return "int";
    case Key::kind::text:
      return "str";
    case Key::kind::bytes:
      return "bytes";
  }
  return "?";
}

// The writer's encoder; `lookup` adds the reader's pass-through and its error wording.
std::string encode_key(const Key& key, KeyEncoding encoding, bool lookup, error_code& ec,
                       std::string* why) {
  ec = {};
  auto fail = [&](std::string msg) {
    ec = errc::key_encoding_error;
    if (why) *why = std::move(msg);
    return std::string{};
  };
  switch (encoding) {
    case KeyEncoding::u64be:
    case KeyEncoding::u32be: {
      const bool is64 = encoding == KeyEncoding::u64be;
      const std::size_t width = is64 ? 8 : 4;
      const char* name = is64 ? "u64be" : "u32be";
      if (key.is_integer()) {
        auto v = key.as_uint64();
        if (!v || (!is64 && *v > 0xffffffffULL))
          return fail(std::string(name) + " encoding requires value in [0, " +
                      (is64 ? "2^64-1" : "2^32-1") + "], got " + key.to_string());
        return big_endian(*v, static_cast<int>(width));
      }
      if (!lookup)
        return fail(std::string(name) + " encoding expects int key, got " + kind_name(key));
      if (key.is_bytes()) {
        if (key.data().size() != width)
          return fail(std::string(name) + " key bytes must have length " + std::to_string(width));
        return std::string(key.data());
      }
      return fail(std::string(name) + " key encoding requires integer lookup keys");
    }
    case KeyEncoding::utf8:
    case KeyEncoding::raw:
      if (key.is_integer())
        return fail(std::string(to_string(encoding)) +
                    " encoding expects str or bytes key, got int");
      return std::string(key.data());
  }
  return fail("unknown key encoding");
}

// The throwing form: the encoder's diagnostics become the error's text.
std::string encode_key_or_throw(const Key& key, KeyEncoding encoding, bool lookup) {
  error_code ec;
  std::string why;
  std::string out = encode_key(key, encoding, lookup, ec, &why);
  if (ec) throw_error(ec, why);
  return out;
}

// Route first, then encode (as the reference does); shared by route_lookup and route_write.
RouteResult route(const Router& router, const Key& key, bool lookup, error_code& ec) {
  RouteResult r;
  r.db_id = router.shard_for(key, ec);
  if (ec) return r;
  r.storage_key = encode_key(key, router.key_encoding(), lookup, ec, nullptr);
  return r;
}

RouteResult route(const Router& router, const Key& key, bool lookup) {
  RouteResult r;
  r.db_id = router.shard_for(key);
  r.storage_key = encode_key_or_throw(key, router.key_encoding(), lookup);
  return r;
}

}  // namespace

std::optional<KeyEncoding> parse_key_encoding(std::string_view s) noexcept {
  if (s == "u64be") return KeyEncoding::u64be;
  if (s == "u32be") return KeyEncoding::u32be;
  if (s == "utf8") return KeyEncoding::utf8;
  if (s == "raw") return KeyEncoding::raw;
  return std::nullopt;
}

std::string_view to_string(KeyEncoding e) noexcept {
  switch (e) {
    case KeyEncoding::u64be:
      return "u64be";
    case KeyEncoding::u32be:
      return "u32be";
    case KeyEncoding::utf8:
      return "utf8";
    case KeyEncoding::raw:
      return "raw";
  }
  return "?";
}

std::string canonical_bytes(const Key& key, error_code& ec) {
  ec = {};
  if (!key.is_integer()) return std::string(key.data());
  auto v = key.as_int64();
  if (!v) {
    ec = errc::key_not_routable;
    return {};
  }
  auto u = static_cast<std::uint64_t>(*v);  // two's complement
  std::string out(8, '\0');
  for (std::size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
  return out;
}

std::string canonical_bytes(const Key& key) {
  error_code ec;
  std::string out = canonical_bytes(key, ec);
  if (ec)
    throw_error(ec, "integer key " + key.to_string() +
                        " out of range [-9223372036854775808, 9223372036854775807]");
  return out;
}

std::uint64_t xxh3_64(std::string_view bytes) noexcept {
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string encode_key_for_write(const Key& key, KeyEncoding encoding, error_code& ec) {
  return encode_key(key, encoding, false, ec, nullptr);
}

std::string encode_key_for_write(const Key& key, KeyEncoding encoding) {
  return encode_key_or_throw(key, encoding, false);
}

std::string encode_key_for_lookup(const Key& key, KeyEncoding encoding, error_code& ec) {
  return encode_key(key, encoding, true, ec, nullptr);
}

std::string encode_key_for_lookup(const Key& key, KeyEncoding encoding) {
  return encode_key_or_throw(key, encoding, true);
}

Router::Router(std::uint32_t num_dbs, KeyEncoding encoding)
    : num_dbs_(num_dbs), encoding_(encoding) {
  if (num_dbs == 0) throw_error(errc::invalid_argument, "num_dbs must be > 0");
}

std::uint32_t Router::shard_for(const Key& key, error_code& ec) const {
  std::string bytes = canonical_bytes(key, ec);
  if (ec) return 0;
  return shard_for_hash(xxh3_64(bytes), num_dbs_);
}

std::uint32_t Router::shard_for(const Key& key) const {
  return shard_for_hash(xxh3_64(canonical_bytes(key)), num_dbs_);
}

RouteResult Router::route_lookup(const Key& key, error_code& ec) const {
  return route(*this, key, true, ec);
}

RouteResult Router::route_lookup(const Key& key) const { return route(*this, key, true); }

RouteResult Router::route_write(const Key& key, error_code& ec) const {
  return route(*this, key, false, ec);
}

RouteResult Router::route_write(const Key& key) const { return route(*this, key, false); }

}  // namespace shardy
