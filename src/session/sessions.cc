// brig::Sessions: load a session into a sandbox, execute, save state and changed files.
//
// Stored state format "brig-session/1" (integers little-endian):
//   u64 page snapshot length | page snapshot (Sandbox::SavePages)
//   | u64 portable length | portable snapshot (may be empty)
//   | JSON {"not_portable": {name: why}}
#include "brig/sessions.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <cstring>
#include <list>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "names/path_rules.h"
#include "session/session_manager.h"
#include "store/store.h"
#include "util/little_endian.h"

namespace brig {
namespace {

constexpr std::string_view kStateFormat = "brig-session/1";

using FileVersions = std::map<std::string, std::pair<uint64_t, uint64_t>>;

// A session's interpreter held between executions, with what the store had when it was
// last loaded or saved.
struct LiveSession {
  std::unique_ptr<Sandbox> sandbox;
  int64_t version = 0;
  FileVersions files;
  // The empty directories the store holds for it (rows of store::kDirectoryType).
  std::set<std::string> dirs;
  // Loaded while the session held more than its quotas allow: the sandbox's file limits are
  // what was loaded (see SandboxLimits), not the quotas, so it is not kept live.
  bool over_quota = false;
  // When it was last put back live, and whether it was compacted since.
  std::chrono::steady_clock::time_point idle_since{};
  bool compacted = false;
};

struct SessionState {
  std::string pages;
  std::string portable;
  std::map<std::string, std::string> not_portable;
};

std::string EncodeState(const SessionState& s) {
  std::string out;
  auto put = [&out](std::string_view bytes) {
    AppendLe64(&out, bytes.size());
    out.append(bytes);
  };
  put(s.pages);
  put(s.portable);
  out += nlohmann::json({{"not_portable", s.not_portable}}).dump();
  return out;
}

// Stored bytes are untrusted: every length is checked.
std::optional<SessionState> DecodeState(std::string_view in) {
  SessionState s;
  LeReader r(in);
  for (std::string* part : {&s.pages, &s.portable}) {
    uint64_t n = 0;
    std::string_view bytes;
    if (!r.U64(&n) || !r.Bytes(n, &bytes)) return std::nullopt;
    part->assign(bytes);
  }
  nlohmann::json j = nlohmann::json::parse(r.rest(), nullptr, false);
  if (j.is_object() && j.contains("not_portable") && j["not_portable"].is_object()) {
    for (const auto& [name, why] : j["not_portable"].items()) {
      if (why.is_string()) s.not_portable[name] = why.get<std::string>();
    }
  }
  return s;
}

bool GuestVisible(std::string_view path) { return path.starts_with("/home/user/") || path.starts_with("/tmp/"); }

FileVersions VersionsOf(const Sandbox& sandbox) {
  FileVersions v;
  for (const auto& f : sandbox.ListFiles()) v[f.path] = f.version;
  return v;
}

}  // namespace

struct Sessions::Impl {
  Options options;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<session::SessionManager> manager;

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
  Limits SandboxLimits(const store::FileUsage& visible, const store::FileUsage& outside) const {
    auto room = [](int64_t quota, int64_t taken, int64_t loaded) {
      return static_cast<uint64_t>(std::max({quota - taken, loaded, int64_t{0}}));
    };
    Limits l = options.limits;
    l.file_bytes = room(options.max_bytes_per_session, outside.total_bytes, visible.total_bytes);
    l.max_file_bytes = static_cast<uint64_t>(store::kMaxFileBytes);
    // Regular files only: directories have their own allowance in the sandbox.
    l.max_files = room(options.max_files_per_session, outside.file_count, visible.file_count);
    return l;
  }

  // A sandbox holding the session's stored files and state (version `stored`).
  StatusOr<LiveSession> Load(std::string_view thread_id, const std::optional<store::SessionState>& stored,
                             uint64_t memory_bytes, SessionResult* result) {
    auto files = store->ListFiles(thread_id);
    if (!files.ok()) return files.status();
    store::FileUsage visible, outside;
    for (const store::FileInfo& f : files.value()) {
      if (f.is_directory()) continue;
      store::FileUsage& u = GuestVisible(f.path) ? visible : outside;
      u.file_count++;
      u.total_bytes += f.size;
    }
    Limits limits = SandboxLimits(visible, outside);
    limits.memory_bytes = memory_bytes;  // this execution's: the state must fit in it
    auto made = Sandbox::Create(limits);
    if (!made.ok()) return made.status();
    LiveSession s;
    s.over_quota = visible.file_count + outside.file_count > options.max_files_per_session ||
                   visible.total_bytes + outside.total_bytes > options.max_bytes_per_session;
    s.sandbox = std::move(made.value());
    s.version = stored ? stored->version : 0;
    for (const store::FileInfo& f : files.value()) {
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
        auto data = store->GetFile(thread_id, f.path);
        if (!data.ok()) return data.status();
        loaded = s.sandbox->WriteFile(f.path, data.value().content);
      }
      if (!loaded.ok()) result->not_restored[f.path] = "file not loaded into the sandbox: " + loaded.message();
    }
    result->restored_from = "new";
    if (stored && !stored->cleared()) {
      std::optional<SessionState> state;
      if (stored->format == kStateFormat) state = DecodeState(stored->snapshot);
      if (!state) return Status::Internal("the stored state of " + std::string(thread_id) + " is unreadable (format '" + stored->format + "')");
      Status pages = state->pages.empty()
                         ? Status::FailedPrecondition("the session was saved without a page snapshot")
                         : s.sandbox->RestorePages(state->pages);
      if (pages.IsResourceExhausted()) {
        // Too big for this execution's memory limit: refused, not loaded from the portable
        // snapshot (whose save would then replace the exact one).
        return Status::FailedPrecondition(pages.message() + " of this execution (run it with a higher memory limit)");
      }
      if (pages.ok()) {
        result->restored_from = "pages";
        result->not_portable = state->not_portable;
      } else if (!state->portable.empty()) {
        // Another guest build (or a damaged page snapshot): the portable namespace.
        auto failed = s.sandbox->LoadPortable(state->portable);
        if (!failed.ok()) return Status::Internal("cannot restore the session: " + pages.message() + "; portable: " + failed.status().message());
        result->restored_from = "portable";
        result->not_restored.merge(failed.value());
        for (const auto& [name, why] : state->not_portable) result->not_restored.emplace(name, "not saved portably: " + why);
      } else {
        return Status::FailedPrecondition("cannot restore the session: " + pages.message() + " (and it has no portable snapshot)");
      }
    }
    s.files = VersionsOf(*s.sandbox);
    return s;
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
    if (Status q = manager->CheckQuota(thread_id, usage); !q.ok()) return q;

    SessionState state;
    if (Status kept = Snapshot(sandbox, &state, result); !kept.ok()) return kept;
    store::StateWrite write{EncodeState(state), std::string(kStateFormat), std::string(Sandbox::GuestBuildId())};
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
  Status Snapshot(Sandbox& sandbox, SessionState* state, SessionResult* result) {
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
  if (options.max_files_per_session < 1 || options.max_bytes_per_session < 1) {
    return Status::InvalidArgument("session quotas must be positive");
  }
  if (options.pool_size < 1) return Status::InvalidArgument("pool_size must be at least 1");
  store::StoreOptions store_options;
  store_options.pool_size = options.pool_size;
  store_options.statement_timeout = options.statement_timeout;
  auto store = store::OpenStore(options.store_url, store_options);
  if (!store.ok()) return store.status();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->store = std::move(store.value());
  session::SessionOptions so;
  so.default_expiry_days = options.default_expiry_days;
  so.max_files_per_session = options.max_files_per_session;
  so.max_bytes_per_session = options.max_bytes_per_session;
  so.lock_timeout = options.lock_timeout;
  so.clock = store::NowMicros;
  impl->manager = std::make_unique<session::SessionManager>(*impl->store, so);
  return std::unique_ptr<Sessions>(new Sessions(std::move(impl)));
}

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
  std::optional<LiveSession> live = impl.TakeLive(thread_id);
  if (live && live->version == stored_version) {
    result.restored_from = "live";
  } else {
    // Absent, or another process saved a newer version since: restore from the store.
    auto loaded = impl.Load(thread_id, stored.value(), *call.memory_bytes, &result);
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

}  // namespace brig
