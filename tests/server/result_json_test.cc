// brig/result_json.h: the JSON of an execution (what `brig exec --json` prints; the e2e tests
// check the CLI's) and reading it back, checked field by field.
#include "brig/result_json.h"

#include <gtest/gtest.h>

#include <string>

namespace brig {
namespace {

using json = nlohmann::json;

SessionResult Full() {
  SessionResult s;
  ExecutionResult& r = s.execution;
  r.ok = false;
  r.stdout_text = std::string("out \xff\xfe bytes\n", 12);  // not UTF-8: kept as bytes
  r.stderr_text = "err";
  r.stdout_truncated = true;
  r.result = "'v'";
  r.error = PythonError{"ValueError", "bad", "Traceback ..."};
  r.exit_code = -7;
  r.failure = Failure::kTimeout;
  r.failure_message = "the execution exceeded the 1 s timeout";
  r.duration_ms = 12.345678901234;
  s.version = 42;
  s.restored_from = "pages";
  s.snapshot = "portable";
  s.pages_unavailable = "cold start";
  s.not_portable = {{"gen", "generator"}};
  s.not_restored = {{"/odd", "name"}};
  s.files_saved = {"/home/user/a", "/tmp/b"};
  s.files_deleted = {"/home/user/c"};
  s.saved = true;
  return s;
}

void ExpectSame(const SessionResult& a, const SessionResult& b) {
  const ExecutionResult& x = a.execution;
  const ExecutionResult& y = b.execution;
  EXPECT_EQ(x.ok, y.ok);
  EXPECT_EQ(x.stdout_text, y.stdout_text);
  EXPECT_EQ(x.stderr_text, y.stderr_text);
  EXPECT_EQ(x.stdout_truncated, y.stdout_truncated);
  EXPECT_EQ(x.stderr_truncated, y.stderr_truncated);
  EXPECT_EQ(x.result, y.result);
  ASSERT_EQ(x.error.has_value(), y.error.has_value());
  if (x.error) {
    EXPECT_EQ(x.error->type, y.error->type);
    EXPECT_EQ(x.error->message, y.error->message);
    EXPECT_EQ(x.error->traceback, y.error->traceback);
  }
  EXPECT_EQ(x.exit_code, y.exit_code);
  EXPECT_EQ(x.failure, y.failure);
  EXPECT_EQ(x.failure_message, y.failure_message);
  EXPECT_EQ(x.duration_ms, y.duration_ms);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.restored_from, b.restored_from);
  EXPECT_EQ(a.snapshot, b.snapshot);
  EXPECT_EQ(a.pages_unavailable, b.pages_unavailable);
  EXPECT_EQ(a.not_portable, b.not_portable);
  EXPECT_EQ(a.not_restored, b.not_restored);
  EXPECT_EQ(a.files_saved, b.files_saved);
  EXPECT_EQ(a.files_deleted, b.files_deleted);
  EXPECT_EQ(a.saved, b.saved);
}

TEST(ResultJson, TheShapeBrigExecPrints) {
  SessionResult s;
  s.execution.ok = true;
  s.execution.stdout_text = "hi\n";
  s.execution.result = "2";
  s.execution.duration_ms = 0.5;
  s.version = 3;
  s.restored_from = "live";
  s.snapshot = "pages";
  s.saved = true;
  s.files_saved = {"/home/user/f"};
  EXPECT_EQ(ToJson("t-1", s).dump(),
            R"({"display":[],"display_note":null,"duration_ms":0.5,"error":null,"exit_code":null,"failure":null,)"
            R"("ok":true,"result":"2","session":{"files":[],"files_deleted":[],"files_saved":["/home/user/f"],"not_portable":{},"not_restored":{},)"
            R"("restored_from":"live","saved":true,"snapshot":"pages","thread_id":"t-1","version":3},)"
            R"("stderr":"","stderr_truncated":false,"stdout":"hi\n","stdout_truncated":false})");
  EXPECT_FALSE(ToJson(s.execution).contains("session"));
  s.execution.failure = Failure::kTrap;
  s.execution.failure_message = "boom";
  EXPECT_EQ(ToJson(s.execution)["failure"], json({{"kind", "trap"}, {"message", "boom"}}));
}

TEST(ResultJson, RoundTrips) {
  for (const SessionResult& s : {Full(), SessionResult{}}) {
    std::string id;
    auto back = SessionResultFromJson(ToJson("thread-9", s), &id);
    ASSERT_TRUE(back.ok()) << back.status().message();
    ExpectSame(s, back.value());
    EXPECT_EQ(id, "thread-9");
  }
  // Through text too (replacing what is not UTF-8, as the server dumps it).
  SessionResult utf8 = Full();
  utf8.execution.stdout_text = "héllo";
  std::string text = ToJson("t", utf8).dump(-1, ' ', false, json::error_handler_t::replace);
  auto back = SessionResultFromJson(json::parse(text));
  ASSERT_TRUE(back.ok()) << back.status().message();
  ExpectSame(utf8, back.value());
  for (Failure f : {Failure::kNone, Failure::kTrap, Failure::kExit, Failure::kTimeout, Failure::kGuestError}) {
    SessionResult one;
    one.execution.failure = f;
    auto again = SessionResultFromJson(ToJson("t", one));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().execution.failure, f);
  }
}

// Every field missing, or of a wrong type, is refused with its name.
TEST(ResultJson, MalformedIsRefusedNamingTheField) {
  const json good = ToJson("t", Full());
  auto refused = [](const json& j, const std::string& field) {
    auto r = SessionResultFromJson(j);
    EXPECT_TRUE(r.status().IsInvalidArgument()) << j.dump();
    EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
  };
  for (const auto& [key, value] : good.items()) {
    json missing = good;
    missing.erase(key);
    refused(missing, key);
    json wrong = good;
    wrong[key] = json::array({1});
    refused(wrong, key);
  }
  for (const auto& [key, value] : good["session"].items()) {
    json missing = good;
    missing["session"].erase(key);
    if (key != "pages_unavailable") refused(missing, "session." + key);
    json wrong = good;
    wrong["session"][key] = 1.5;
    refused(wrong, "session." + key);
  }
  for (const char* key : {"type", "message", "traceback"}) {
    json wrong = good;
    wrong["error"][key] = nullptr;
    refused(wrong, std::string("error.") + key);
  }
  json j = good;
  j["failure"]["kind"] = "none";  // failure is null then, never "none"
  refused(j, "failure.kind");
  j = good;
  j["failure"]["kind"] = "meltdown";
  refused(j, "failure.kind");
  j = good;
  j["exit_code"] = int64_t{1} << 40;
  refused(j, "exit_code");
  j = good;
  j["duration_ms"] = -1;
  refused(j, "duration_ms");
  j = good;
  j["session"]["version"] = UINT64_MAX;
  refused(j, "session.version");
  j = good;
  j["session"]["files_saved"] = json::array({"a", 2});
  refused(j, "session.files_saved");
  j = good;
  j["session"]["not_portable"] = json{{"a", json::array()}};
  refused(j, "session.not_portable");
  refused(json::array(), "the result");
  refused(json("text"), "the result");
  refused(json(nullptr), "the result");
}

}  // namespace
}  // namespace brig
