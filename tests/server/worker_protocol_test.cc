// The supervisor -> worker execute body (server/worker_protocol.h): every flag byte either
// decodes to a request that encodes back to the same bytes, or is refused; a sync request
// (flush a session's deferred save to the store) never carries code or execution options.
#include "server/worker_protocol.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>

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

}  // namespace
}  // namespace brig::server::worker
