// AppendJsonString (server/api_json.h): the request log's strings, built without a json
// object. Whatever bytes a client puts in a URL, the line is one valid JSON string that reads
// back as the bytes, with invalid UTF-8 replaced as Dump replaces it.
#include "server/api_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace brig::server {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

std::string ReadBack(std::string_view s) {
  auto j = nlohmann::json::parse(Quoted(s), nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(j.is_string()) << Quoted(s);
  return j.is_string() ? j.get<std::string>() : "";
}

TEST(AppendJsonString, EscapesWhatJsonNeedsAndKeepsTheRest) {
  EXPECT_EQ(Quoted("/v1/sessions/a b/execute"), "\"/v1/sessions/a b/execute\"");
  EXPECT_EQ(Quoted("q\"b\\"), "\"q\\\"b\\\\\"");
  EXPECT_EQ(Quoted(std::string("\n\t\x01\x7f", 4)), "\"\\u000a\\u0009\\u0001\\u007f\"");
  const std::string all_ascii = [] {
    std::string s;
    for (int c = 0; c < 128; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(ReadBack(all_ascii), all_ascii);
  EXPECT_EQ(ReadBack("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(AppendJsonString, ReplacesInvalidUtf8AsDumpDoes) {
  const std::string replacement = "\xef\xbf\xbd";
  for (std::string bad : {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                          std::string("\xf4\x90\x80\x80"), std::string("\xe2\x82"), std::string("\x80")}) {
    std::string read = ReadBack("a" + bad + "b");
    EXPECT_EQ(read.front(), 'a');
    EXPECT_EQ(read.back(), 'b');
    EXPECT_NE(read.find(replacement), std::string::npos) << "not replaced: " << Quoted(bad);
  }
}

}  // namespace
}  // namespace brig::server
