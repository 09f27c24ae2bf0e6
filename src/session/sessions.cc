// brig::Sessions: load a session into a sandbox, execute, save state and changed files;
// export and import a session as snapshot bytes. The stored state's format is
// session/state_format.h, the snapshot's session/snapshot_format.h.
#include "brig/sessions.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <list>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "api/access.h"
#include "names/path_rules.h"
#include "session/session_manager.h"
#include "session/snapshot_format.h"
#include "session/state_format.h"
#include "store/store.h"

namespace brig {
namespace {

// The largest memory limit (Limits::memory_bytes).
constexpr uint64_t kMaxMemoryBytes = 4096ull << 20;

using session::kStateFormat;
using session::StoredState;

using FileVersions = std::map<std::string, std::pair<uint64_t, uint64_t>>;

// A session's interpreter held between executions, with what the store had when it was
// last loaded or saved.
struct LiveSession {
  std::unique_ptr<Sandbox> sandbox;
  // The session's created_at and state version when loaded or last saved. Both must match
  // the store's for the interpreter to be reused: a session deleted and made again (by an
  // execution, a fork or an import) may reach the same version number.
  int64_t created_at = 0;
  int64_t version = 0;
  FileVersions files;
  // The empty directories the store holds for it (rows of store::kDirectoryType).
  std::set<std::string> dirs;
  // Loaded while the session held more than its quotas allow: the sandbox's file limits are
  // what was loaded (see SandboxLimits), not the quotas, so it is not kept live.
  bool over_quota = false;
  // The session's own quotas (fixed at its creation, so they hold as long as created_at).
  store::SessionQuotas quotas;
  // When it was last put back live, and whether it was compacted since.
  std::chrono::steady_clock::time_point idle_since{};
  bool compacted = false;
};

bool GuestVisible(std::string_view path) { return path.starts_with("/home/user/") || path.starts_with("/tmp/"); }

FileVersions VersionsOf(const Sandbox& sandbox) {
  FileVersions v;
  for (const auto& f : sandbox.ListFiles()) v[f.path] = f.version;
  return v;
}

// A file to load into a sandbox: its row, and where its content comes from.
using ContentFn = std::function<StatusOr<std::string>(const store::FileInfo&)>;

}  // namespace

struct Sessions::Impl {
  Options options;
  std::unique_ptr<Store> owned_store;  // null when the store is borrowed (Open(Store&, ...))
  store::Store* store = nullptr;
  std::unique_ptr<SessionManager> public_manager;
  session::SessionManager* manager = nullptr;  // the policy behind public_manager
  std::unique_ptr<FileService> files;

  // Live sessions, most recently used first. `mu` guards the map and list, not the
  // sandboxes: a sandbox taken out is owned by the one execution that took it.
  std::mutex mu;
  std::list<std::pair<std::string, LiveSession>> live;

  std::optional<LiveSession> TakeLive(std::string_view thread_id) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = live.begin(); it != live.end(); ++it) {
      if (it->first == thread_id) {
        LiveSession s = std::move(it->second);
        live.erase(it);
        return s;
      }
    }
    return std::nullopt;
  }

  void PutLive(std::string_view thread_id, LiveSession s) {
    if (options.max_live == 0) return;
    s.idle_since = std::chrono::steady_clock::now();
    s.compacted = false;
    std::lock_guard<std::mutex> lock(mu);
    live.emplace_front(std::string(thread_id), std::move(s));
    while (live.size() > options.max_live) live.pop_back();
    CompactIdleLocked(kCompactionsPerExecution);
  }

  // After an execution, at most this many idle sessions are compacted (~0.3 ms each), so that
  // no execution pays for many.
  static constexpr size_t kCompactionsPerExecution = 4;

  // Compacts up to `budget` live sessions idle for compact_idle_after; the least recently
  // used first. A sandbox that cannot compact (dead) is dropped. REQUIRES: mu held.
  size_t CompactIdleLocked(size_t budget) {
    const auto now = std::chrono::steady_clock::now();
    size_t done = 0;
    for (auto it = live.rbegin(); it != live.rend() && done < budget;) {
      LiveSession& s = it->second;
      if (now - s.idle_since < options.compact_idle_after) break;  // newer ones are less idle
      if (s.compacted) {
        ++it;
        continue;
      }
      if (!s.sandbox->Compact().ok()) {
        it = std::make_reverse_iterator(live.erase(std::next(it).base()));
        continue;
      }
      s.compacted = true;
      ++done;
      ++it;
    }
    return done;
  }

  void DropLive(std::string_view thread_id) { TakeLive(thread_id); }

  // The limits of a sandbox for a session whose store holds `visible` (files the guest sees,
  // all loaded into its file system, which counts them) and `outside` (files kept in the
  // store only). The session quotas become the guest's file limits, less what the files
  // outside take, so that creating a file or writing past a quota fails that write in the
  // guest (OSError ENOSPC) instead of the save. Never below what is loaded, so that a session
  // already over a quota (quotas lowered since) still loads; the save-time check refuses it.
  // `q`: the session's effective quotas (SessionManager::EffectiveQuotas).
  Limits SandboxLimits(const store::SessionQuotas& q, const store::FileUsage& visible,
                       const store::FileUsage& outside) const {
    auto room = [](int64_t quota, int64_t taken, int64_t loaded) {
      return static_cast<uint64_t>(std::max({quota - taken, loaded, int64_t{0}}));
    };
    Limits l = options.limits;
    l.file_bytes = room(*q.max_total_bytes, outside.total_bytes, visible.total_bytes);
    l.max_file_bytes = static_cast<uint64_t>(*q.max_file_bytes);
    // Regular files only: directories have their own allowance in the sandbox.
    l.max_files = room(*q.max_files, outside.file_count, visible.file_count);
    return l;
  }

  // A sandbox holding the session's stored files and state (version `stored`).
  StatusOr<LiveSession> Load(std::string_view thread_id, int64_t created_at, const store::SessionQuotas& quotas,
                             const std::optional<store::SessionState>& stored, uint64_t memory_bytes,
                             SessionResult* result) {
    auto files = store->ListFiles(thread_id);
    if (!files.ok()) return files.status();
    auto content = [&](const store::FileInfo& f) -> StatusOr<std::string> {
      auto data = store->GetFile(thread_id, f.path);
      if (!data.ok()) return data.status();
      return std::move(data.value().content);
    };
    auto made = Build(files.value(), content, quotas, memory_bytes, result);
    if (!made.ok()) return made.status();
    LiveSession& s = made.value();
    s.created_at = created_at;
    s.version = stored ? stored->version : 0;
    if (stored && !stored->cleared()) {
      std::optional<StoredState> state;
      if (stored->format == kStateFormat) state = session::DecodeState(stored->snapshot);
      if (!state) return Status::Internal("the stored state of " + std::string(thread_id) + " is unreadable (format '" + stored->format + "')");
      std::string pages_failure;
      if (Status restored = Restore(*s.sandbox, *state, result, &pages_failure); !restored.ok()) return restored;
    }
    s.files = VersionsOf(*s.sandbox);
    return std::move(made.value());
  }

  // A sandbox holding `files` (contents from `content`), with result->restored_from "new".
  // Files the guest sees are loaded; the others stay in the store, outside its view.
  StatusOr<LiveSession> Build(const std::vector<store::FileInfo>& files, const ContentFn& content,
                              const store::SessionQuotas& quotas, uint64_t memory_bytes, SessionResult* result) {
    store::FileUsage visible, outside;
    for (const store::FileInfo& f : files) {
      if (f.is_directory()) continue;
      store::FileUsage& u = GuestVisible(f.path) ? visible : outside;
      u.file_count++;
      u.total_bytes += f.size;
    }
    const store::SessionQuotas q = manager->EffectiveQuotas(quotas);
    Limits limits = SandboxLimits(q, visible, outside);
    limits.memory_bytes = memory_bytes;  // this execution's: the state must fit in it
    auto made = Sandbox::Create(limits);
    if (!made.ok()) return made.status();
    LiveSession s;
    s.over_quota = visible.file_count + outside.file_count > *q.max_files ||
                   visible.total_bytes + outside.total_bytes > *q.max_total_bytes;
    s.quotas = quotas;
    s.sandbox = std::move(made.value());
    for (const store::FileInfo& f : files) {
      if (!GuestVisible(f.path)) continue;  // kept in the store, not mounted in the guest
      // A row the sandbox cannot hold (a name an older brig accepted, a file where a
      // directory should be) stays in the store and is reported; the session still loads.
      Status loaded;
      if (const char* fault = names::CheckPath(f.path)) {
        loaded = Status::InvalidArgument(fault);
      } else if (f.is_directory()) {
        loaded = s.sandbox->MakeDirectory(f.path);
        if (loaded.ok()) s.dirs.insert(f.path);
      } else {
        auto data = content(f);
        if (!data.ok()) return data.status();
        loaded = s.sandbox->WriteFile(f.path, data.value());
      }
      if (!loaded.ok()) result->not_restored[f.path] = "file not loaded into the sandbox: " + loaded.message();
    }
    result->restored_from = "new";
    return s;
  }

  // Puts `state` into `sandbox` (which holds the session's files): its page snapshot if it
  // restores here, else its portable one; result->restored_from says which. When the page
  // snapshot did not restore, *pages_failure says why. Error (the sandbox is then unusable
  // for it) when neither restores.
  Status Restore(Sandbox& sandbox, const StoredState& state, SessionResult* result, std::string* pages_failure) {
    Status pages = state.pages.empty() ? Status::FailedPrecondition("the session was saved without a page snapshot")
                                       : sandbox.RestorePages(state.pages);
    if (pages.IsResourceExhausted()) {
      // Too big for this execution's memory limit: refused, not loaded from the portable
      // snapshot (whose save would then replace the exact one).
      *pages_failure = pages.message();
      return Status::FailedPrecondition(pages.message() + " of this execution (run it with a higher memory limit)");
    }
    if (pages.ok()) {
      result->restored_from = "pages";
      result->not_portable = state.not_portable;
    } else if (!state.portable.empty()) {
      // Another guest build or image (or a damaged page snapshot): the portable namespace.
      *pages_failure = pages.message();
      auto failed = sandbox.LoadPortable(state.portable);
      if (!failed.ok()) return Status::Internal("cannot restore the session: " + pages.message() + "; portable: " + failed.status().message());
      result->restored_from = "portable";
      result->not_restored.merge(failed.value());
      for (const auto& [name, why] : state.not_portable) result->not_restored.emplace(name, "not saved portably: " + why);
    } else {
      *pages_failure = pages.message();
      return Status::FailedPrecondition("cannot restore the session: " + pages.message() + " (and it has no portable snapshot)");
    }
    // A fork's state: its own random numbers from here on (see state_format.h).
    if (state.reseed) sandbox.ReseedRandom();
    return Status::Ok();
  }

  // Saves what the execution changed. On error nothing is saved.
  Status Save(std::string_view thread_id, LiveSession& s, SessionResult* result) {
    Sandbox& sandbox = *s.sandbox;
    FileVersions now = VersionsOf(sandbox);
    const std::vector<std::string> empty_dirs = sandbox.ListEmptyDirectories();
    std::set<std::string> dirs_now(empty_dirs.begin(), empty_dirs.end());
    std::vector<store::FileWrite> upserts;
    std::vector<std::string> deletes;
    // Only the files the execution changed are read; what all of them take comes from the
    // file system's own counters.
    for (const auto& [path, version] : now) {
      auto before = s.files.find(path);
      if (before != s.files.end() && before->second == version) continue;
      auto content = sandbox.ReadFile(path);
      if (!content) continue;
      upserts.push_back({path, std::move(*content), ""});
    }
    for (const std::string& dir : dirs_now) {
      if (!s.dirs.count(dir)) upserts.push_back({dir, "", std::string(store::kDirectoryType)});
    }
    // A path that changed kind (file <-> empty directory) is upserted, not deleted.
    for (const auto& [path, version] : s.files) {
      if (!now.count(path) && !dirs_now.count(path)) deletes.push_back(path);
    }
    for (const std::string& dir : s.dirs) {
      if (!dirs_now.count(dir) && !now.count(dir)) deletes.push_back(dir);
    }
    const Sandbox::FileUsage in_guest = sandbox.GetFileUsage();
    store::FileUsage usage{static_cast<int64_t>(in_guest.files), static_cast<int64_t>(in_guest.bytes)};
    // Files the store holds outside the guest's view count towards the quota too. The guest's
    // file system was given the quotas as limits (SandboxLimits), so this is a backstop: it
    // refuses the save of a session that was already over a quota when it was loaded.
    auto stored = store->ListFiles(thread_id);
    if (!stored.ok()) return stored.status();
    for (const auto& f : stored.value()) {
      if (!GuestVisible(f.path) && !f.is_directory()) {
        usage.file_count++;
        usage.total_bytes += f.size;
      }
    }
    if (Status q = manager->CheckQuota(thread_id, s.quotas, usage); !q.ok()) return q;

    StoredState state;
    if (Status kept = Snapshot(sandbox, &state, result); !kept.ok()) return kept;
    store::StateWrite write{session::EncodeState(state), std::string(kStateFormat), std::string(Sandbox::GuestBuildId())};
    auto version = store->SaveExecution(thread_id, s.version, write, upserts, deletes);
    if (!version.ok()) return version.status();
    s.version = version.value();
    s.files = std::move(now);
    s.dirs = std::move(dirs_now);
    result->version = s.version;
    result->saved = true;
    result->not_portable = std::move(state.not_portable);
    for (const auto& f : upserts) result->files_saved.push_back(f.path);
    result->files_deleted = std::move(deletes);
    return Status::Ok();
  }

  // The interpreter's state into `state`: a page snapshot when the sandbox can make one, and
  // the portable snapshot beside it (as a fallback for other builds). A sandbox that can make
  // no page snapshot (cold-started, no image, an image that could not be read) is saved by
  // its portable snapshot alone, and result->snapshot says so. Refused (nothing saved) only
  // when neither can hold the state: then the error names what could not be saved.
  Status Snapshot(Sandbox& sandbox, StoredState* state, SessionResult* result) {
    auto pages = sandbox.SavePages();
    if (pages.ok()) {
      state->pages = std::move(pages.value());
      result->snapshot = "pages";
    } else {
      result->snapshot = "portable";
      result->pages_unavailable = pages.status().message();
    }
    if (!options.portable_snapshots && pages.ok()) return Status::Ok();
    auto portable = sandbox.SavePortable();
    if (portable.ok()) {
      state->portable = std::move(portable.value().data);
      state->not_portable = std::move(portable.value().skipped);
    } else {
      state->not_portable["*"] = portable.status().message();
    }
    if (pages.ok()) return Status::Ok();
    if (!portable.ok() || !state->not_portable.empty()) {
      std::string names;
      for (const auto& [name, why] : state->not_portable) {
        names += (names.empty() ? "" : "; ") + (name == "*" ? std::string("the namespace") : name) + " (" + why + ")";
      }
      return Status::FailedPrecondition("no page snapshot can be made (" + pages.status().message() +
                                        ") and the portable snapshot cannot hold: " + names);
    }
    return Status::Ok();
  }
};

Sessions::Sessions(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sessions::~Sessions() = default;

StatusOr<std::unique_ptr<Sessions>> Sessions::Open(const Options& options) {
  if (options.pool_size < 1) return Status::InvalidArgument("pool_size must be at least 1");
  StoreOptions store_options;
  store_options.pool_size = options.pool_size;
  store_options.statement_timeout = options.statement_timeout;
  auto store = Store::Open(options.store_url, store_options);
  if (!store.ok()) return store.status();
  auto sessions = Open(*store.value(), options);
  if (!sessions.ok()) return sessions.status();
  sessions.value()->impl_->owned_store = std::move(store.value());
  return sessions;
}

StatusOr<std::unique_ptr<Sessions>> Sessions::Open(Store& store, const Options& options) {
  if (options.max_files_per_session < 1 || options.max_bytes_per_session < 1) {
    return Status::InvalidArgument("session quotas must be positive");
  }
  if (options.default_expiry_days < 1 || options.default_expiry_days > kMaxExpiryDays) {
    return Status::InvalidArgument("default_expiry_days must be 1 to " + std::to_string(kMaxExpiryDays));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->store = &internal::Access::Backend(store);
  SessionOptions so;
  so.default_expiry_days = options.default_expiry_days;
  so.max_files_per_session = options.max_files_per_session;
  so.max_bytes_per_session = options.max_bytes_per_session;
  so.lock_timeout = options.lock_timeout;
  so.clock = NowMicros;
  impl->public_manager = std::make_unique<SessionManager>(store, so);
  impl->manager = &internal::Access::Manager(*impl->public_manager);
  impl->files = std::make_unique<FileService>(*impl->public_manager);
  return std::unique_ptr<Sessions>(new Sessions(std::move(impl)));
}

SessionManager& Sessions::manager() { return *impl_->public_manager; }
FileService& Sessions::files() { return *impl_->files; }

StatusOr<SessionResult> Sessions::Execute(std::string_view thread_id, std::string_view code,
                                          std::string_view filename) {
  return Execute(thread_id, code, ExecuteOptions{}, filename);
}

StatusOr<SessionResult> Sessions::Execute(std::string_view thread_id, std::string_view code,
                                          const ExecuteOptions& options, std::string_view filename) {
  Impl& impl = *impl_;
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  // This execution's limits, explicit: a live sandbox may have been made under another's.
  ExecuteOptions call = options;
  call.timeout_seconds = options.timeout_seconds.value_or(impl.options.limits.timeout_seconds);
  call.memory_bytes = options.memory_bytes.value_or(impl.options.limits.memory_bytes);
  Limits checked = impl.options.limits;
  checked.timeout_seconds = *call.timeout_seconds;
  checked.memory_bytes = *call.memory_bytes;
  if (Status s = ValidateLimits(checked); !s.ok()) return s;
  auto lock = impl.store->LockSession(thread_id, impl.options.lock_timeout);
  if (!lock.ok()) return lock.status();
  auto info = impl.manager->GetOrCreate(thread_id);
  if (!info.ok()) return info.status();
  auto stored = impl.store->GetState(thread_id);
  if (!stored.ok()) return stored.status();
  int64_t stored_version = stored.value() ? stored.value()->version : 0;

  SessionResult result;
  const int64_t created_at = info.value().created_at;
  std::optional<LiveSession> live = impl.TakeLive(thread_id);
  if (live && live->version == stored_version && live->created_at == created_at) {
    result.restored_from = "live";
  } else {
    // Absent, or another process saved a newer version since (or the session was made
    // again): restore from the store.
    auto loaded = impl.Load(thread_id, created_at, info.value().quotas, stored.value(), *call.memory_bytes, &result);
    if (!loaded.ok()) return loaded.status();
    live = std::move(loaded.value());
  }
  result.version = live->version;
  auto ran = live->sandbox->Execute(code, call, filename);
  if (!ran.ok()) {
    // Refused before running (a limit it cannot honour): the session is as it was.
    if (!live->over_quota) impl.PutLive(thread_id, std::move(*live));
    return ran.status();
  }
  result.execution = std::move(ran.value());
  const Failure failure = result.execution.failure;
  if (failure != Failure::kNone) {
    // Timeout, trap, exit or a broken guest: nothing is saved. The sandbox was rolled back to
    // the state it had before (the saved version), so it stays live; one that could not be
    // rolled back is dropped, and the next execution restores the saved state.
    if (live->sandbox->usable() && !live->over_quota) impl.PutLive(thread_id, std::move(*live));
    return result;
  }
  if (Status saved = impl.Save(thread_id, *live, &result); !saved.ok()) {
    return saved.WithPrefix("the code ran but its session could not be saved (the session is unchanged): ");
  }
  // A session loaded over its quotas (and now back under them, or the save would have been
  // refused) is loaded again next time, with the quotas as its limits.
  if (!live->over_quota) {
    // Kept live: give back the pages that hold the image's bytes again (~a third of a small
    // session's; tens of µs, against the milliseconds of the save just done).
    (void)live->sandbox->Trim();
    impl.PutLive(thread_id, std::move(*live));
  }
  return result;
}

size_t Sessions::LiveSessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->live.size();
}

size_t Sessions::CompactIdle() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->CompactIdleLocked(SIZE_MAX);
}

Status Sessions::Reset(std::string_view thread_id) {
  Status s = impl_->manager->Reset(thread_id);
  impl_->DropLive(thread_id);
  return s;
}

// ---- Snapshots (session/snapshot_format.h).

StatusOr<std::string> Sessions::ExportSnapshot(std::string_view thread_id) {
  Impl& impl = *impl_;
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  // Under the lock: the state and the files are those of one moment between executions.
  auto lock = impl.store->LockSession(thread_id, impl.options.lock_timeout);
  if (!lock.ok()) return lock.status();
  auto info = impl.manager->Use(thread_id);
  if (!info.ok()) return info.status();
  session::SessionSnapshot snap;
  snap.thread_id = std::string(thread_id);
  snap.exported_at = impl.manager->Now();
  snap.metadata = info.value().metadata;
  auto stored = impl.store->GetState(thread_id);
  if (!stored.ok()) return stored.status();
  if (stored.value() && !stored.value()->cleared()) {
    const store::SessionState& st = *stored.value();
    std::optional<StoredState> state;
    if (st.format == kStateFormat) state = session::DecodeState(st.snapshot);
    if (!state) {
      return Status::Internal("the stored state of " + std::string(thread_id) + " is unreadable (format '" + st.format + "')");
    }
    snap.has_state = true;
    if (!state->pages.empty()) {
      // The page snapshot's own header says what it is tied to; one that cannot say would
      // restore nowhere, and is left out (the portable snapshot stands in, as on a load).
      auto origin = Sandbox::PageSnapshotOrigin(state->pages);
      if (origin.ok() && !origin.value().guest_build_id.empty() && !origin.value().image_digest.empty()) {
        snap.guest_build_id = std::move(origin.value().guest_build_id);
        snap.image_digest = std::move(origin.value().image_digest);
        snap.pages = std::move(state->pages);
      }
    }
    snap.portable = std::move(state->portable);
    snap.not_portable = std::move(state->not_portable);
    if (snap.pages.empty() && snap.portable.empty()) {
      return Status::Internal("the stored state of " + std::string(thread_id) + " has no readable snapshot");
    }
  }
  auto files = impl.store->ListFiles(thread_id);
  if (!files.ok()) return files.status();
  for (const store::FileInfo& f : files.value()) {
    if (Status v = store::ValidateFilePath(f.path); !v.ok()) {
      return Status::FailedPrecondition("cannot export " + std::string(thread_id) + ": its file '" + f.path +
                                        "' has a name this brig no longer accepts (" + v.message() + ")");
    }
    session::SnapshotFile file{f.path, f.content_type, ""};
    if (!f.is_directory()) {
      auto data = impl.store->GetFile(thread_id, f.path);
      if (!data.ok()) return data.status();
      file.content = std::move(data.value().content);
    }
    snap.files.push_back(std::move(file));
  }
  return session::EncodeSnapshot(snap);
}

StatusOr<ImportResult> Sessions::ImportSnapshot(std::string_view thread_id, std::string_view bytes,
                                                const ImportOptions& import) {
  Impl& impl = *impl_;
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  const int64_t days = import.expiry_days.value_or(impl.options.default_expiry_days);
  if (days < 1 || days > kMaxExpiryDays) {
    return Status::InvalidArgument("expiry must be 1 to " + std::to_string(kMaxExpiryDays) + " days, not " +
                                   std::to_string(days));
  }
  if (import.metadata && !import.metadata->is_object() && !import.metadata->is_null()) {
    return Status::InvalidArgument("session metadata must be a JSON object");
  }
  session::SnapshotLimits limits;
  limits.max_files = impl.options.max_files_per_session;
  limits.max_bytes = impl.options.max_bytes_per_session;
  // Empty directories: the sandbox's own allowance (as many as files, at least 1000).
  limits.max_directories = std::max<int64_t>(impl.options.max_files_per_session, 1000);
  auto decoded = session::DecodeSnapshot(bytes, limits);
  if (!decoded.ok()) return decoded.status();
  session::SessionSnapshot& snap = decoded.value();
  if (!snap.pages.empty()) {
    auto origin = Sandbox::PageSnapshotOrigin(snap.pages);
    if (!origin.ok()) return Status::InvalidArgument("damaged snapshot: its page snapshot: " + origin.status().message());
    if (origin.value().guest_build_id != snap.guest_build_id || origin.value().image_digest != snap.image_digest) {
      return Status::InvalidArgument(
          "damaged snapshot: its header's guest build and image digest are not its page snapshot's");
    }
  }
  StatusOr<bool> taken = impl.store->SessionExists(thread_id);
  if (!taken.ok()) return taken.status();
  if (taken.value()) return Status::AlreadyExists("session '" + std::string(thread_id) + "' already exists");
  // Executions of the new thread_id wait until it is made whole.
  auto lock = impl.store->LockSession(thread_id, impl.options.lock_timeout);
  if (!lock.ok()) return lock.status();

  // Try it first, as an execution would load it: the files, then the state.
  std::vector<store::FileInfo> infos;
  std::map<std::string_view, const std::string*> contents;
  for (const session::SnapshotFile& f : snap.files) {
    infos.push_back(store::FileInfo{f.path, f.content_type, static_cast<int64_t>(f.content.size()), 0, 0});
    contents[f.path] = &f.content;
  }
  auto content = [&](const store::FileInfo& f) -> StatusOr<std::string> { return *contents.at(f.path); };
  SessionResult trial;
  // The trial restore only checks that the state restores here: under the largest memory
  // limit, so that a big session is never cut down to its portable part for want of memory
  // (its executions need a limit that holds it, and say so).
  auto built = impl.Build(infos, content, store::SessionQuotas{}, kMaxMemoryBytes, &trial);
  if (!built.ok()) return built.status();
  ImportResult out;
  out.restored_from = "new";
  std::optional<store::StateWrite> state_write;
  if (snap.has_state) {
    StoredState state{std::move(snap.pages), std::move(snap.portable), snap.not_portable, false};
    std::string pages_failure;
    if (Status restored = impl.Restore(*built.value().sandbox, state, &trial, &pages_failure); !restored.ok()) {
      if (state.portable.empty()) {
        auto here = Sandbox::ImageDigest();
        return Status::FailedPrecondition(
            "cannot import: the snapshot's interpreter state is a page snapshot of guest build " + snap.guest_build_id +
            " (image " + snap.image_digest + "), which does not restore here (this brig: guest build " +
            std::string(Sandbox::GuestBuildId()) + ", image " + (here.ok() ? here.value() : "none") + "): " +
            pages_failure + "; and the snapshot has no portable part to fall back to");
      }
      return Status::InvalidArgument("damaged snapshot: " + restored.message());
    }
    if (trial.restored_from == "portable" && !state.pages.empty()) {
      // Kept out of the store: it would fail the same way at every load.
      out.pages_dropped = pages_failure;
      state.pages.clear();
    }
    state_write = store::StateWrite{session::EncodeState(state), std::string(kStateFormat),
                                    std::string(Sandbox::GuestBuildId())};
    out.restored_from = trial.restored_from;
  }
  out.not_restored = std::move(trial.not_restored);
  built.value().sandbox.reset();

  std::vector<store::FileWrite> files;
  files.reserve(snap.files.size());
  for (session::SnapshotFile& f : snap.files) {
    files.push_back(store::FileWrite{std::move(f.path), std::move(f.content), std::move(f.content_type)});
  }
  const nlohmann::json& metadata = import.metadata ? *import.metadata : snap.metadata;
  if (Status s = impl.store->CreateSessionWith(thread_id, impl.manager->Now() + days * kMicrosPerDay, metadata,
                                               state_write, files);
      !s.ok()) {
    return s;
  }
  auto info = impl.store->GetSession(thread_id);
  if (!info.ok()) return info.status();
  out.session = std::move(info.value());
  out.source_thread_id = std::move(snap.thread_id);
  out.exported_at = snap.exported_at;
  out.source_guest_build_id = std::move(snap.guest_build_id);
  return out;
}

}  // namespace brig
