#include "util/base64.h"

#include <array>
#include <cstdint>

namespace brig {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr uint8_t kNotBase64 = 0xFF;

// The 6-bit value of each byte, kNotBase64 for bytes outside the alphabet ('=' included).
constexpr std::array<uint8_t, 256> kValues = [] {
  std::array<uint8_t, 256> v{};
  v.fill(kNotBase64);
  for (uint8_t i = 0; i < 64; ++i) v[static_cast<unsigned char>(kAlphabet[i])] = i;
  return v;
}();

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [&](size_t i) -> uint32_t { return i < bytes.size() ? static_cast<unsigned char>(bytes[i]) : 0; };
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t group = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    const size_t present = bytes.size() - i;  // 1, 2, or 3 and more
    out += kAlphabet[group >> 18 & 63];
    out += kAlphabet[group >> 12 & 63];
    out += present > 1 ? kAlphabet[group >> 6 & 63] : '=';
    out += present > 2 ? kAlphabet[group & 63] : '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t chars = last ? 4 - pad : 4;  // the alphabet characters of this group
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      uint8_t v = 0;
      if (k < chars) {
        v = kValues[static_cast<unsigned char>(text[i + k])];
        if (v == kNotBase64) return std::nullopt;
      }
      group = group << 6 | v;
    }
    // Padding leaves the low 2 (one '=') or 4 ('==') bits of the last character unused.
    if (last && pad > 0 && (group & (pad == 1 ? 0xFFu : 0xFFFFu)) != 0) return std::nullopt;
    out += static_cast<char>(group >> 16);
    if (chars > 2) out += static_cast<char>(group >> 8 & 0xFF);
    if (chars > 3) out += static_cast<char>(group & 0xFF);
  }
  return out;
}

}  // namespace brig
