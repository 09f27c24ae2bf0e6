// The one UTF-8 codec of the tree. Decoding is total over any bytes (one code point at a
// time, an invalid byte decodes to a value above every code point), so untrusted content never
// stops a scan; IsValid says whether a whole string is well-formed.
#ifndef BRIG_NAMES_UTF8_H_
#define BRIG_NAMES_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace brig::utf8 {

// A byte that does not start a well-formed UTF-8 sequence decodes to kInvalidByteBase + byte:
// above every code point, so no literal or ordinary range matches it.
inline constexpr char32_t kInvalidByteBase = 0x110000;
inline constexpr char32_t kMaxDecoded = kInvalidByteBase + 0xff;

// Decodes the code point at s[*pos] and advances *pos past it (one byte for an invalid
// sequence). REQUIRES: *pos < s.size().
inline char32_t Decode(std::string_view s, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(s[*pos]);
  auto cont = [&](size_t i) -> int {
    if (*pos + i >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[*pos + i]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (b0 < 0x80) {
    *pos += 1;
    return b0;
  }
  int n;
  char32_t cp;
  char32_t min;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 1, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 2, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    *pos += 1;
    return kInvalidByteBase + b0;
  }
  for (int i = 1; i <= n; ++i) {
    const int c = cont(static_cast<size_t>(i));
    if (c < 0) {
      *pos += 1;
      return kInvalidByteBase + b0;
    }
    cp = (cp << 6) | static_cast<char32_t>(c);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *pos += 1;
    return kInvalidByteBase + b0;
  }
  *pos += static_cast<size_t>(n) + 1;
  return cp;
}

// Appends the UTF-8 encoding of `cp`. REQUIRES: cp <= 0x10FFFF and not a surrogate.
inline void Append(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// True iff `s` is well-formed UTF-8 (shortest forms, no surrogates, <= U+10FFFF).
inline bool IsValid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (Decode(s, &i) >= kInvalidByteBase) return false;
  }
  return true;
}

}  // namespace brig::utf8

#endif  // BRIG_NAMES_UTF8_H_
