// Rich outputs: brig.show() in the guest (guest/stdlib/brig.py) through the runner's channel
// to ExecutionResult::display, and the host's checks of what crosses (sandbox/display.h),
// against a guest that sends anything it likes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "brig/result_json.h"
#include "brig/sandbox.h"
#include "brig/text.h"
#include "sandbox/display.h"
#include "test_sandbox.h"

namespace brig {
namespace {

using nlohmann::json;

const std::string kPng("\x89PNG\r\n\x1a\n" "rest", 12);

ExecutionResult Read(const json& outcome) {
  ExecutionResult r;
  sandbox::ReadGuestDisplay(outcome, &r);
  return r;
}

TEST(ReadGuestDisplay, KeepsWellFormedBundlesInOrder) {
  auto r = Read({{"display", {{{"image/png", Base64Encode(kPng)}, {"text/plain", "<Figure>"}},
                              {{"text/html", "<b>x</b>"}},
                              {{"application/json", "{\"a\": [1, 2]}"}}}}});
  ASSERT_EQ(r.display.size(), 3u);
  EXPECT_EQ(r.display[0].data.at("image/png"), kPng);  // decoded bytes
  EXPECT_EQ(r.display[0].data.at("text/plain"), "<Figure>");
  EXPECT_EQ(r.display[1].data.at("text/html"), "<b>x</b>");
  EXPECT_EQ(r.display[2].data.at("application/json"), "{\"a\": [1, 2]}");
  EXPECT_EQ(r.display_note, "");
}

TEST(ReadGuestDisplay, DropsWhatIsNotAllowedAndSaysSo) {
  const json bad[] = {
      {{"application/x-evil", "x"}},                          // not on the allowlist
      {{"text/html", 42}},                                    // not a string
      {{"image/png", "not base64!"}},                         // bad base64
      {{"image/png", Base64Encode("GIF89a...")}},             // not what it claims
      {{"image/png", Base64Encode(kPng) + "\n"}},             // base64 with junk
      {{"application/json", "{not json"}},                    // JSON that is not
      {{"application/json", std::string(200, '[') + "1" + std::string(200, ']')}},  // too deep
      json::object(),                                         // an empty bundle
      "a string",                                             // not a bundle
  };
  for (const json& b : bad) {
    auto r = Read({{"display", json::array({b})}});
    EXPECT_TRUE(r.display.empty()) << b.dump();
    EXPECT_NE(r.display_note.find("1 display output dropped"), std::string::npos) << b.dump() << ": " << r.display_note;
  }
  auto r = Read({{"display", "not a list"}});
  EXPECT_TRUE(r.display.empty());
  EXPECT_FALSE(r.display_note.empty());
  // A bad entry drops its whole bundle, not the good ones around it.
  r = Read({{"display", {{{"text/plain", "a"}}, {{"text/plain", "b"}, {"bogus/type", "c"}}, {{"text/plain", "d"}}}}});
  ASSERT_EQ(r.display.size(), 2u);
  EXPECT_EQ(r.display[1].data.at("text/plain"), "d");
}

TEST(ReadGuestDisplay, BoundsCountAndSizeWhateverTheGuestClaims) {
  json many = json::array();
  for (int i = 0; i < 1000; ++i) many.push_back({{"text/plain", std::to_string(i)}});
  auto r = Read({{"display", many}, {"display_dropped", 0}});
  EXPECT_EQ(r.display.size(), kMaxDisplayOutputs);
  EXPECT_NE(r.display_note.find(std::to_string(1000 - kMaxDisplayOutputs) + " display outputs dropped"), std::string::npos)
      << r.display_note;

  const std::string big(kMaxDisplayBytes / 3 + 1, 'x');
  r = Read({{"display", {{{"text/plain", big}}, {{"text/plain", big}}, {{"text/plain", big}}, {{"text/plain", "small"}}}}});
  ASSERT_EQ(r.display.size(), 3u);  // the third big one is past 16 MiB; the small one fits
  EXPECT_EQ(r.display[2].data.at("text/plain"), "small");
  EXPECT_NE(r.display_note.find("MiB"), std::string::npos) << r.display_note;

  // The guest's own count of what it dropped is believed only as a (bounded) count.
  r = Read({{"display_dropped", -5}});
  EXPECT_EQ(r.display_note, "");
  r = Read({{"display_dropped", 1e300}});
  EXPECT_EQ(r.display_note, "");
  r = Read({{"display_dropped", uint64_t{1} << 60}});
  EXPECT_NE(r.display_note.find("2147483648 display outputs dropped"), std::string::npos) << r.display_note;
}

TEST(ResultJson, DisplayAndFilesRoundTrip) {
  SessionResult s;
  s.execution.ok = true;
  s.execution.display.push_back({{{"image/png", kPng}, {"text/plain", "p"}}});
  s.execution.display_note = "brig: 1 display output dropped: x";
  s.files_changed.push_back({"/home/user/a.csv", "text/csv", 3});
  json j = ToJson("t", s);
  EXPECT_EQ(j["display"][0]["image/png"], Base64Encode(kPng));
  EXPECT_EQ(j["session"]["files"][0]["content_type"], "text/csv");
  auto back = SessionResultFromJson(j);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back.value().execution.display.size(), 1u);
  EXPECT_EQ(back.value().execution.display[0].data.at("image/png"), kPng);
  EXPECT_EQ(back.value().execution.display_note, s.execution.display_note);
  ASSERT_EQ(back.value().files_changed.size(), 1u);
  EXPECT_EQ(back.value().files_changed[0].size, 3);
  // What comes from another process is checked the same way.
  j["display"][0]["image/png"] = "!!";
  back = SessionResultFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back.value().execution.display.empty());
}

// ---- The real guest.

TEST(Show, AttachesImagesHtmlJsonAndReprObjects) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute(
      "import brig\n"
      "png = b'\\x89PNG\\r\\n\\x1a\\n' + bytes(100)\n"
      "brig.show(png)\n"
      "brig.show('<b>hi</b>', mime='text/html')\n"
      "brig.show({'a': [1, 2]})\n"
      "brig.show('<svg xmlns=\"http://www.w3.org/2000/svg\"/>'.encode())\n"
      "class Chart:\n"
      "    def _repr_svg_(self): return '<svg/>'\n"
      "    def _repr_html_(self): return '<i>chart</i>'\n"
      "brig.show(Chart())\n"
      "brig.display(b'\\xff\\xd8\\xff\\xe0rest')\n"
      "print('done')\n");
  ASSERT_TRUE(r.ok) << r.stderr_text << r.failure_message;
  EXPECT_EQ(r.display_note, "");
  ASSERT_EQ(r.display.size(), 6u);
  EXPECT_EQ(r.display[0].data.at("image/png").size(), 108u);
  EXPECT_EQ(r.display[1].data.at("text/html"), "<b>hi</b>");
  EXPECT_EQ(json::parse(r.display[2].data.at("application/json")), json({{"a", {1, 2}}}));
  EXPECT_TRUE(r.display[3].data.count("image/svg+xml"));
  EXPECT_EQ(r.display[4].data.at("image/svg+xml"), "<svg/>");
  EXPECT_EQ(r.display[4].data.at("text/html"), "<i>chart</i>");
  EXPECT_TRUE(r.display[4].data.count("text/plain"));
  EXPECT_TRUE(r.display[5].data.count("image/jpeg"));
  // Nothing carries over to the next execution.
  r = s->Execute("import brig\n1");
  EXPECT_TRUE(r.display.empty());
}

TEST(Show, RefusesWhatItCannotShowInPython) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute("import brig\nbrig.show(b'plain bytes')");
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "ValueError");
  r = s->Execute("import brig\nbrig.show('x', mime='application/x-evil')");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->type, "ValueError");
  EXPECT_TRUE(r.display.empty());
}

TEST(Show, TextThatIsNotUtf8IsEscapedNotAProtocolError) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute("import brig\nbrig.show('a\\udc80b', mime='text/plain')");
  EXPECT_EQ(r.failure, Failure::kNone) << r.failure_message;
  ASSERT_EQ(r.display.size(), 1u);
  EXPECT_EQ(r.display[0].data.at("text/plain"), "a\\udc80b");
}

TEST(Show, ShownBeforeAnExceptionStillComesBack) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute("import brig\nbrig.show('<p>x</p>', mime='text/html')\n1/0");
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.display.size(), 1u);
}

TEST(Show, LimitsAreAppliedInTheGuestWithANote) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute("import brig\nfor i in range(100): brig.show(str(i), mime='text/plain')");
  ASSERT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.display.size(), kMaxDisplayOutputs);
  EXPECT_NE(r.display_note.find("68 display outputs dropped"), std::string::npos) << r.display_note;
  r = s->Execute("import brig\nfor i in range(3): brig.show('x' * (7 << 20), mime='text/plain')");
  ASSERT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.display.size(), 2u);
  EXPECT_NE(r.display_note.find("1 display output dropped"), std::string::npos) << r.display_note;
}

// The user's code owns the guest: it may rewrite brig's module and the runner's channel.
// Whatever it sends is checked on the host; the execution itself is not broken by it.
TEST(Show, AGuestThatTampersWithTheChannelGetsOnlyCheckedOutputs) {
  auto s = testing::New();
  ASSERT_TRUE(s);
  ExecutionResult r = s->Execute(
      "import brig\n"
      "brig._pending.append({'application/x-evil': 'x'})\n"
      "brig._pending.append({'image/png': '@@not base64@@'})\n"
      "brig._pending.append({'text/html': '<b>ok</b>', 3: 'x'})\n"
      "brig._pending.extend([{'text/plain': 'y'}] * 1000)\n"
      "brig._dropped = 10**30\n");
  ASSERT_TRUE(r.ok) << r.stderr_text << r.failure_message;
  EXPECT_EQ(r.failure, Failure::kNone);
  ASSERT_EQ(r.display.size(), kMaxDisplayOutputs);
  EXPECT_EQ(r.display[0].data.at("text/html"), "<b>ok</b>");
  EXPECT_FALSE(r.display_note.empty());

  r = s->Execute("import brig\nbrig._pending = 'not a list'\nbrig.show");
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_TRUE(r.display.empty());
  r = s->Execute("import sys\nsys.modules['brig'] = 42\n1");
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.failure, Failure::kNone);
  // The runner's own collector replaced: its answer is checked like any other.
  r = s->Execute(
      "import brig, _brig_runner\n"
      "_brig_runner._take_display = lambda: ([{'image/gif': 'R0lGODlh'}, {'text/plain': 'z' * 10},\n"
      "                                       {'image/png': 'AAAA'}], -3)\n");
  ASSERT_TRUE(r.ok) << r.stderr_text;
  r = s->Execute("1");
  EXPECT_EQ(r.failure, Failure::kNone) << r.failure_message;
  ASSERT_EQ(r.display.size(), 2u);  // "R0lGODlh" is base64 of "GIF89a": a GIF by its magic
  EXPECT_EQ(r.display[0].data.at("image/gif"), "GIF89a");
  EXPECT_NE(r.display_note.find("1 display output dropped: image/png data is not a png image"), std::string::npos)
      << r.display_note;
}

}  // namespace
}  // namespace brig
