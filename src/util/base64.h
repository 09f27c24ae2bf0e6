// Base64 (RFC 4648 section 4: the standard alphabet, '=' padding, no line breaks): the one
// encoder and decoder of the tree (file contents in `brig files cat --json`, portable
// snapshots handed to and from the guest).
//
// Thread-safety: pure functions.
#ifndef BRIG_UTIL_BASE64_H_
#define BRIG_UTIL_BASE64_H_

#include <optional>
#include <string>
#include <string_view>

namespace brig {

// `bytes` as base64: 4 characters per 3 bytes, the last group padded with '='.
std::string Base64Encode(std::string_view bytes);

// The bytes `text` encodes, or nullopt unless it is exactly what Base64Encode makes of some
// bytes: a length that is a multiple of 4, only alphabet characters, '=' only as the last
// one or two, and zeros in the bits the padding leaves unused. No white space is skipped.
// Decoded text is untrusted input: so every string has one meaning, or none.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace brig

#endif  // BRIG_UTIL_BASE64_H_
