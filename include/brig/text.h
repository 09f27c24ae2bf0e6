// How brig's front ends (the CLI, the server, the MCP server) turn what the API returns into
// text, so that they all print it the same way: timestamps, byte counts, and file contents
// that may not be text (valid UTF-8 is shown as is, anything else as base64).
//
// Thread-safety: pure functions.
#ifndef BRIG_TEXT_H_
#define BRIG_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brig {

// "2026-05-21T10:00:00Z": a timestamp (microseconds since the epoch) in UTC, to the second.
std::string FormatTimestamp(int64_t micros);

// "12.5 MiB", "512 B": a byte count for people.
std::string FormatBytes(int64_t bytes);

// True iff `bytes` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view bytes);

// `bytes` as base64 (RFC 4648 section 4: the standard alphabet, '=' padding, no line breaks).
std::string Base64Encode(std::string_view bytes);

// The bytes `text` encodes, or nullopt unless it is exactly what Base64Encode makes of some
// bytes: a length that is a multiple of 4, only alphabet characters, '=' only as the last
// one or two, and zeros in the bits the padding leaves unused. No white space is skipped:
// decoded text is untrusted input, so every string has one meaning, or none.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace brig

#endif  // BRIG_TEXT_H_
