// ToJsonText (brig/result_json.h) against what it stands for, ToJson(...).dump(-1, ' ',
// false, replace): byte for byte, for results of every shape and for strings of random bytes
// (invalid UTF-8 of every kind, controls, quotes), which the guest can put in any of them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "brig/result_json.h"

namespace brig {
namespace {

std::string Dumped(std::string_view thread_id, const SessionResult& r) {
  return ToJson(thread_id, r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void ExpectSame(std::string_view thread_id, const SessionResult& r) {
  EXPECT_EQ(ToJsonText(thread_id, r), Dumped(thread_id, r));
}

SessionResult Everything() {
  SessionResult s;
  ExecutionResult& r = s.execution;
  r.ok = false;
  r.stdout_text = "out\n\"quoted\" \\ tab\t";
  r.stderr_text = "err\x01\x1f\x7f";
  r.stdout_truncated = true;
  r.result = "42";
  r.error = PythonError{"ValueError", "bad \"value\"", "Traceback (most recent call last):\n  ..."};
  r.exit_code = -3;
  r.failure = Failure::kTimeout;
  r.failure_message = "ran past 30 s";
  r.duration_ms = 12.5;
  DisplayOutput d;
  d.data["text/plain"] = "<Figure>";
  d.data["image/png"] = std::string("\x89PNG\r\n\x1a\n\0\0", 10);
  d.data["text/html"] = "<b>é</b>";
  r.display.push_back(d);
  r.display.push_back(DisplayOutput{});
  r.display_note = "1 output dropped";
  s.version = 9007199254740993;
  s.restored_from = "pages";
  s.snapshot = "portable";
  s.pages_unavailable = "no image";
  s.not_portable = {{"f", "a function"}, {"g\xff", "bad"}};
  s.not_restored = {{"/x", "too big"}};
  s.files_saved = {"/home/user/a.txt", "/tmp/"};
  s.files_deleted = {"/home/user/b"};
  s.files_changed = {FileInfo{"/home/user/a.txt", "text/plain", 5, 0, 0}};
  s.saved = true;
  return s;
}

TEST(ToJsonText, MatchesTheDumpForEveryField) {
  ExpectSame("t1", SessionResult{});
  ExpectSame("t\xc3\xa9\"\\", Everything());
  for (Failure f : {Failure::kNone, Failure::kTrap, Failure::kExit, Failure::kTimeout, Failure::kGuestError}) {
    SessionResult s = Everything();
    s.execution.failure = f;
    s.execution.error.reset();
    s.execution.result.reset();
    s.execution.exit_code.reset();
    s.execution.display_note.clear();
    s.pages_unavailable.clear();
    ExpectSame("t", s);
  }
}

TEST(ToJsonText, MatchesTheDumpForNumbers) {
  for (double d : {0.0, -0.0, 1.0, 0.1, 2.09225, 1e-7, 123456789.125, 1e300, 5e-324,
                   std::numeric_limits<double>::max(), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    SessionResult s;
    s.execution.duration_ms = d;
    ExpectSame("t", s);
  }
  for (int64_t v : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    SessionResult s;
    s.version = v;
    s.files_changed = {FileInfo{"/p", "x/y", v, 0, 0}};
    s.execution.exit_code = static_cast<int>(v);
    ExpectSame("t", s);
  }
}

// Strings built from pieces that exercise the UTF-8 decoder: every lead byte, continuation
// bytes, sequences cut short at every point, overlong forms, surrogates, past U+10FFFF.
std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {
      "a", "\"", "\\", "\n", "\b", "\f", "\r", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac",
      "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xf0\x9f", "\x80", "\xbf", "\xc0\xaf", "\xc1\xbf",
      "\xe0\x80\x80", "\xe0\x9f\xbf", "\xe0\xa0\x80", "\xed\xa0\x80", "\xed\x9f\xbf", "\xf0\x8f\xbf\xbf",
      "\xf4\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf5\x80\x80\x80", "\xff", "\xfe", std::string(1, '\0')};
  std::string s;
  const int n = std::uniform_int_distribution<int>(0, 12)(rng);
  for (int i = 0; i < n; i++) {
    if (rng() % 4 == 0) {
      s.push_back(static_cast<char>(rng() & 0xff));  // any byte at all
    } else {
      s += pieces[rng() % pieces.size()];
    }
  }
  return s;
}

TEST(ToJsonText, MatchesTheDumpForRandomBytesInEveryString) {
  std::mt19937 rng(20261205);
  for (int round = 0; round < 20000; round++) {
    SessionResult s;
    ExecutionResult& r = s.execution;
    r.stdout_text = RandomText(rng);
    r.stderr_text = RandomText(rng);
    if (rng() % 2) r.result = RandomText(rng);
    if (rng() % 3 == 0) r.error = PythonError{RandomText(rng), RandomText(rng), RandomText(rng)};
    if (rng() % 3 == 0) {
      r.failure = Failure::kTrap;
      r.failure_message = RandomText(rng);
    }
    if (rng() % 4 == 0) {
      DisplayOutput d;
      d.data["text/plain"] = RandomText(rng);
      d.data["image/png"] = RandomText(rng);
      r.display.push_back(d);
    }
    if (rng() % 4 == 0) r.display_note = RandomText(rng);
    s.restored_from = RandomText(rng);
    s.snapshot = RandomText(rng);
    if (rng() % 4 == 0) s.pages_unavailable = RandomText(rng);
    if (rng() % 3 == 0) s.not_portable[RandomText(rng)] = RandomText(rng);
    if (rng() % 3 == 0) s.not_restored[RandomText(rng)] = RandomText(rng);
    if (rng() % 3 == 0) s.files_saved.push_back(RandomText(rng));
    if (rng() % 3 == 0) s.files_deleted.push_back(RandomText(rng));
    if (rng() % 3 == 0) s.files_changed.push_back(FileInfo{RandomText(rng), RandomText(rng), 1, 0, 0});
    const std::string thread_id = RandomText(rng);
    const std::string text = ToJsonText(thread_id, s);
    ASSERT_EQ(text, Dumped(thread_id, s)) << "round " << round;
  }
}

}  // namespace
}  // namespace brig
