// The supervisor -> worker execute body (server/worker_protocol.h): every flag byte either
// decodes to a request that encodes back to the same bytes, or is refused; a sync request
// (flush a session's deferred save to the store) never carries code or execution options.
#include "server/worker_protocol.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "brig/result_json.h"
#include "util/little_endian.h"

namespace brig::server::worker {
namespace {

// A body laid out by hand: flags | f64 timeout | u64 memory | u32 id length | id | code.
std::string Body(uint8_t flags, std::string_view id, std::string_view code, double timeout = 1.5,
                 uint64_t memory = 64 << 20) {
  std::string out(1, static_cast<char>(flags));
  uint64_t bits;
  std::memcpy(&bits, &timeout, sizeof bits);
  AppendLe64(&out, bits);
  AppendLe64(&out, memory);
  AppendLe32(&out, static_cast<uint32_t>(id.size()));
  out += id;
  out += code;
  return out;
}

constexpr uint8_t kTimeout = 1, kMemory = 2, kStream = 4, kDeferred = 8, kSync = 16, kSyncDrop = 32;

TEST(WorkerProtocol, EveryFlagByteRoundTripsOrIsRefused) {
  int accepted = 0;
  for (int flags = 0; flags < 256; ++flags) {
    const bool sync = flags & kSync;
    // With and without code: a sync is valid only without.
    for (std::string_view code : {std::string_view(), std::string_view("x = 1")}) {
      const std::string body = Body(static_cast<uint8_t>(flags), "t1", code);
      auto e = DecodeExecute(body);
      const bool unknown_bits = flags & ~(kTimeout | kMemory | kStream | kDeferred | kSync | kSyncDrop);
      const bool drop_without_sync = (flags & kSyncDrop) && !sync;
      const bool sync_with_more = sync && (!code.empty() || (flags & (kTimeout | kMemory | kStream | kDeferred)));
      const bool valid = !unknown_bits && !drop_without_sync && !sync_with_more;
      ASSERT_EQ(e.has_value(), valid) << "flags " << flags << " code '" << code << "'";
      if (!e) continue;
      ++accepted;
      EXPECT_EQ(e->thread_id, "t1");
      EXPECT_EQ(e->code, code);
      EXPECT_EQ(e->sync, sync);
      EXPECT_EQ(e->sync_drop, static_cast<bool>(flags & kSyncDrop));
      EXPECT_EQ(e->deferred_save, static_cast<bool>(flags & kDeferred));
      EXPECT_EQ(e->stream, static_cast<bool>(flags & kStream));
      EXPECT_EQ(e->timeout_seconds.has_value(), static_cast<bool>(flags & kTimeout));
      EXPECT_EQ(e->memory_bytes.has_value(), static_cast<bool>(flags & kMemory));
      // Encoding what was decoded gives the same request back (fields not flagged are zero
      // on the wire, so compare decoded forms, not bytes).
      auto again = DecodeExecute(EncodeExecute(*e));
      ASSERT_TRUE(again.has_value());
      EXPECT_EQ(again->thread_id, e->thread_id);
      EXPECT_EQ(again->code, e->code);
      EXPECT_EQ(again->sync, e->sync);
      EXPECT_EQ(again->sync_drop, e->sync_drop);
      EXPECT_EQ(again->timeout_seconds, e->timeout_seconds);
      EXPECT_EQ(again->memory_bytes, e->memory_bytes);
    }
  }
  // 16 execution flag sets with and without code, 2 syncs (keep, drop) without code.
  EXPECT_EQ(accepted, 16 * 2 + 2);
}

TEST(WorkerProtocol, TruncatedOrOversizedBodiesAreRefused) {
  const std::string good = Body(kSync, "t1", "");
  ASSERT_TRUE(DecodeExecute(good).has_value());
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeExecute(good.substr(0, cut)).has_value()) << cut;
  }
  // An id length past the body, and past the id limit.
  std::string lying = good;
  lying[17] = 100;
  EXPECT_FALSE(DecodeExecute(lying).has_value());
  EXPECT_FALSE(DecodeExecute(Body(0, std::string(100000, 'a'), "x")).has_value());
  // A timeout that is not a finite number.
  EXPECT_FALSE(DecodeExecute(Body(kTimeout, "t1", "x", std::numeric_limits<double>::infinity())).has_value());
  EXPECT_FALSE(DecodeExecute(Body(kTimeout, "t1", "x", std::numeric_limits<double>::quiet_NaN())).has_value());
}

// What the supervisor reads of a result it passes on as text (SummarizeResult): the session
// and the outcome, from a whole valid object only; anything else is a broken worker.
// A stream read in pieces, cut at every byte: the frames come out whole and in order, and no
// cut makes the reader see a broken stream. (A cut right after a frame's length once read the
// type byte past the end and killed a healthy worker.)
TEST(WorkerProtocol, FramesCutAtEveryByteReadBackWhole) {
  std::string stream;
  AppendFrame(&stream, FrameType::kResult, 7, EncodeResult({3, 0}, "{\"a\":1}"));
  AppendFrame(&stream, FrameType::kSave, 8, std::string(300, 's'));
  AppendFrame(&stream, FrameType::kHeartbeat, 0, "");
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    for (size_t second = cut; second <= stream.size(); second += 7) {
      FrameReader reader;
      std::vector<Frame> frames;
      std::string error;
      auto drain = [&] {
        while (auto f = reader.Next(&error)) frames.push_back(std::move(*f));
        ASSERT_TRUE(error.empty()) << "cut at " << cut << "/" << second << ": " << error;
      };
      reader.Append(stream.data(), cut);
      drain();
      reader.Append(stream.data() + cut, second - cut);
      drain();
      reader.Append(stream.data() + second, stream.size() - second);
      drain();
      ASSERT_EQ(frames.size(), 3u) << "cut at " << cut << "/" << second;
      EXPECT_EQ(frames[0].id, 7u);
      EXPECT_EQ(frames[1].type, FrameType::kSave);
      EXPECT_EQ(frames[1].body, std::string(300, 's'));
      EXPECT_EQ(frames[2].type, FrameType::kHeartbeat);
      EXPECT_EQ(reader.pending(), 0u);
    }
  }
}

// The config says whether the worker hands its saves to the supervisor; a config without
// the field (an older supervisor) means it does not, one with a non-boolean is refused.
TEST(WorkerProtocol, TheConfigCarriesTheSaveRelay) {
  Sessions::Options options;
  options.store_url = "sqlite:/tmp/x.db";
  for (bool relay : {true, false}) {
    Sessions::Options back;
    int threads = 0;
    bool relay_back = !relay;
    Status s = DecodeConfig(EncodeConfig(options, 3, std::chrono::microseconds(5), relay), &back, &threads, nullptr,
                            &relay_back);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(relay_back, relay);
    EXPECT_EQ(threads, 3);
    EXPECT_EQ(back.store_url, options.store_url);
  }
  nlohmann::json j = nlohmann::json::parse(EncodeConfig(options, 1, {}, true));
  j.erase("relay_saves");
  Sessions::Options back;
  int threads = 0;
  bool relay = true;
  ASSERT_TRUE(DecodeConfig(j.dump(), &back, &threads, nullptr, &relay).ok());
  EXPECT_FALSE(relay);
  j["relay_saves"] = "yes";
  EXPECT_TRUE(DecodeConfig(j.dump(), &back, &threads, nullptr, &relay).IsInvalidArgument());
}

// The live sessions' byte bound reaches the workers; a config without it (an older
// supervisor) means none, one with a negative or non-integer value is refused.
TEST(WorkerProtocol, TheConfigCarriesTheLiveSessionsByteBound) {
  Sessions::Options options;
  options.store_url = "sqlite:/tmp/x.db";
  options.max_live = 7;
  options.max_live_bytes = uint64_t{3} << 30;
  Sessions::Options back;
  int threads = 0;
  ASSERT_TRUE(DecodeConfig(EncodeConfig(options, 1, {}, false), &back, &threads, nullptr, nullptr).ok());
  EXPECT_EQ(back.max_live, 7u);
  EXPECT_EQ(back.max_live_bytes, uint64_t{3} << 30);
  nlohmann::json j = nlohmann::json::parse(EncodeConfig(options, 1, {}, false));
  j["sessions"].erase("max_live_bytes");
  ASSERT_TRUE(DecodeConfig(j.dump(), &back, &threads, nullptr, nullptr).ok());
  EXPECT_EQ(back.max_live_bytes, 0u);
  for (nlohmann::json bad : {nlohmann::json(-1), nlohmann::json("1G"), nlohmann::json(1.5)}) {
    j["sessions"]["max_live_bytes"] = bad;
    EXPECT_TRUE(DecodeConfig(j.dump(), &back, &threads, nullptr, nullptr).IsInvalidArgument()) << bad.dump();
  }
}

TEST(WorkerProtocol, TheConfigCarriesTheExecutionThreadsNiceValue) {
  Sessions::Options options;
  options.store_url = "sqlite:/tmp/x.db";
  Sessions::Options back;
  int threads = 0, nice = -1;
  ASSERT_TRUE(DecodeConfig(EncodeConfig(options, 1, {}, false, 6), &back, &threads, nullptr, nullptr, &nice).ok());
  EXPECT_EQ(nice, 6);
  nlohmann::json j = nlohmann::json::parse(EncodeConfig(options, 1, {}, false, 6));
  j.erase("execution_nice");
  ASSERT_TRUE(DecodeConfig(j.dump(), &back, &threads, nullptr, nullptr, &nice).ok());
  EXPECT_EQ(nice, 0);
  for (nlohmann::json bad : {nlohmann::json(-1), nlohmann::json(20), nlohmann::json(-20), nlohmann::json("6"),
                             nlohmann::json(2.5)}) {
    j["execution_nice"] = bad;
    Status st = DecodeConfig(j.dump(), &back, &threads, nullptr, nullptr, &nice);
    EXPECT_TRUE(st.IsInvalidArgument()) << bad.dump();
    EXPECT_NE(st.message().find("execution_nice"), std::string::npos) << st.message();
  }
}

// Answers carry the worker's live sessions and its stale live runs (for /metrics); a body too
// short to hold both is no answer.
TEST(WorkerProtocol, RepliesCarryTheWorkersCounts) {
  auto r = DecodeReply(FrameType::kResult, EncodeResult({5, 9}, "{}"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->live_sessions, 5u);
  EXPECT_EQ(r->stale_runs, 9u);
  EXPECT_EQ(r->rest, "{}");
  auto e = DecodeReply(FrameType::kError, EncodeError({1, 2}, Status::Conflict("stale")));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->live_sessions, 1u);
  EXPECT_EQ(e->stale_runs, 2u);
  EXPECT_EQ(e->rest, "stale");
  const std::string whole = EncodeResult({5, 9}, "");
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(DecodeReply(FrameType::kResult, whole.substr(0, n))) << n;
  }
  EXPECT_FALSE(DecodeReply(FrameType::kError, whole)) << "an error needs its code byte";
}

TEST(WorkerProtocol, ResultSummaryReadsTheSessionAndTheOutcome) {
  auto summary = [](std::string_view text) { return SummarizeResult(text); };
  auto s = summary(R"({"display":[{"session":"no"}],"failure":null,"ok":true,"session":{"files":[],"thread_id":"t1"}})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->thread_id, "t1");
  EXPECT_EQ(s->outcome, "ok");
  s = summary(R"({"ok":false,"failure":null,"session":{"thread_id":"t\u00e9"}})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->thread_id, "t\xc3\xa9");
  EXPECT_EQ(s->outcome, "python_error");
  s = summary(R"({"ok":false,"failure":{"kind":"timeout","message":"x"},"session":{"thread_id":"t"}})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->outcome, "timeout");
  // A thread_id or kind anywhere else does not count.
  s = summary(R"({"ok":true,"failure":null,"session":{"x":{"thread_id":"deep"},"thread_id":"t"},"thread_id":"top"})");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->thread_id, "t");
  for (std::string_view bad : {
           "", "{", "[]", "null", "\"ok\"", R"({"ok":true,"failure":null,"session":{"thread_id":"t"}} x)",
           R"({"ok":true,"failure":null,"session":{"thread_id":"t"})",                       // cut short
           R"({"failure":null,"session":{"thread_id":"t"}})",                                 // no ok
           R"({"ok":1,"failure":null,"session":{"thread_id":"t"}})",                          // ok not a bool
           R"({"ok":true,"session":{"thread_id":"t"}})",                                      // no failure
           R"({"ok":true,"failure":"x","session":{"thread_id":"t"}})",                        // failure a string
           R"({"ok":true,"failure":{"message":"x"},"session":{"thread_id":"t"}})",            // no kind
           R"({"ok":true,"failure":null,"session":{"thread_id":7}})",                         // id not a string
           R"({"ok":true,"failure":null,"session":["thread_id","t"]})",                       // session an array
           R"({"ok":true,"failure":null})",                                                   // no session
           "{\"ok\":true,\"failure\":null,\"session\":{\"thread_id\":\"\xff\"}}",  // not UTF-8
       }) {
    EXPECT_FALSE(summary(bad)) << bad;
  }
}


// What SummarizeResult must agree with: the same reading done by nlohmann's strict SAX
// parser (which SummarizeResult was until it was hand-written for speed).
class OracleReader {
 public:
  using json = nlohmann::json;
  bool null() { return Scalar(Kind::kNull); }
  bool boolean(bool v) {
    if (depth_ == 1 && keys_[1] == "ok") ok_ = v;
    return Scalar(Kind::kOther);
  }
  bool number_integer(json::number_integer_t) { return Scalar(Kind::kOther); }
  bool number_unsigned(json::number_unsigned_t) { return Scalar(Kind::kOther); }
  bool number_float(json::number_float_t, const json::string_t&) { return Scalar(Kind::kOther); }
  bool binary(json::binary_t&) { return Scalar(Kind::kOther); }
  bool string(json::string_t& v) {
    if (depth_ == 2 && in_object_[2] && keys_[1] == "session" && keys_[2] == "thread_id") thread_id_ = v;
    if (depth_ == 2 && in_object_[2] && keys_[1] == "failure" && keys_[2] == "kind") kind_ = v;
    return Scalar(Kind::kOther);
  }
  bool start_object(std::size_t) { return Open(true); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_object() { return --depth_, true; }
  bool end_array() { return --depth_, true; }
  bool key(json::string_t& k) {
    if (depth_ < 3) keys_[depth_] = k;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  static std::optional<ResultSummary> Read(std::string_view text) {
    OracleReader r;
    if (!json::sax_parse(text.begin(), text.end(), &r, json::input_format_t::json, true)) return std::nullopt;
    if (!r.top_was_object_ || !r.ok_ || !r.thread_id_ || !r.failure_) return std::nullopt;
    ResultSummary s;
    s.thread_id = *r.thread_id_;
    if (*r.failure_ == Kind::kObject) {
      if (!r.kind_) return std::nullopt;
      s.outcome = *r.kind_;
    } else if (*r.failure_ == Kind::kNull) {
      s.outcome = *r.ok_ ? "ok" : "python_error";
    } else {
      return std::nullopt;
    }
    return s;
  }

 private:
  enum class Kind { kNull, kObject, kOther };
  bool Scalar(Kind k) {
    if (depth_ == 0) return false;
    if (depth_ == 1 && keys_[1] == "failure") failure_ = k;
    return true;
  }
  bool Open(bool object) {
    if (depth_ == 0) {
      if (!object) return false;
      top_was_object_ = true;
    } else if (depth_ == 1 && keys_[1] == "failure") {
      failure_ = object ? Kind::kObject : Kind::kOther;
    }
    ++depth_;
    if (depth_ < 3) {
      keys_[depth_].clear();
      in_object_[depth_] = object;
    }
    return true;
  }
  int depth_ = 0;
  std::string keys_[3];
  bool in_object_[3] = {};
  bool top_was_object_ = false;
  std::optional<bool> ok_;
  std::optional<Kind> failure_;
  std::optional<std::string> thread_id_, kind_;
};

void ExpectAgrees(std::string_view text) {
  auto fast = SummarizeResult(text);
  auto oracle = OracleReader::Read(text);
  ASSERT_EQ(fast.has_value(), oracle.has_value()) << text;
  if (fast) {
    EXPECT_EQ(fast->thread_id, oracle->thread_id) << text;
    EXPECT_EQ(fast->outcome, oracle->outcome) << text;
  }
}

// Nesting far past any result's (a broken worker) is refused, not followed down the stack;
// nesting as deep as the cap allows still reads.
TEST(WorkerProtocol, ResultSummaryRefusesDeepNestingWithoutRecursingIntoIt) {
  const std::string head = R"({"ok":true,"failure":null,"session":{"thread_id":"t"},"x":)";
  auto nested = [&](size_t depth) { return head + std::string(depth, '[') + std::string(depth, ']') + "}"; };
  EXPECT_TRUE(SummarizeResult(nested(60)));
  EXPECT_FALSE(SummarizeResult(nested(1000)));
  EXPECT_FALSE(SummarizeResult(nested(1'000'000)));
  EXPECT_FALSE(SummarizeResult(head + std::string(1'000'000, '[')));  // never closed either
}

// Real results, then each broken in random ways (bytes dropped, changed, added, repeated,
// the text cut short): the hand-written reader accepts exactly what the parser accepts and
// reads the same fields.
TEST(WorkerProtocol, ResultSummaryAgreesWithAStrictParserOnBrokenResults) {
  std::vector<std::string> valid;
  SessionResult plain;
  plain.execution.ok = true;
  valid.push_back(ToJsonText("t1", plain));
  SessionResult rich = plain;
  rich.execution.ok = false;
  rich.execution.stdout_text = "x\n\"q\" \xc3\xa9 \xf0\x9f\x98\x80 \x01";
  rich.execution.error = PythonError{"E", "m", "tb"};
  rich.execution.failure = Failure::kTimeout;
  rich.execution.failure_message = "slow";
  rich.execution.duration_ms = 1.5e-3;
  rich.execution.exit_code = -7;
  DisplayOutput d;
  d.data["text/plain"] = "p";
  rich.execution.display.push_back(d);
  rich.not_portable = {{"f", "why"}};
  rich.files_changed = {FileInfo{"/home/user/a", "text/plain", 3, 0, 0}};
  rich.version = 12;
  valid.push_back(ToJsonText("t\xc3\xa9", rich));
  valid.push_back(R"({"ok":false,"failure":null,"session":{"thread_id":"t\u00e9\ud83d\ude00\/"}, "n": [1.5e3, -0, 0.25E-2, 1e300, 1e-400]})");
  valid.push_back(R"( {"ok":true,"failure":{"kind":"k\u0041"},"session":{"a":[{"thread_id":"no"}],"thread_id":"t"},"x":{"y":{"z":[[]]}}} )");
  for (const std::string& v : valid) {
    ExpectAgrees(v);
    ASSERT_TRUE(SummarizeResult(v)) << v;
  }
  ExpectAgrees(R"({"ok":true,"failure":null,"session":{"thread_id":"t"},"n":1e400})");  // overflows: refused
  ExpectAgrees(R"({"ok":true,"failure":null,"session":{"thread_id":"t"},"n":123456789012345678901234567890})");

  static const std::string alphabet = "{}[],:\"\\ u0123456789abcdefABCDEF.eE+-ntrflsu\x01\x7f\x80\xbf\xc3\xe2\xed\xf0\xf4\xff";
  std::mt19937 rng(1205);
  for (int round = 0; round < 60000; round++) {
    std::string t = valid[rng() % valid.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !t.empty(); e++) {
      const size_t at = rng() % t.size();
      switch (rng() % 5) {
        case 0: t.erase(at, 1 + rng() % 3); break;
        case 1: t[at] = alphabet[rng() % alphabet.size()]; break;
        case 2: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 3: t.insert(at, t.substr(at, rng() % 12)); break;
        case 4: t.resize(at); break;
      }
    }
    ExpectAgrees(t);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace brig::server::worker
