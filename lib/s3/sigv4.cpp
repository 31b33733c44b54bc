#include "s3/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>

namespace shardy::s3 {

std::string to_hex(const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return to_hex(md, sizeof md);
}

std::array<unsigned char, 32> hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

struct Sha256::State {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_DigestInit_ex failed");
  }
}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(state_->ctx, data, n); }

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(state_->ctx, md, &len);
  return to_hex(md, len);
}

namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

void uri_encode(std::string_view in, bool keep_slash, std::string& out) {
  static constexpr char digits[] = "0123456789ABCDEF";
  out.reserve(out.size() + in.size());
  for (unsigned char c : in) {
    if (unreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
}

std::string uri_encode(std::string_view in, bool keep_slash) {
  std::string out;
  uri_encode(in, keep_slash, out);
  return out;
}

std::string canonical_query(std::vector<std::pair<std::string, std::string>> params) {
  for (auto& [k, v] : params) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += k;
    out.push_back('=');
    out += v;
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[17];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, 16);
}

std::array<unsigned char, 32> signing_key(std::string_view secret, std::string_view date8,
                                          std::string_view region, std::string_view service) {
  std::string k = "AWS4";
  k += secret;
  auto k_date = hmac_sha256(k, date8);
  auto as_view = [](const std::array<unsigned char, 32>& a) {
    return std::string_view(reinterpret_cast<const char*>(a.data()), a.size());
  };
  auto k_region = hmac_sha256(as_view(k_date), region);
  auto k_service = hmac_sha256(as_view(k_region), service);
  return hmac_sha256(as_view(k_service), "aws4_request");
}

Signature sign(const SigningRequest& request, const SigningScope& scope,
               std::string_view access_key_id, const std::array<unsigned char, 32>& key) {
  // Canonical headers: lower-case names, sorted, duplicate names joined with ','; values
  // trimmed with runs of spaces collapsed to one.
  std::vector<std::pair<std::string, std::string>> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers) {
    std::string n(name);
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string v;
    v.reserve(value.size());
    bool space = false;
    for (char c : trim(value)) {
      if (c == ' ' || c == '\t') {
        space = true;
        continue;
      }
      if (space) v.push_back(' ');
      space = false;
      v.push_back(c);
    }
    headers.emplace_back(std::move(n), std::move(v));
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  Signature s;
  std::string& cr = s.canonical_request;
  cr.reserve(256);
  cr += request.method;
  cr += '\n';
  cr += request.canonical_uri;
  cr += '\n';
  cr += request.canonical_query;
  cr += '\n';
  for (std::size_t i = 0; i < headers.size(); ++i) {
    if (i > 0 && headers[i].first == headers[i - 1].first) {
      cr.back() = ',';  // replace the previous '\n'
      cr += headers[i].second;
      cr += '\n';
      continue;
    }
    if (!s.signed_headers.empty()) s.signed_headers += ';';
    s.signed_headers += headers[i].first;
    cr += headers[i].first;
    cr += ':';
    cr += headers[i].second;
    cr += '\n';
  }
  cr += '\n';
  cr += s.signed_headers;
  cr += '\n';
  cr += request.payload_hash;

  std::string_view date8 = scope.amz_date.substr(0, 8);
  std::string credential_scope;
  credential_scope.reserve(64);
  credential_scope += date8;
  credential_scope += '/';
  credential_scope += scope.region;
  credential_scope += '/';
  credential_scope += scope.service;
  credential_scope += "/aws4_request";

  s.string_to_sign = "AWS4-HMAC-SHA256\n";
  s.string_to_sign += scope.amz_date;
  s.string_to_sign += '\n';
  s.string_to_sign += credential_scope;
  s.string_to_sign += '\n';
  s.string_to_sign += sha256_hex(cr);

  auto mac = hmac_sha256(std::string_view(reinterpret_cast<const char*>(key.data()), key.size()),
                         s.string_to_sign);
  s.signature = to_hex(mac.data(), mac.size());

  s.authorization.reserve(200);
  s.authorization = "AWS4-HMAC-SHA256 Credential=";
  s.authorization += access_key_id;
  s.authorization += '/';
  s.authorization += credential_scope;
  s.authorization += ", SignedHeaders=";
  s.authorization += s.signed_headers;
  s.authorization += ", Signature=";
  s.authorization += s.signature;
  return s;
}

Signature sign(const SigningRequest& request, const SigningScope& scope,
               std::string_view access_key_id, std::string_view secret_access_key) {
  auto key =
      signing_key(secret_access_key, scope.amz_date.substr(0, 8), scope.region, scope.service);
  return sign(request, scope, access_key_id, key);
}

}  // namespace shardy::s3
