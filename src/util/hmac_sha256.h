// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for signed file links
// (server/signed_link.h). Ours, not a library's: a few dozen lines, and brig's start-up does
// not pay for loading libcrypto. Checked against the FIPS and RFC 4231 test vectors.
#ifndef BRIG_UTIL_HMAC_SHA256_H_
#define BRIG_UTIL_HMAC_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace brig::util {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);
Sha256Digest HmacSha256(std::string_view key, std::string_view message);
// Lower-case hex of a digest.
std::string ToHex(const Sha256Digest& digest);
// Equal in time that does not depend on where the first difference is.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace brig::util

#endif  // BRIG_UTIL_HMAC_SHA256_H_
