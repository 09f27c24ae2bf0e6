// Relayed saves (store/relayed_saves.h): a save's bytes read back as the same save; bytes that
// are not one (every truncation, a byte too many, a wrong format, flags or count) are refused
// and write nothing; a batch applied on a real SQLite store gives each save the outcome it
// would have had alone; a store opened with StoreOptions::save_relay saves through the relay
// and keeps everything else on its own connections.
#include "store/relayed_saves.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "backends.h"
#include "util/little_endian.h"

namespace brig::store {
namespace {

ExecutionSave FullSave() {
  ExecutionSave s;
  s.thread_id = "relay-t";
  s.expected_version = 0;
  s.expected_session = ExpectedSession{1764990000123456, 1765990000654321};
  StateWrite w;
  w.snapshot = std::string("snap\0shot", 9);
  w.format = "brig-pages-1";
  w.guest_build_id = "build-42";
  w.fallback = std::string("fall\0back", 9);
  w.delta = true;
  s.state = w;
  s.files_upserted.push_back({"/data/a.txt", "hello", "text/plain"});
  s.files_upserted.push_back({"/data/empty", "", ""});
  s.files_deleted = {"/data/old.txt", "/tmp/x"};
  return s;
}

std::string Encode(const ExecutionSave& s) {
  return EncodeSave(s.thread_id, s.expected_version, s.state, s.files_upserted, s.files_deleted, s.expected_session);
}

void ExpectSame(const ExecutionSave& a, const ExecutionSave& b) {
  EXPECT_EQ(a.thread_id, b.thread_id);
  EXPECT_EQ(a.expected_version, b.expected_version);
  EXPECT_EQ(a.expected_session.has_value(), b.expected_session.has_value());
  if (a.expected_session && b.expected_session) {
    EXPECT_EQ(a.expected_session->created_at, b.expected_session->created_at);
    EXPECT_EQ(a.expected_session->expires_at, b.expected_session->expires_at);
  }
  ASSERT_EQ(a.state.has_value(), b.state.has_value());
  if (a.state) {
    EXPECT_EQ(a.state->snapshot, b.state->snapshot);
    EXPECT_EQ(a.state->format, b.state->format);
    EXPECT_EQ(a.state->guest_build_id, b.state->guest_build_id);
    EXPECT_EQ(a.state->fallback, b.state->fallback);
    EXPECT_EQ(a.state->delta, b.state->delta);
  }
  ASSERT_EQ(a.files_upserted.size(), b.files_upserted.size());
  for (size_t i = 0; i < a.files_upserted.size(); ++i) {
    EXPECT_EQ(a.files_upserted[i].path, b.files_upserted[i].path);
    EXPECT_EQ(a.files_upserted[i].content, b.files_upserted[i].content);
    EXPECT_EQ(a.files_upserted[i].content_type, b.files_upserted[i].content_type);
  }
  EXPECT_EQ(a.files_deleted, b.files_deleted);
}

TEST(RelayedSaves, ASaveReadsBackAsTheSameSave) {
  ExecutionSave full = FullSave();
  StatusOr<ExecutionSave> back = DecodeSave(Encode(full));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(full, back.value());

  // Without a state (files only), without a fallback, a large version.
  ExecutionSave bare;
  bare.thread_id = "b";
  bare.expected_version = int64_t{1} << 40;
  bare.files_deleted = {"/f"};
  back = DecodeSave(Encode(bare));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(bare, back.value());
  ExecutionSave no_fallback = FullSave();
  no_fallback.state->fallback.reset();
  no_fallback.state->delta = false;
  back = DecodeSave(Encode(no_fallback));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSame(no_fallback, back.value());
}

TEST(RelayedSaves, BytesThatAreNotOneWholeSaveAreRefused) {
  const std::string good = Encode(FullSave());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_TRUE(DecodeSave(good.substr(0, n)).status().IsInvalidArgument()) << "truncated to " << n;
  }
  EXPECT_TRUE(DecodeSave(good + "x").status().IsInvalidArgument()) << "a byte too many";
  std::string wrong_format = good;
  wrong_format[0] = 1;  // the format before the expected session
  EXPECT_TRUE(DecodeSave(wrong_format).status().IsInvalidArgument());

  // has_expected_session or has_state other than 0 or 1; unknown state flags; a file count
  // far beyond the bytes.
  ExecutionSave bare;
  bare.thread_id = "t";
  std::string b = Encode(bare);
  const size_t has_state_at = 1 + 4 + 1 + 8 + 1;  // bare: no expected session
  b[has_state_at] = 2;
  EXPECT_TRUE(DecodeSave(b).status().IsInvalidArgument());
  std::string e = Encode(bare);
  e[has_state_at - 1] = 2;
  EXPECT_TRUE(DecodeSave(e).status().IsInvalidArgument());
  std::string flags = good;
  const size_t flags_at = 1 + 4 + FullSave().thread_id.size() + 8 + 1 + 16 + 1 + 4 + FullSave().state->format.size() + 4 +
                          FullSave().state->guest_build_id.size();
  ASSERT_EQ(static_cast<uint8_t>(flags[flags_at]), 3);
  flags[flags_at] = static_cast<char>(0x83);
  EXPECT_TRUE(DecodeSave(flags).status().IsInvalidArgument());
  std::string lie;
  lie.push_back(2);
  AppendLe32(&lie, 1);
  lie += "t";
  AppendLe64(&lie, 0);
  lie.push_back(0);  // no expected session
  lie.push_back(0);
  AppendLe32(&lie, 0xFFFFFFFFu);  // four billion files in a few bytes
  EXPECT_TRUE(DecodeSave(lie).status().IsInvalidArgument());
  std::string huge_length = lie.substr(0, lie.size() - 4);
  AppendLe32(&huge_length, 1);
  AppendLe32(&huge_length, 0x7FFFFFFFu);  // a path longer than what follows
  EXPECT_TRUE(DecodeSave(huge_length).status().IsInvalidArgument());
}

TEST(RelayedSaves, AnswersCarryTheVersionOrTheError) {
  StatusOr<int64_t> v = DecodeSaveAnswer(EncodeSaveAnswer(int64_t{7}));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value(), 7);
  for (const Status& s : {Status::Conflict("stale"), Status::NotFound("gone"), Status::InvalidArgument("bad path"),
                          Status::ResourceExhausted("big"), Status::Unavailable("down"), Status::Internal("x")}) {
    StatusOr<int64_t> back = DecodeSaveAnswer(EncodeSaveAnswer(s));
    ASSERT_FALSE(back.ok());
    EXPECT_EQ(back.status().ToString(), s.ToString());
  }
  EXPECT_TRUE(DecodeSaveAnswer("").status().IsInternal());
  EXPECT_TRUE(DecodeSaveAnswer(std::string(1, '\0') + "abc").status().IsInternal());
  EXPECT_TRUE(DecodeSaveAnswer(std::string(1, '\x63') + "abc").status().IsInternal());
}

class RelayedSavesStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::string> url = backend_.NewUrl();
    ASSERT_TRUE(url.ok());
    url_ = url.value();
    StatusOr<std::unique_ptr<Store>> store = OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
  }
  testing::SqliteBackend backend_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

// Each save of a batch gets what SaveExecution alone would have given it, in order: a good
// one its version, one of a missing session NotFound, a stale one Conflict, a bad path
// InvalidArgument (as an answer: it is a save), bytes that are no save InvalidArgument (no
// answer); the good ones are stored, nothing of the others.
TEST_F(RelayedSavesStoreTest, ABatchGivesEachSaveItsOwnOutcome) {
  ASSERT_TRUE(store_->CreateSession("a", INT64_MAX, nullptr).ok());
  ASSERT_TRUE(store_->CreateSession("b", INT64_MAX, nullptr).ok());
  StateWrite state{"pages", "brig-pages-1", "build", std::nullopt, false};
  std::vector<FileWrite> file = {{"/data/f.txt", "content", ""}};
  std::vector<std::string> bytes = {
      EncodeSave("a", 0, state, file, {}),
      EncodeSave("missing", 0, state, {}, {}),
      EncodeSave("b", 5, state, {}, {}),
      EncodeSave("b", 0, state, {{"../escape", "x", ""}}, {}),
      "not a save",
      EncodeSave("b", 0, std::nullopt, file, {}),
  };
  std::vector<std::string_view> views(bytes.begin(), bytes.end());
  std::vector<StatusOr<std::string>> answers = ApplyRelayedSaves(*store_, views);
  ASSERT_EQ(answers.size(), bytes.size());
  auto outcome = [&](size_t i) {
    EXPECT_TRUE(answers[i].ok()) << i << ": " << answers[i].status().ToString();
    return answers[i].ok() ? DecodeSaveAnswer(answers[i].value()) : StatusOr<int64_t>(answers[i].status());
  };
  EXPECT_EQ(outcome(0).value(), 1);
  EXPECT_TRUE(outcome(1).status().IsNotFound()) << outcome(1).status().ToString();
  EXPECT_TRUE(outcome(2).status().IsConflict()) << outcome(2).status().ToString();
  EXPECT_TRUE(outcome(3).status().IsInvalidArgument()) << outcome(3).status().ToString();
  EXPECT_TRUE(answers[4].status().IsInvalidArgument()) << answers[4].status().ToString();
  EXPECT_EQ(outcome(5).value(), 1);

  StatusOr<std::optional<SessionState>> a = store_->GetState("a");
  ASSERT_TRUE(a.ok() && a.value());
  EXPECT_EQ(a.value()->snapshot, "pages");
  EXPECT_EQ(a.value()->version, 1);
  StatusOr<FileData> f = store_->GetFile("a", "/data/f.txt");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f.value().content, "content");
  StatusOr<int64_t> b_version = store_->GetStateVersion("b");
  ASSERT_TRUE(b_version.ok());
  EXPECT_EQ(b_version.value(), 1);  // the files-only save, not the stale or the bad one
  EXPECT_TRUE(store_->GetFile("b", "/data/f.txt").ok());
  EXPECT_FALSE(store_->SessionExists("missing").value());
}

// A store opened with a relay saves through it (into another store of the same file, as a
// supervisor would) and reads its own; a relay that answers nonsense fails the save.
TEST_F(RelayedSavesStoreTest, AStoreWithARelaySavesThroughIt) {
  int relayed = 0;
  StoreOptions options;
  options.save_relay = [&](std::string_view save) {
    ++relayed;
    std::vector<StatusOr<std::string>> a = ApplyRelayedSaves(*store_, {save});
    return a.front().ok() ? a.front().value() : std::string();
  };
  StatusOr<std::unique_ptr<Store>> opened = OpenStore(url_, options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Store& relaying = *opened.value();
  ASSERT_TRUE(relaying.CreateSession("r", INT64_MAX, nullptr).ok());
  EXPECT_EQ(relayed, 0);  // not a save: on its own connection
  StateWrite state{"pages-1", "brig-pages-1", "build", std::string("fallback"), false};
  StatusOr<int64_t> v = relaying.SaveExecution("r", 0, state, {{"/data/x", "1", ""}}, {});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v.value(), 1);
  EXPECT_EQ(relayed, 1);
  StatusOr<int64_t> stale = relaying.SaveExecution("r", 0, state, {}, {});
  EXPECT_TRUE(stale.status().IsConflict()) << stale.status().ToString();
  StatusOr<std::optional<SessionState>> read = relaying.GetState("r");
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_EQ(read.value()->snapshot, "pages-1");
  EXPECT_EQ(read.value()->fallback, "fallback");

  StoreOptions broken;
  broken.save_relay = [](std::string_view) { return std::string("\x01"); };  // no answer
  StatusOr<std::unique_ptr<Store>> bad = OpenStore(url_, broken);
  ASSERT_TRUE(bad.ok());
  StatusOr<int64_t> failed = bad.value()->SaveExecution("r", 1, state, {}, {});
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(store_->GetStateVersion("r").value(), 1);
}

}  // namespace
}  // namespace brig::store
