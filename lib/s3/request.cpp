#include "s3/request.hpp"

#include <boost/url/authority_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

#include "s3/sigv4.hpp"

namespace shardy::s3 {

namespace {

Endpoint parse_url_endpoint(std::string_view endpoint, std::string_view region) {
  Endpoint e;
  if (endpoint.empty()) {
    if (region.empty()) throw error(errc::invalid_argument, "S3 region is empty");
    e.aws = true;
    e.host = "s3.";
    e.host += region;
    e.host += ".amazonaws.com";
    e.port = "443";
    return e;
  }
  auto parsed = boost::urls::parse_uri(endpoint);
  if (!parsed) {
    throw error(errc::invalid_url, "S3 endpoint '" + std::string(endpoint) +
                                       "' is not a URL: " + parsed.error().message());
  }
  const auto& u = *parsed;
  if (u.scheme() == "https") {
    e.tls = true;
  } else if (u.scheme() == "http") {
    e.tls = false;
  } else {
    throw error(errc::invalid_url,
                "S3 endpoint '" + std::string(endpoint) + "' must start with http:// or https://");
  }
  if (!u.has_authority() || u.encoded_host().empty() || u.has_userinfo() || u.has_query() ||
      u.has_fragment() || !(u.encoded_path().empty() || u.encoded_path() == "/")) {
    throw error(errc::invalid_url, "S3 endpoint '" + std::string(endpoint) +
                                       "' must be scheme://host[:port] without a path");
  }
  if (u.host_type() == boost::urls::host_type::ipv6) {
    e.host = std::string(u.host_address());
  } else {
    e.host = std::string(u.host());
  }
  if (u.has_port() && !u.port().empty()) {
    e.port = std::string(u.port());
    e.default_port = (e.tls && e.port == "443") || (!e.tls && e.port == "80");
  } else {
    e.port = e.tls ? "443" : "80";
  }
  return e;
}

// S3Options::connect_to: host, host:port, [v6] or [v6]:port.
void parse_connect_to(std::string_view connect_to, Endpoint& e) {
  if (connect_to.empty()) return;
  auto bad = [&](std::string_view why) {
    return error(errc::invalid_url, "S3 connect_to '" + std::string(connect_to) + "' " +
                                        std::string(why) + " (want host, host:port or [v6]:port)");
  };
  auto parsed = boost::urls::parse_authority(connect_to);
  if (!parsed) throw bad("is not an address");
  const auto& a = *parsed;
  if (a.has_userinfo() || a.encoded_host().empty()) throw bad("is not an address");
  if (a.host_type() == boost::urls::host_type::ipv6) {
    e.connect_host = std::string(a.host_address());
  } else if (a.host_type() == boost::urls::host_type::ipvfuture) {
    throw bad("is not an address");
  } else {
    e.connect_host = std::string(a.host());
  }
  if (a.has_port()) {
    const auto port = a.port();
    unsigned long n = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n == 0 ||
        n > 65535) {
      throw bad("has no valid port");
    }
    e.connect_port = std::string(a.port());
  } else {
    e.connect_port = e.port;
  }
}

}  // namespace

Endpoint parse_endpoint(std::string_view endpoint, std::string_view region,
                        std::string_view connect_to) {
  Endpoint e = parse_url_endpoint(endpoint, region);
  parse_connect_to(connect_to, e);
  return e;
}

bool dns_compatible_bucket(std::string_view b, bool tls) {
  if (b.size() < 3 || b.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return false;
  bool all_digits_or_dots = true;
  for (std::size_t i = 0; i < b.size(); ++i) {
    char c = b[i];
    if (c == '.') {
      if (tls) return false;  // would not match the *.s3 wildcard certificate
      if (b[i - 1] == '.' || b[i - 1] == '-' || b[i + 1] == '-') return false;
      continue;
    }
    if (!alnum(c) && c != '-') return false;
    if (!(c >= '0' && c <= '9')) all_digits_or_dots = false;
  }
  return !all_digits_or_dots;  // "192.168.1.1" is not a DNS name
}

Address make_address(const Endpoint& endpoint, S3Options::Addressing addressing,
                     std::string_view bucket, std::string_view key) {
  if (bucket.empty()) throw error(errc::invalid_argument, "empty S3 bucket name");
  bool virtual_host = false;
  switch (addressing) {
    case S3Options::Addressing::path:
      break;
    case S3Options::Addressing::virtual_host:
      if (bucket.find_first_of("/?#[]@:") != std::string_view::npos) {
        throw error(errc::invalid_argument,
                    "bucket '" + std::string(bucket) + "' cannot be a host name");
      }
      virtual_host = true;
      break;
    case S3Options::Addressing::automatic:
      virtual_host = endpoint.aws && dns_compatible_bucket(bucket, endpoint.tls);
      break;
  }
  Address a;
  a.tls = endpoint.tls;
  a.port = endpoint.port;
  a.connect_host = endpoint.connect_host;
  a.connect_port = endpoint.connect_port;
  if (virtual_host) {
    a.host.reserve(bucket.size() + 1 + endpoint.host.size());
    a.host += bucket;
    a.host += '.';
    a.host += endpoint.host;
  } else {
    a.host = endpoint.host;
  }
  const bool v6 = a.host.find(':') != std::string::npos;
  if (v6) {  // built piecewise: "[" + host trips g++ 12's -Wrestrict false positive
    a.host_header.reserve(a.host.size() + 2);
    a.host_header += '[';
    a.host_header += a.host;
    a.host_header += ']';
  } else {
    a.host_header = a.host;
  }
  if (!endpoint.default_port) {
    a.host_header += ':';
    a.host_header += endpoint.port;
  }
  a.path.reserve(2 + bucket.size() + key.size() * 3 / 2);
  a.path.push_back('/');
  if (!virtual_host) {
    uri_encode(bucket, false, a.path);
    if (!key.empty()) a.path += '/';
  }
  uri_encode(key, true, a.path);
  return a;
}

std::array<unsigned char, 32> SigningKeyCache::get(std::string_view secret, std::string_view date8,
                                                   std::string_view region) {
  std::lock_guard lock(mutex_);
  if (secret_ != secret || date8_ != date8 || region_ != region) {
    key_ = signing_key(secret, date8, region, "s3");
    secret_ = secret;
    date8_ = date8;
    region_ = region;
  }
  return key_;
}

PreparedRequest prepare_request(RequestParts parts, const Credentials& credentials,
                                std::string_view region, std::chrono::system_clock::time_point now,
                                SigningKeyCache* cache) {
  PreparedRequest out;
  out.method = std::string(parts.method);
  out.target = parts.address->path;
  if (!parts.canonical_query.empty()) {
    out.target += '?';
    out.target += parts.canonical_query;
  }
  std::string date = amz_date(now);
  auto& h = out.headers;
  h.reserve(parts.headers.size() + 5);
  h.emplace_back("host", parts.address->host_header);
  for (auto& kv : parts.headers) h.push_back(std::move(kv));
  h.emplace_back("x-amz-content-sha256", std::string(parts.payload_hash));
  h.emplace_back("x-amz-date", date);
  if (!credentials.session_token.empty()) {
    h.emplace_back("x-amz-security-token", credentials.session_token);
  }
  SigningRequest sr;
  sr.method = parts.method;
  sr.canonical_uri = parts.address->path;
  sr.canonical_query = parts.canonical_query;
  sr.payload_hash = parts.payload_hash;
  sr.headers.reserve(h.size());
  for (const auto& [k, v] : h) sr.headers.emplace_back(k, v);
  SigningScope scope{date, region, "s3"};
  auto key =
      cache ? cache->get(credentials.secret_access_key, std::string_view(date).substr(0, 8), region)
            : signing_key(credentials.secret_access_key, std::string_view(date).substr(0, 8),
                          region, "s3");
  auto sig = sign(sr, scope, credentials.access_key_id, key);
  out.canonical_request = std::move(sig.canonical_request);
  h.emplace_back("authorization", std::move(sig.authorization));
  return out;
}

}  // namespace shardy::s3
