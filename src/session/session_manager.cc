#include "session/session_manager.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>

#include "session/state_format.h"
#include "session/stored_state.h"

namespace brig {

std::string FormatTimestamp(int64_t micros) {
  // Floor division: a negative stamp (before 1970) still names the right second.
  int64_t seconds = micros / 1'000'000;
  if (micros % 1'000'000 < 0) --seconds;
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return std::to_string(micros) + "us";
  }
  return buf;
}

std::string FormatBytes(int64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[unit]);
  return buf;
}

}  // namespace brig

namespace brig::session {
namespace {

SessionOptions WithDefaults(SessionOptions options) {
  if (!options.clock) options.clock = store::NowMicros;
  return options;
}

std::string Quoted(std::string_view thread_id) {
  // Appended, not "'" + ... + "'": GCC 12 warns (-Wrestrict) falsely on that once inlined.
  std::string out;
  out.reserve(thread_id.size() + 2);
  out += '\'';
  out += thread_id;
  out += '\'';
  return out;
}

}  // namespace

SessionManager::SessionManager(store::Store& store, SessionOptions options)
    : store_(store), options_(WithDefaults(std::move(options))) {}

Status SessionManager::CheckDays(int64_t days) const {
  if (days < 1 || days > kMaxExpiryDays) {
    return Status::InvalidArgument("expiry must be 1 to " + std::to_string(kMaxExpiryDays) + " days, not " +
                                   std::to_string(days));
  }
  return Status::Ok();
}

Status SessionManager::CheckNotExpired(const store::SessionInfo& session) const {
  if (!IsExpired(session)) return Status::Ok();
  return Status::FailedPrecondition("session " + Quoted(session.thread_id) + " expired at " +
                                    FormatTimestamp(session.expires_at) + "; extend it (brig sessions extend " +
                                    session.thread_id + " DAYS) to use it again, or run brig cleanup to delete it");
}

StatusOr<store::SessionInfo> SessionManager::GetOrCreate(std::string_view thread_id, bool touch) {
  // Two tries: a concurrent creator may win the insert between our read and our create, and
  // a concurrent cleanup may delete an expired session between our read and our touch.
  for (int attempt = 0;; ++attempt) {
    StatusOr<store::SessionInfo> got = store_.GetSession(thread_id);
    if (got.ok()) {
      if (Status s = CheckNotExpired(got.value()); !s.ok()) return s;
      if (!touch) return got;
      Status touched = store_.TouchSession(thread_id);
      if (touched.ok()) {
        got.value().last_accessed = Now();
        return got;
      }
      if (!touched.IsNotFound() || attempt > 0) return touched;
      continue;
    }
    if (!got.status().IsNotFound()) return got.status();
    StatusOr<store::SessionInfo> created = Create(thread_id);
    if (created.ok() || !created.status().IsAlreadyExists() || attempt > 0) return created;
  }
}

StatusOr<store::SessionInfo> SessionManager::Use(std::string_view thread_id) {
  StatusOr<store::SessionInfo> got = store_.GetSession(thread_id);
  if (!got.ok()) return got;
  if (Status s = CheckNotExpired(got.value()); !s.ok()) return s;
  if (Status s = store_.TouchSession(thread_id); !s.ok()) return s;
  got.value().last_accessed = Now();
  return got;
}

StatusOr<store::SessionInfo> SessionManager::Create(std::string_view thread_id, std::optional<int64_t> expiry_days,
                                                    const nlohmann::json& metadata, const store::SessionQuotas& quotas) {
  const int64_t days = expiry_days.value_or(options_.default_expiry_days);
  if (Status s = CheckDays(days); !s.ok()) return s;
  // A session's quotas only lower the process's: a client cannot raise its own.
  auto over = [](const char* name, const std::optional<int64_t>& v, int64_t max) -> Status {
    if (v && (*v < 1 || *v > max)) {
      return Status::InvalidArgument(std::string("quota ") + name + " must be 1.." + std::to_string(max) +
                                     " (this server's own), not " + std::to_string(*v));
    }
    return Status::Ok();
  };
  if (Status s = over("max_files", quotas.max_files, options_.max_files_per_session); !s.ok()) return s;
  if (Status s = over("max_total_bytes", quotas.max_total_bytes, options_.max_bytes_per_session); !s.ok()) return s;
  if (Status s = over("max_file_bytes", quotas.max_file_bytes, kMaxFileBytes); !s.ok()) return s;
  if (Status s = store_.CreateSession(thread_id, Now() + days * kMicrosPerDay, metadata, quotas); !s.ok()) return s;
  return store_.GetSession(thread_id);
}

store::SessionQuotas SessionManager::EffectiveQuotas(const store::SessionQuotas& own) const {
  store::SessionQuotas q;
  q.max_files = std::min(own.max_files.value_or(options_.max_files_per_session), options_.max_files_per_session);
  q.max_total_bytes =
      std::min(own.max_total_bytes.value_or(options_.max_bytes_per_session), options_.max_bytes_per_session);
  q.max_file_bytes = std::min(own.max_file_bytes.value_or(kMaxFileBytes), kMaxFileBytes);
  return q;
}

StatusOr<bool> SessionManager::Exists(std::string_view thread_id) { return store_.SessionExists(thread_id); }

StatusOr<store::SessionInfo> SessionManager::Get(std::string_view thread_id) { return store_.GetSession(thread_id); }

StatusOr<store::SessionInfo> SessionManager::Extend(std::string_view thread_id, int64_t days) {
  if (Status s = CheckDays(days); !s.ok()) return s;
  // One store statement adds the days, so that concurrent extensions add up; the session
  // read back after it may already show a later one.
  StatusOr<int64_t> expires_at = store_.ExtendSessionExpiry(thread_id, Now(), days * kMicrosPerDay);
  if (!expires_at.ok()) return expires_at.status();
  StatusOr<store::SessionInfo> got = store_.GetSession(thread_id);
  if (!got.ok()) return got;
  return got;
}

Status SessionManager::Delete(std::string_view thread_id) {
  BeforeStoreUse(thread_id, StoreUse::kGone, /*lock_held=*/false);
  return store_.DeleteSession(thread_id);
}

StatusOr<std::vector<store::SessionInfo>> SessionManager::List() { return store_.ListSessions(); }

// What a reset stores in place of `old`: the files' modes, extended attributes and named
// pipes are theirs, not the interpreter's, and stay; nothing else does. A state this brig
// cannot read keeps nothing (the files stay, with default modes).
static store::StateWrite ResetState(const std::optional<store::SessionState>& old) {
  if (!old || old->cleared() || old->format != kStateFormat) return store::StateWrite{};
  // The latest delta (if any) holds the attributes whole (stored_state.h).
  std::optional<StoredState> decoded = DecodeState(old->deltas.empty() ? old->snapshot : old->deltas.back().second);
  if (!decoded || decoded->nodes.empty()) return store::StateWrite{};
  // An empty fallback of the new version: the old one's namespace is what the reset cleared.
  return store::StateWrite{EncodeState(FreshState(std::move(decoded->nodes))), std::string(kStateFormat),
                           old->guest_build_id, std::string()};
}

Status SessionManager::Reset(std::string_view thread_id) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  StatusOr<std::unique_ptr<store::SessionLock>> lock = store_.LockSession(thread_id, options_.lock_timeout);
  if (!lock.ok()) return lock.status();
  BeforeStoreUse(thread_id, StoreUse::kGone, /*lock_held=*/true);
  // Under the lock no execution saves in between; a writer that does not take the lock
  // could, hence one retry on Conflict with the version read again.
  for (int attempt = 0;; ++attempt) {
    StatusOr<store::SessionInfo> session = Use(thread_id);
    if (!session.ok()) return session.status();
    StatusOr<std::optional<store::SessionState>> state = store_.GetState(thread_id);
    if (!state.ok()) return state.status();
    const int64_t version = state.value() ? state.value()->version : 0;
    StatusOr<int64_t> saved = store_.SaveExecution(thread_id, version, ResetState(state.value()), {}, {});
    if (saved.ok()) return Status::Ok();
    if (!saved.status().IsConflict() || attempt > 0) return saved.status();
  }
}

StatusOr<store::SessionInfo> SessionManager::Fork(std::string_view src, std::string_view dst,
                                                  const ForkOptions& fork) {
  if (Status s = store::ValidateThreadId(src); !s.ok()) return s;
  if (Status s = store::ValidateThreadId(dst); !s.ok()) return s;
  const int64_t days = fork.expiry_days.value_or(options_.default_expiry_days);
  if (Status s = CheckDays(days); !s.ok()) return s;
  if (fork.metadata && !fork.metadata->is_object() && !fork.metadata->is_null()) {
    return Status::InvalidArgument("session metadata must be a JSON object");
  }
  // Cheap and clear before waiting for src's lock; the store's insert is what decides.
  StatusOr<bool> taken = store_.SessionExists(dst);
  if (!taken.ok()) return taken.status();
  if (taken.value()) return Status::AlreadyExists("session " + Quoted(dst) + " already exists");
  StatusOr<std::unique_ptr<store::SessionLock>> lock = store_.LockSession(src, options_.lock_timeout);
  if (!lock.ok()) return lock.status();
  BeforeStoreUse(src, StoreUse::kRead, /*lock_held=*/true);
  // Under src's lock no execution or file write of src saves in between; a writer that skips
  // the lock could, and then CopySession's version check fails: one retry, read again.
  for (int attempt = 0;; ++attempt) {
    StatusOr<store::SessionInfo> source = Use(src);
    if (!source.ok()) return source.status();
    if (Status s = CheckQuota(dst, source.value().quotas,
                              store::FileUsage{source.value().file_count, source.value().total_bytes});
        !s.ok()) {
      return s.WithPrefix("cannot fork " + Quoted(src) + ": ");
    }
    StatusOr<std::optional<store::SessionState>> state = store_.GetState(src);
    if (!state.ok()) return state.status();
    const int64_t version = state.value() ? state.value()->version : 0;
    std::optional<store::StateWrite> copy;
    if (state.value() && !state.value()->cleared()) {
      const store::SessionState& st = *state.value();
      copy = store::StateWrite{st.snapshot, st.format, st.guest_build_id};
      // The fallback goes with it when it is of this very version (the fork's is version 1;
      // an older one would claim to be of it). Without one, the fork gets a new one taken
      // when it first runs live.
      if (!st.fallback.empty() && st.fallback_version == st.version) copy->fallback = st.fallback;
      // The fork draws its own random numbers (as Sandbox::Fork's do), and gets the state
      // whole (its deltas applied). A state in a format this brig does not write is copied as
      // it is; one saved as deltas must be read.
      if (st.format == kStateFormat) {
        StatusOr<ReadState> read = ReadStoredState(src, st);
        if (read.ok()) {
          StoredState& whole = read.value().state;
          whole.reseed = true;
          // A portable snapshot of an older version would claim to be the fork's version 1.
          if (read.value().portable_version != st.version) {
            whole.portable.clear();
            whole.not_portable.clear();
          }
          copy->snapshot = EncodeState(whole);
        } else if (!st.deltas.empty()) {
          return read.status().WithPrefix("cannot fork " + Quoted(src) + ": ");
        }
      }
    }
    const nlohmann::json& metadata = fork.metadata ? *fork.metadata : source.value().metadata;
    Status copied = store_.CopySession(src, dst, version, Now() + days * kMicrosPerDay, metadata, copy);
    if (copied.ok()) return store_.GetSession(dst);
    if (!copied.IsConflict() || attempt > 0) return copied;
  }
}

StatusOr<store::CleanupStats> SessionManager::Cleanup(bool dry_run) { return store_.Cleanup(Now(), dry_run); }

Status SessionManager::CheckQuota(std::string_view thread_id, const store::SessionQuotas& own,
                                  const store::FileUsage& after) const {
  return CheckQuota(thread_id, own, store::FileUsage{0, 0}, after);
}

Status SessionManager::CheckQuota(std::string_view thread_id, const store::SessionQuotas& own,
                                  const store::FileUsage& before, const store::FileUsage& after) const {
  const store::SessionQuotas q = EffectiveQuotas(own);
  if (after.file_count > *q.max_files && after.file_count > before.file_count) {
    return Status::ResourceExhausted("session " + Quoted(thread_id) + " would hold " +
                                     std::to_string(after.file_count) + " files, over its quota of " +
                                     std::to_string(*q.max_files) + " files");
  }
  if (after.total_bytes > *q.max_total_bytes && after.total_bytes > before.total_bytes) {
    return Status::ResourceExhausted("session " + Quoted(thread_id) + " would hold " +
                                     std::to_string(after.total_bytes) + " bytes (" + FormatBytes(after.total_bytes) +
                                     ") of files, over its quota of " + std::to_string(*q.max_total_bytes) +
                                     " bytes (" + FormatBytes(*q.max_total_bytes) + ")");
  }
  return Status::Ok();
}

Status SessionManager::CheckFileSize(std::string_view thread_id, const store::SessionQuotas& own,
                                     std::string_view path, int64_t size) const {
  const store::SessionQuotas q = EffectiveQuotas(own);
  if (size <= *q.max_file_bytes) return Status::Ok();
  return Status::ResourceExhausted("file '" + std::string(path) + "' of " + std::to_string(size) + " bytes (" +
                                   FormatBytes(size) + ") is over session " + Quoted(thread_id) +
                                   "'s quota of " + std::to_string(*q.max_file_bytes) + " bytes per file");
}

}  // namespace brig::session
