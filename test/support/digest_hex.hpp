// Message digests as lower-case hex, for comparing against the digests fixtures record.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "support/test_support.hpp"

namespace shardy::test {

inline std::string digest_hex(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return to_hex(std::string_view(reinterpret_cast<const char*>(out), len));
}

inline std::string sha256_hex(std::string_view data) { return digest_hex(EVP_sha256(), data); }

}  // namespace shardy::test
