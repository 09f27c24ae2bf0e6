// Base64Encode / Base64Decode: RFC 4648's test vectors, every byte value, and the inputs a
// strict decoder must refuse (the decoded text comes back from the guest: untrusted).
#include <gtest/gtest.h>

#include "util/base64.h"

namespace brig {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded) << plain;
    EXPECT_EQ(Base64Decode(encoded), std::optional<std::string>(plain)) << encoded;
  }
}

TEST(Base64Test, EveryByteValueAndLengthRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  EXPECT_EQ(Base64Encode(all).size(), 344u);
  EXPECT_EQ(Base64Decode(Base64Encode(all)), std::optional<std::string>(all));
  // Each length mod 3 (no padding, "==", "="), and the alphabet's two last characters.
  for (size_t n = 0; n <= 10; ++n) {
    const std::string s = all.substr(256 - n);
    EXPECT_EQ(Base64Decode(Base64Encode(s)), std::optional<std::string>(s)) << n;
  }
  EXPECT_EQ(Base64Encode("\xfb\xff"), "+/8=");
  EXPECT_EQ(Base64Encode(std::string("\0\0\0", 3)), "AAAA");
  EXPECT_EQ(Base64Decode("AAAA"), std::optional<std::string>(std::string("\0\0\0", 3)));
}

TEST(Base64Test, RefusesAnythingButCanonicalBase64) {
  for (const char* bad : {
           "Zg",        // truncated: not a multiple of 4
           "Zm9",       // likewise
           "Zm9vY",     // likewise
           "Zg=",       // padding cut short
           "Z===",      // too much padding
           "====",      // padding only
           "Zg==Zg==",  // padding in the middle
           "Z=g=",      // likewise
           "Zm9v\n",    // white space is not skipped
           "Zm 9",      // likewise
           "Zm9-",      // the URL-safe alphabet is another encoding
           "Zm9_",      // likewise
           "Zm*v",      // not in the alphabet
           "Zh==",      // unused bits set: "Zg==" is the one encoding of "f"
           "Zm9=",      // likewise for "fo" ("Zm8=")
       }) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(Base64Decode(std::string("Zm9\0", 4)), std::nullopt);  // a NUL byte
  EXPECT_EQ(Base64Decode("Zm\xc3\xa9"), std::nullopt);              // non-ASCII bytes
}

}  // namespace
}  // namespace brig
