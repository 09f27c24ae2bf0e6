#include "store/relayed_saves.h"

#include <utility>

#include "util/little_endian.h"
#include "util/status_code.h"

namespace brig::store {
namespace {

constexpr uint8_t kFormat = 2;  // 2: with the expected session
constexpr uint8_t kFlagDelta = 1;
constexpr uint8_t kFlagFallback = 2;

void Append32(std::string* out, std::string_view bytes) {
  AppendLe32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes);
}
void Append64(std::string* out, std::string_view bytes) {
  AppendLe64(out, bytes.size());
  out->append(bytes);
}

// Reads a u32- or u64-prefixed run of bytes into *out.
bool Read32(LeReader& r, std::string* out) {
  uint32_t n;
  std::string_view v;
  if (!r.U32(&n) || !r.Bytes(n, &v)) return false;
  out->assign(v);
  return true;
}
bool Read64(LeReader& r, std::string* out) {
  uint64_t n;
  std::string_view v;
  if (!r.U64(&n) || !r.Bytes(n, &v)) return false;
  out->assign(v);
  return true;
}

class RelayingStore : public Store {
 public:
  RelayingStore(std::unique_ptr<Store> inner, std::function<std::string(std::string_view)> relay)
      : inner_(std::move(inner)), relay_(std::move(relay)) {}

  using Store::SaveExecution;
  StatusOr<int64_t> SaveExecution(std::string_view thread_id, int64_t expected_version,
                                  const std::optional<ExpectedSession>& expected_session,
                                  const std::optional<StateWrite>& state, const std::vector<FileWrite>& files_upserted,
                                  const std::vector<std::string>& files_deleted) override {
    std::string save = EncodeSave(thread_id, expected_version, state, files_upserted, files_deleted, expected_session);
    if (save.size() > kMaxRelayedSave) {
      return inner_->SaveExecution(thread_id, expected_version, expected_session, state, files_upserted,
                                   files_deleted);
    }
    return DecodeSaveAnswer(relay_(save));
  }

  std::string_view backend() const override { return inner_->backend(); }
  StatusOr<int> SchemaVersion() override { return inner_->SchemaVersion(); }
  Status CreateSession(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                       const SessionQuotas& quotas) override {
    return inner_->CreateSession(thread_id, expires_at, metadata, quotas);
  }
  StatusOr<SessionInfo> GetSession(std::string_view thread_id) override { return inner_->GetSession(thread_id); }
  StatusOr<bool> SessionExists(std::string_view thread_id) override { return inner_->SessionExists(thread_id); }
  Status TouchSession(std::string_view thread_id) override { return inner_->TouchSession(thread_id); }
  Status SetSessionExpiry(std::string_view thread_id, int64_t expires_at) override {
    return inner_->SetSessionExpiry(thread_id, expires_at);
  }
  StatusOr<int64_t> ExtendSessionExpiry(std::string_view thread_id, int64_t now, int64_t by) override {
    return inner_->ExtendSessionExpiry(thread_id, now, by);
  }
  Status SetSessionMetadata(std::string_view thread_id, const nlohmann::json& metadata) override {
    return inner_->SetSessionMetadata(thread_id, metadata);
  }
  Status DeleteSession(std::string_view thread_id) override { return inner_->DeleteSession(thread_id); }
  StatusOr<std::vector<SessionInfo>> ListSessions() override { return inner_->ListSessions(); }
  StatusOr<std::vector<std::string>> ListExpiredSessions(int64_t now) override {
    return inner_->ListExpiredSessions(now);
  }
  Status PutFile(std::string_view thread_id, const FileWrite& file) override { return inner_->PutFile(thread_id, file); }
  StatusOr<FileData> GetFile(std::string_view thread_id, std::string_view path, int64_t offset,
                             int64_t limit) override {
    return inner_->GetFile(thread_id, path, offset, limit);
  }
  Status DeleteFile(std::string_view thread_id, std::string_view path) override {
    return inner_->DeleteFile(thread_id, path);
  }
  StatusOr<std::vector<FileInfo>> ListFiles(std::string_view thread_id, std::string_view prefix) override {
    return inner_->ListFiles(thread_id, prefix);
  }
  StatusOr<FileUsage> GetFileUsage(std::string_view thread_id) override { return inner_->GetFileUsage(thread_id); }
  StatusOr<std::optional<SessionState>> GetState(std::string_view thread_id) override {
    return inner_->GetState(thread_id);
  }
  StatusOr<int64_t> GetStateVersion(std::string_view thread_id) override { return inner_->GetStateVersion(thread_id); }
  StatusOr<std::pair<SessionInfo, int64_t>> GetSessionAndStateVersion(std::string_view thread_id) override {
    return inner_->GetSessionAndStateVersion(thread_id);
  }
  StatusOr<bool> SaveFallback(std::string_view thread_id, int64_t version, std::string_view fallback) override {
    return inner_->SaveFallback(thread_id, version, fallback);
  }
  WriteStats GetWriteStats() const override { return inner_->GetWriteStats(); }
  Status CreateSessionWith(std::string_view thread_id, int64_t expires_at, const nlohmann::json& metadata,
                           const std::optional<StateWrite>& state, const std::vector<FileWrite>& files) override {
    return inner_->CreateSessionWith(thread_id, expires_at, metadata, state, files);
  }
  Status CopySession(std::string_view from, std::string_view to, int64_t from_version, int64_t expires_at,
                     const nlohmann::json& metadata, const std::optional<StateWrite>& state) override {
    return inner_->CopySession(from, to, from_version, expires_at, metadata, state);
  }
  StatusOr<CleanupStats> Cleanup(int64_t now, bool dry_run) override { return inner_->Cleanup(now, dry_run); }
  StatusOr<uint64_t> SharedImageSeed(uint64_t proposed) override { return inner_->SharedImageSeed(proposed); }
  StatusOr<std::unique_ptr<SessionLock>> LockSession(std::string_view thread_id,
                                                     std::chrono::milliseconds timeout) override {
    return inner_->LockSession(thread_id, timeout);
  }

 private:
  const std::unique_ptr<Store> inner_;
  const std::function<std::string(std::string_view)> relay_;
};

}  // namespace

std::string EncodeSave(std::string_view thread_id, int64_t expected_version, const std::optional<StateWrite>& state,
                       const std::vector<FileWrite>& files_upserted, const std::vector<std::string>& files_deleted,
                       const std::optional<ExpectedSession>& expected_session) {
  size_t size = 64 + thread_id.size();
  if (state) size += state->snapshot.size() + state->format.size() + state->guest_build_id.size() + 32;
  if (state && state->fallback) size += state->fallback->size();
  for (const FileWrite& f : files_upserted) size += 16 + f.path.size() + f.content_type.size() + f.content.size();
  for (const std::string& p : files_deleted) size += 4 + p.size();
  std::string out;
  out.reserve(size);
  out.push_back(static_cast<char>(kFormat));
  Append32(&out, thread_id);
  AppendLe64(&out, static_cast<uint64_t>(expected_version));
  out.push_back(expected_session ? 1 : 0);
  if (expected_session) {
    AppendLe64(&out, static_cast<uint64_t>(expected_session->created_at));
    AppendLe64(&out, static_cast<uint64_t>(expected_session->expires_at));
  }
  out.push_back(state ? 1 : 0);
  if (state) {
    Append32(&out, state->format);
    Append32(&out, state->guest_build_id);
    out.push_back(static_cast<char>((state->delta ? kFlagDelta : 0) | (state->fallback ? kFlagFallback : 0)));
    if (state->fallback) Append64(&out, *state->fallback);
    Append64(&out, state->snapshot);
  }
  AppendLe32(&out, static_cast<uint32_t>(files_upserted.size()));
  for (const FileWrite& f : files_upserted) {
    Append32(&out, f.path);
    Append32(&out, f.content_type);
    Append64(&out, f.content);
  }
  AppendLe32(&out, static_cast<uint32_t>(files_deleted.size()));
  for (const std::string& p : files_deleted) Append32(&out, p);
  return out;
}

StatusOr<ExecutionSave> DecodeSave(std::string_view bytes) {
  auto bad = [&] { return Status::InvalidArgument("a relayed save that is not one (" + std::to_string(bytes.size()) + " bytes)"); };
  LeReader r(bytes);
  ExecutionSave s;
  uint8_t format, has_expected, has_state;
  uint64_t version;
  if (!r.U8(&format) || format != kFormat || !Read32(r, &s.thread_id) || !r.U64(&version) || !r.U8(&has_expected) ||
      has_expected > 1) {
    return bad();
  }
  s.expected_version = static_cast<int64_t>(version);
  if (has_expected) {
    uint64_t created_at, expires_at;
    if (!r.U64(&created_at) || !r.U64(&expires_at)) return bad();
    s.expected_session = ExpectedSession{static_cast<int64_t>(created_at), static_cast<int64_t>(expires_at)};
  }
  if (!r.U8(&has_state) || has_state > 1) return bad();
  if (has_state) {
    StateWrite w;
    uint8_t flags;
    if (!Read32(r, &w.format) || !Read32(r, &w.guest_build_id) || !r.U8(&flags) ||
        (flags & ~(kFlagDelta | kFlagFallback)) != 0) {
      return bad();
    }
    w.delta = flags & kFlagDelta;
    if (flags & kFlagFallback) {
      w.fallback.emplace();
      if (!Read64(r, &*w.fallback)) return bad();
    }
    if (!Read64(r, &w.snapshot)) return bad();
    s.state = std::move(w);
  }
  uint32_t count;
  if (!r.U32(&count)) return bad();
  // Each file takes at least 16 bytes: a count beyond what is left is a lie, not a reserve.
  if (count > r.remaining() / 16) return bad();
  s.files_upserted.resize(count);
  for (FileWrite& f : s.files_upserted) {
    if (!Read32(r, &f.path) || !Read32(r, &f.content_type) || !Read64(r, &f.content)) return bad();
  }
  if (!r.U32(&count) || count > r.remaining() / 4) return bad();
  s.files_deleted.resize(count);
  for (std::string& p : s.files_deleted) {
    if (!Read32(r, &p)) return bad();
  }
  if (r.remaining() != 0) return bad();
  return s;
}

std::string EncodeSaveAnswer(const StatusOr<int64_t>& outcome) {
  std::string out;
  if (outcome.ok()) {
    out.push_back(0);
    AppendLe64(&out, static_cast<uint64_t>(outcome.value()));
    return out;
  }
  out.push_back(static_cast<char>(StatusCodeByte(outcome.status())));
  out += outcome.status().message();
  return out;
}

StatusOr<int64_t> DecodeSaveAnswer(std::string_view bytes) {
  LeReader r(bytes);
  uint8_t code;
  if (!r.U8(&code)) return Status::Internal("an empty answer to a relayed save");
  if (code == 0) {
    uint64_t version;
    if (!r.U64(&version) || r.remaining() != 0) return Status::Internal("a malformed answer to a relayed save");
    return static_cast<int64_t>(version);
  }
  std::optional<Status> error = StatusFromCodeByte(code, std::string(r.rest()));
  if (!error) return Status::Internal("an answer to a relayed save with an unknown status code " + std::to_string(code));
  return *error;
}

std::vector<StatusOr<std::string>> ApplyRelayedSaves(Store& store, const std::vector<std::string_view>& saves) {
  std::vector<StatusOr<std::string>> out(saves.size(), StatusOr<std::string>(std::string()));
  std::vector<ExecutionSave> decoded;
  std::vector<size_t> which;  // the bytes each decoded save came from
  decoded.reserve(saves.size());
  for (size_t i = 0; i < saves.size(); ++i) {
    StatusOr<ExecutionSave> save = DecodeSave(saves[i]);
    if (!save.ok()) {
      out[i] = save.status();
      continue;
    }
    decoded.push_back(std::move(save.value()));
    which.push_back(i);
  }
  std::vector<StatusOr<int64_t>> outcomes = store.SaveExecutions(decoded);
  for (size_t k = 0; k < outcomes.size(); ++k) out[which[k]] = EncodeSaveAnswer(outcomes[k]);
  return out;
}

std::unique_ptr<Store> RelaySaves(std::unique_ptr<Store> inner, std::function<std::string(std::string_view)> relay) {
  return std::make_unique<RelayingStore>(std::move(inner), std::move(relay));
}

}  // namespace brig::store
