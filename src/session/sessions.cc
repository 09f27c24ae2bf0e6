// brig::Sessions: load a session into a sandbox, execute, save state and changed files;
// export and import a session as snapshot bytes. The stored state's format is
// session/state_format.h, the snapshot's session/snapshot_format.h. The store's fallback of
// the state (store::SessionState::fallback) has the same format with no page snapshot: the
// portable snapshot taken after the save (Options::portable_in_background), with the version
// it was taken at. A restore that cannot use the page snapshot takes the state's own portable
// snapshot when it has one (saved with it), else the fallback's, which may be older.
#include "brig/sessions.h"

#include <sys/random.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <iterator>
#include <list>
#include <set>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "api/access.h"
#include "names/path_rules.h"
#include "sandbox/image_seed.h"
#include "session/session_manager.h"
#include "session/snapshot_format.h"
#include "session/state_format.h"
#include "session/stored_state.h"
#include "store/content_type.h"
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
  // What its stored files outside the guest's view take (counted at every save against the
  // quotas). Fixed while it is live: the guest cannot reach them, and a file written through
  // the API bumps the state version (FileService), so the session is loaded again.
  store::FileUsage outside;
  // The session's own quotas (fixed at its creation, so they hold as long as created_at).
  store::SessionQuotas quotas;
  // What its sandbox held when it was last put back live, compacted or trimmed
  // (Sandbox::PrivateBytes), counted against Options::max_live_bytes.
  uint64_t bytes = 0;
  // When it was last put back live, and whether it was compacted since.
  std::chrono::steady_clock::time_point idle_since{};
  bool compacted = false;
  // Trimmed (Sandbox::Trim) since it was last put back live.
  bool trimmed = false;
  // Its portable snapshot is still to be taken (of `version`) and stored as the fallback;
  // since when one has been owed (kept while executions follow one another).
  bool portable_pending = false;
  std::chrono::steady_clock::time_point pending_since{};
  // When its last portable snapshot was taken here (Options::portable_min_interval); none yet:
  // nothing to space the first one from (not the clock's zero, which is when the machine
  // booted: a machine up for less than the interval held back every session's first one).
  std::optional<std::chrono::steady_clock::time_point> portable_taken_at;
  // What the last portable snapshot of it could not hold (reported with results).
  std::map<std::string, std::string> not_portable;
  // Executions ran in it with a deferred save (ExecuteOptions::deferred_save) that the store
  // does not have yet; since when. The session's expiry as last read, for those executions
  // (they do not read the store).
  bool save_pending = false;
  std::chrono::steady_clock::time_point save_pending_since{};
  int64_t expires_at = 0;
  // Loaded because the copy before it was stale (another process saved the session in
  // between): its executions read the store first until one finds it current, so that a
  // session that alternates between processes (nodes behind a load balancer without
  // affinity) is not run twice each time (Execute).
  bool read_first = false;
  // How long its last execution ran (Sessions::TryExecuteLive runs only quick ones).
  std::chrono::steady_clock::duration last_run{};
  // The pages of the state the store holds at `version` (what its last saved or restored
  // page snapshot holds): the next save stores a delta against them (StateWrite::delta)
  // until the deltas outgrow the whole snapshot. Null: the next save is whole.
  std::shared_ptr<const Sandbox::PageRecords> stored_pages;
  size_t whole_bytes = 0;   // the stored whole state's size
  size_t delta_bytes = 0;   // the deltas stored since it
  int64_t delta_count = 0;
};

// A save stores the whole state again (and drops the deltas) once the deltas since the last
// whole one take twice its size, or number this many: a load then reads at most about three
// times the state's size, and applies a bounded number of deltas. (At twice, PostgreSQL's
// time per save averaged 307 µs against 368 µs at once its size: bench/RESULTS.md.)
constexpr int64_t kMaxDeltas = 64;

// Options::max_running: a counting gate (Impl::run_slots) on the executions doing their CPU
// work. An execution takes a slot before anything else (so that whoever holds a session's lock
// or checkout holds a slot too, or is past its CPU work: no cycle of waits), and gives it back
// when its save goes to the store, whose commit (a group's flush) it then waits for without
// one. The slot this thread holds, if any, is found through a thread-local pointer, because
// the save is reached down several calls.
// A mutex and a condition variable, not std::counting_semaphore: libstdc++'s semaphore spins
// with sched_yield before it sleeps, and under load each yield handed the CPU to another
// thread (~3 per durable execution in a worker, bench/RESULTS.md stop 24); a waiter here
// sleeps at once and is woken by the release.
class RunSlots {
 public:
  explicit RunSlots(int slots) : free_(slots) {}
  void acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    if (free_ == 0) {
      ++waiting_;
      freed_.wait(lock, [&] { return free_ > 0; });
      --waiting_;
    }
    --free_;
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    ++free_;
    if (waiting_ > 0) freed_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable freed_;
  int free_;         // GUARDED_BY(mu_)
  int waiting_ = 0;  // GUARDED_BY(mu_)
};

// One execution's slot, held from construction until Release() or destruction. Without
// slots (max_running 0) it holds nothing.
class RunSlot {
 public:
  explicit RunSlot(RunSlots* slots) : slots_(slots) {
    if (!slots_) return;
    slots_->acquire();
    outer_ = current_;
    current_ = this;
  }
  ~RunSlot() { Release(); }
  RunSlot(const RunSlot&) = delete;
  RunSlot& operator=(const RunSlot&) = delete;
  void Release() {
    if (!slots_) return;
    slots_->release();
    slots_ = nullptr;
    current_ = outer_;
  }
  // Gives back the slot this thread's execution holds (before waiting for a commit).
  static void ReleaseCurrent() {
    if (current_) current_->Release();
  }

 private:
  RunSlots* slots_;
  RunSlot* outer_ = nullptr;
  static thread_local RunSlot* current_;
};
thread_local RunSlot* RunSlot::current_ = nullptr;

// A live session in the list, with the thread_id it belongs to.
struct LiveEntry {
  std::string thread_id;
  LiveSession s;
  // The background thread is taking its portable snapshot: nobody else touches it.
  bool busy = false;
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
  // Options::state_deltas, resolved against the store's backend.
  bool state_deltas = false;
  std::unique_ptr<Store> owned_store;  // null when the store is borrowed (Open(Store&, ...))
  store::Store* store = nullptr;
  std::unique_ptr<SessionManager> public_manager;
  session::SessionManager* manager = nullptr;  // the policy behind public_manager
  std::unique_ptr<FileService> files;
  // Options::max_running's gate; null when unbounded.
  std::unique_ptr<RunSlots> run_slots;

  // Live sessions, most recently used first. `mu` guards the lists, not the sandboxes: a
  // sandbox taken out is owned by the one execution that took it (its thread_id is then in
  // `checked_out`), and one marked busy by the background thread.
  mutable std::mutex mu;
  std::condition_variable changed;  // an entry stopped being busy or checked out
  // The background thread's own wake-up, and when it looks again on its own (min while it
  // works). Not `changed`: every execution notifies that, and waking the background thread
  // for each one cost a context switch per execution (a tenth of the CPU of non-durable
  // executions under load, bench/serve_load.py); it is woken only for work due sooner.
  std::condition_variable background_wake;
  std::chrono::steady_clock::time_point background_until = std::chrono::steady_clock::time_point::min();
  std::list<LiveEntry> live;
  // The sum of `bytes` over `live` (Options::max_live_bytes), kept as entries come, go and
  // change size: PutLive runs once per execution, and summing a list of up to max_live
  // scattered nodes there would be a cache miss per session.
  uint64_t live_bytes = 0;
  // Entries pushed out of `live` that still owe the store something (a deferred save, a
  // portable snapshot): the background thread writes them, then drops them. TakeLive takes
  // one back if it is not being written.
  std::list<LiveEntry> evicted;
  // Each entry of `live` and `evicted` by its thread_id (a session is in one of them at most):
  // a worker looks its session up on every execution, and walking a list of 64 nodes was
  // ~3 µs of a non-durable `x = 1`'s ~50 (bench/RESULTS.md, 2026-12-05). Iterators into a
  // std::list survive splices, so an entry moving from `live` to `evicted` keeps its place
  // here (only `list` changes).
  struct Where {
    std::list<LiveEntry>* list;
    std::list<LiveEntry>::iterator it;
  };
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
  };
  std::unordered_map<std::string, Where, IdHash, std::equal_to<>> where;
  // Sessions whose live interpreter an execution (or a store use) holds, live or not: one
  // holder per session in this process, so that nobody loads a second, stale interpreter.
  std::set<std::string, std::less<>> checked_out;
  std::thread background;  // Housekeeping, started with the first live session
  bool stopping = false;
  int64_t deferred_lost = 0;  // GUARDED_BY(mu): deferred saves the store refused
  std::atomic<int64_t> stale_runs{0};  // executions run again (Sessions::StaleLiveRuns)

  // A live session unused this long gets its pages that hold the image's bytes again given
  // back (Sandbox::Trim, ~a third of a small session's memory). Not after every execution:
  // the trim (~0.3 ms) and the page faults it costs the next execution (~0.1 ms) were a
  // fifth of a durable `x = 1` (bench/save_path_bench).
  static constexpr auto kTrimIdleAfter = std::chrono::seconds(1);

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
      changed.notify_all();
      background_wake.notify_all();
    }
    // It writes every deferred save and portable snapshot still pending before it ends.
    if (background.joinable()) background.join();
  }

  static bool Owes(const LiveSession& s) { return s.save_pending || s.portable_pending; }

  // The entry of `thread_id` in `live` or `evicted`, if there is one. REQUIRES: mu held.
  const Where* Find(std::string_view thread_id) const {
    auto found = where.find(thread_id);
    return found == where.end() ? nullptr : &found->second;
  }
  // Removes `w`'s entry from its list (and from `where`). REQUIRES: mu held.
  void Erase(const Where* w) {
    auto node = w->it;
    std::list<LiveEntry>* list = w->list;
    if (list == &live) live_bytes -= node->s.bytes;
    where.erase(node->thread_id);  // w points into `where`: not used past here
    list->erase(node);
  }
  // Sets the size of `s`, an entry of `live`. REQUIRES: mu held.
  void SetBytes(LiveSession& s, uint64_t bytes) {
    live_bytes = live_bytes - s.bytes + bytes;
    s.bytes = bytes;
  }

  // Checks `thread_id` out: waits until no other holder has it, then returns its live
  // interpreter if this process keeps one (nullopt if not). Either way the caller holds the
  // session in this process until it calls PutLive or Release (Checkout does).
  std::optional<LiveSession> TakeLive(std::string_view thread_id) {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      if (checked_out.count(thread_id)) {
        changed.wait(lock);
        continue;
      }
      if (const Where* w = Find(thread_id)) {
        if (w->it->busy) {  // the background thread writes it: a moment, not a restore
          changed.wait(lock);
          continue;
        }
        LiveSession s = std::move(w->it->s);
        Erase(w);
        checked_out.emplace(thread_id);
        return s;
      }
      checked_out.emplace(thread_id);
      return std::nullopt;
    }
  }

  // Whether Execute may run the live copy `s` with `call` without reading the store first:
  // nothing a run on a stale copy does may outlast it (see Execute), and the expiry it was
  // loaded with has not passed.
  bool MayRunUnread(const LiveSession& s, const ExecuteOptions& call) const {
    return !s.read_first && !call.on_output && options.limits.mounts.empty() && manager->Now() < s.expires_at;
  }

  // Whether the store still holds the session `s` is a live copy of, at its version, unexpired.
  bool StillStored(std::string_view thread_id, const LiveSession& s) {
    auto both = store->GetSessionAndStateVersion(thread_id);
    return both.ok() && both.value().first.created_at == s.created_at && both.value().second == s.version &&
           !manager->IsExpired(both.value().first);
  }

  // TakeLive without the wait: the live interpreter of `thread_id`, checked out, if this
  // process keeps one that nobody holds now and whose last execution ran within `quick`;
  // nullopt (and nothing checked out) otherwise.
  std::optional<LiveSession> TryTakeLive(std::string_view thread_id, std::chrono::steady_clock::duration quick) {
    std::lock_guard<std::mutex> lock(mu);
    if (checked_out.count(thread_id)) return std::nullopt;
    const Where* w = Find(thread_id);
    if (!w || w->it->busy || w->it->s.last_run > quick) return std::nullopt;
    LiveSession s = std::move(w->it->s);
    Erase(w);
    checked_out.emplace(thread_id);
    return s;
  }

  // Gives the session back without an interpreter (the caller drops it, if it had one).
  void Release(std::string_view thread_id) {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = checked_out.find(thread_id); it != checked_out.end()) checked_out.erase(it);
    changed.notify_all();
  }

  // Releases a checkout on scope exit unless PutLive gave the session back.
  struct Checkout {
    Impl* impl;
    std::string thread_id;
    bool held = true;
    ~Checkout() {
      if (held) impl->Release(thread_id);
    }
  };

  // A result of an execution in the live interpreter, before it runs.
  static SessionResult LiveResult(const LiveSession& s) {
    SessionResult result;
    result.restored_from = "live";
    result.version = s.version;
    result.not_portable = s.not_portable;
    return result;
  }

  // After an execution in the live interpreter that saves later: a successful one
  // (`owes_save`) is owed to the store; then `s` stays live, or, its sandbox no longer
  // usable, what it owed is counted lost (cannot happen after a rollback; counted if it
  // does). REQUIRES: `checkout` holds thread_id.
  void ReturnAfterLiveRun(std::string_view thread_id, LiveSession&& s, bool owes_save, Checkout& checkout) {
    if (owes_save) {
      if (!s.save_pending) s.save_pending_since = std::chrono::steady_clock::now();
      s.save_pending = true;
    }
    if (s.sandbox->usable()) {
      checkout.held = false;
      PutLive(thread_id, std::move(s));
    } else if (s.save_pending) {
      std::lock_guard<std::mutex> lock(mu);
      ++deferred_lost;
    }
  }

  // Keeps `s` live and releases the checkout. REQUIRES: the caller checked it out.
  void PutLive(std::string_view thread_id, LiveSession s) {
    s.idle_since = std::chrono::steady_clock::now();
    s.compacted = false;
    s.trimmed = false;
    s.bytes = options.max_live_bytes ? s.sandbox->PrivateBytes() : 0;
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = checked_out.find(thread_id); it != checked_out.end()) checked_out.erase(it);
    changed.notify_all();
    if (options.max_live == 0 && !Owes(s)) return;
    live.push_front(LiveEntry{std::string(thread_id), std::move(s), false});
    live_bytes += live.front().s.bytes;
    where.insert_or_assign(std::string(thread_id), Where{&live, live.begin()});
    if (!background.joinable()) background = std::thread([this] { Housekeeping(); });
    if (Owes(live.front().s) && DueAt(live.front().s) < background_until) background_wake.notify_one();
    // The least recently used go, except one the background thread holds; one that still
    // owes the store something goes to the background thread first. Past the byte bound
    // alone, never the session just put back.
    while (live.size() > options.max_live || live_bytes > options.max_live_bytes) {
      auto victim = std::prev(live.end());
      while (victim->busy && victim != live.begin()) --victim;
      if (victim->busy) break;
      if (live.size() <= options.max_live && victim == live.begin()) break;
      live_bytes -= victim->s.bytes;
      if (Owes(victim->s)) {
        where.find(victim->thread_id)->second.list = &evicted;
        evicted.splice(evicted.end(), live, victim);
        background_wake.notify_one();
      } else {
        where.erase(victim->thread_id);
        live.erase(victim);
      }
    }
    CompactIdleLocked(kCompactionsPerExecution);
  }

  // When `s` is due to have what it owes written (a deferred save, a portable snapshot).
  std::chrono::steady_clock::time_point DueAt(const LiveSession& s) const {
    auto due = std::chrono::steady_clock::time_point::max();
    if (s.save_pending) due = std::min(s.idle_since + options.save_delay, s.save_pending_since + options.save_max_lag);
    if (s.portable_pending) {
      auto idle_due = s.idle_since + options.portable_delay;
      if (s.portable_taken_at) idle_due = std::max(idle_due, *s.portable_taken_at + options.portable_min_interval);
      due = std::min(due, std::min(idle_due, s.pending_since + options.portable_max_lag));
    }
    return due;
  }

  // The background thread: writes what live sessions owe the store (Settle): the deferred
  // saves and portable snapshots of a session idle for save_delay / portable_delay, or owed
  // for save_max_lag / portable_max_lag, or pushed out of the live ones; on stopping, all of
  // them first. Also trims live sessions idle for kTrimIdleAfter.
  void Housekeeping() {
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      auto next = now + kTrimIdleAfter;  // when to look again
      std::list<LiveEntry>* list = nullptr;
      std::string id;
      if (!evicted.empty()) {
        for (const LiveEntry& e : evicted) {
          if (!e.busy) {
            list = &evicted;
            id = e.thread_id;
            break;
          }
        }
      }
      if (!list) {
        for (const LiveEntry& e : live) {
          if (!Owes(e.s) || e.busy) continue;
          const auto when = DueAt(e.s);
          if (stopping || when <= now) {
            list = &live;
            id = e.thread_id;
            break;
          }
          next = std::min(next, when);
        }
      }
      if (list) {
        lock.unlock();
        SettleInBackground(id, list == &evicted);
        lock.lock();
        continue;
      }
      if (stopping) return;
      if (TrimOneIdle(lock)) continue;
      background_until = next;
      background_wake.wait_until(lock, next);
      background_until = std::chrono::steady_clock::time_point::min();
    }
  }

  // Writes what the live (or evicted) session `thread_id` owes, on the background thread.
  // The session's store lock is taken before the entry is marked busy (as an execution
  // takes it before checking the session out), so the two never wait for each other.
  void SettleInBackground(const std::string& thread_id, bool from_evicted) {
    std::unique_ptr<store::SessionLock> held;
    bool needs_lock = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (const Where* w = Find(thread_id)) needs_lock = w->it->s.save_pending;
    }
    if (needs_lock) {
      auto taken = store->LockSession(thread_id, options.lock_timeout);
      if (taken.ok()) held = std::move(taken.value());
      // Not taken (the store is down, the session stays locked): Settle's save fails and
      // what was deferred is dropped, as after a conflict.
    }
    std::unique_lock<std::mutex> lock(mu);
    std::list<LiveEntry>& list = from_evicted ? evicted : live;
    const Where* w = Find(thread_id);
    if (!w || w->list != &list || w->it->busy) return;  // taken back by an execution meanwhile
    auto it = w->it;
    if (!from_evicted && !stopping && DueAt(it->s) > std::chrono::steady_clock::now()) return;  // used again since
    it->busy = true;
    lock.unlock();
    const bool usable = Settle(thread_id, it->s, held != nullptr);
    held.reset();
    std::list<LiveEntry> gone;
    lock.lock();
    it->busy = false;
    if (from_evicted || !usable) {
      if (!from_evicted) live_bytes -= it->s.bytes;
      where.erase(it->thread_id);
      gone.splice(gone.end(), list, it);
    }
    changed.notify_all();
    lock.unlock();
    gone.clear();  // the sandbox goes, outside the lock
    lock.lock();
  }

  // Trims the least recently used live session that is idle for kTrimIdleAfter and not yet
  // trimmed; false if there is none. REQUIRES: `lock` holds mu (released while trimming).
  bool TrimOneIdle(std::unique_lock<std::mutex>& lock) {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = live.rbegin(); it != live.rend(); ++it) {
      LiveSession& s = it->s;
      if (now - s.idle_since < kTrimIdleAfter) return false;  // newer ones are less idle
      if (it->busy || s.trimmed || s.compacted) continue;
      // The entry itself, not the reverse iterator: that one refers to the entry after it,
      // which an execution may take out of the list while the lock is released (a crash
      // seen once under load: the freed node's neighbour pointer followed).
      const auto entry = std::prev(it.base());
      entry->busy = true;  // a busy entry is neither erased nor moved
      lock.unlock();
      (void)s.sandbox->Trim();
      const uint64_t bytes = options.max_live_bytes ? s.sandbox->PrivateBytes() : 0;
      lock.lock();
      if (options.max_live_bytes) SetBytes(s, bytes);  // still in `live`: it was busy
      entry->busy = false;
      s.trimmed = true;
      changed.notify_all();
      return true;
    }
    return false;
  }

  // Writes what `s` owes the store: its deferred executions (a save, which also owes a
  // portable snapshot), then its portable snapshot. A deferred save the store refuses
  // (another process saved the session since, it was deleted, the store is down, or the
  // caller could not get the lock) is lost: `s` is then unusable, and the session's next
  // execution starts from what the store has. Returns whether `s` is still usable.
  // REQUIRES: the caller owns `s` (busy, or checked out); lock_held: it holds the session's
  // store lock (needed for a deferred save).
  bool Settle(std::string_view thread_id, LiveSession& s, bool lock_held) {
    if (s.save_pending) {
      s.save_pending = false;
      SessionResult ignored;
      Status saved = lock_held ? Save(thread_id, s, &ignored)
                               : Status::DeadlineExceeded("the session's lock was not taken");
      if (!saved.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++deferred_lost;
        return false;
      }
    }
    if (s.portable_pending) {
      s.portable_pending = false;
      s.portable_taken_at = std::chrono::steady_clock::now();
      auto portable = s.sandbox->SavePortable();
      if (portable.ok()) {
        StoredState fallback;
        fallback.portable = std::move(portable.value().data);
        fallback.not_portable = portable.value().skipped;
        // Refused (not written) when a newer one is stored already; an error leaves the older
        // one: either way nothing to do, and the next execution brings a new one.
        (void)store->SaveFallback(std::string(thread_id), s.version, session::EncodeState(fallback));
        s.not_portable = std::move(portable.value().skipped);
      }
    }
    return s.sandbox->usable();
  }

  // Before the stored form of `thread_id` is used outside its executions
  // (SessionManager::StoreUse): what a live interpreter here owes is written first (kRead,
  // kChange), and the interpreter is dropped when the use makes it stale (kChange, kGone).
  // Without lock_held the session's store lock is taken if something must be saved.
  void BeforeStoreUse(std::string_view thread_id, session::SessionManager::StoreUse use, bool lock_held) {
    using Use = session::SessionManager::StoreUse;
    std::unique_ptr<store::SessionLock> held;
    if (use != Use::kGone && !lock_held) {
      // Cheap when nothing is owed (the common case: a file read).
      bool owes_save = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (const Where* w = Find(thread_id)) owes_save = w->it->s.save_pending;
        owes_save = owes_save || checked_out.count(thread_id) > 0;  // a deferred execution may be running
      }
      if (!owes_save) return;
      auto taken = store->LockSession(thread_id, options.lock_timeout);
      if (taken.ok()) held = std::move(taken.value());
      lock_held = taken.ok();
    }
    std::optional<LiveSession> s = TakeLive(thread_id);
    Checkout checkout{this, std::string(thread_id)};
    if (!s) return;
    if (use != Use::kGone && !Settle(thread_id, *s, lock_held)) return;  // unusable: dropped
    if (use != Use::kRead) return;                                        // stale after the use: dropped
    checkout.held = false;
    PutLive(thread_id, std::move(*s));
  }

  // After an execution, at most this many idle sessions are compacted (~0.3 ms each), so that
  // no execution pays for many.
  static constexpr size_t kCompactionsPerExecution = 4;

  // Compacts up to `budget` live sessions idle for compact_idle_after; the least recently
  // used first. A sandbox that cannot compact (dead) is dropped. One the background thread
  // holds is left alone. REQUIRES: mu held.
  size_t CompactIdleLocked(size_t budget) {
    const auto now = std::chrono::steady_clock::now();
    size_t done = 0;
    for (auto it = live.rbegin(); it != live.rend() && done < budget;) {
      LiveSession& s = it->s;
      if (now - s.idle_since < options.compact_idle_after) break;  // newer ones are less idle
      if (s.compacted || it->busy) {
        ++it;
        continue;
      }
      if (!s.sandbox->Compact().ok()) {
        live_bytes -= s.bytes;
        where.erase(it->thread_id);
        it = std::make_reverse_iterator(live.erase(std::next(it).base()));
        continue;
      }
      s.compacted = true;
      if (options.max_live_bytes) SetBytes(s, s.sandbox->PrivateBytes());
      ++done;
      ++it;
    }
    return done;
  }


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
      StatusOr<session::ReadState> read = session::ReadStoredState(thread_id, *stored);
      if (!read.ok()) return read.status();
      StoredState* state = &read.value().state;
      ApplyNodeExtras(*s.sandbox, state->nodes, result);
      if (state->fresh) {  // a reset's: a new interpreter, the files' attributes kept
        s.files = VersionsOf(*s.sandbox);
        return std::move(made.value());
      }
      // The portable snapshot to fall back on: the state's own (saved with it), else (or if
      // newer) the fallback stored after a save, which may be from an older version.
      int64_t portable_version = read.value().portable_version;
      if (!stored->fallback.empty() && (state->portable.empty() || stored->fallback_version > portable_version)) {
        if (std::optional<StoredState> fallback = session::DecodeState(stored->fallback)) {
          state->portable = std::move(fallback->portable);
          state->not_portable = std::move(fallback->not_portable);
          portable_version = stored->fallback_version;
        }
      }
      std::string pages_failure;
      if (Status restored = Restore(*s.sandbox, *state, result, &pages_failure, &s.stored_pages); !restored.ok()) {
        return restored;
      }
      s.whole_bytes = read.value().snapshot_bytes;
      s.delta_bytes = read.value().delta_bytes;
      s.delta_count = read.value().delta_count;
      if (result->restored_from == "pages") {
        // What an older portable snapshot could not hold says nothing of this version's.
        if (portable_version != stored->version) result->not_portable.clear();
        s.not_portable = result->not_portable;
        // A portable snapshot that was never written (brig stopped first): taken again once
        // this session is live, if the execution does not save a newer one.
        s.portable_pending = options.portable_snapshots && options.portable_in_background &&
                             portable_version < stored->version;
        s.pending_since = std::chrono::steady_clock::now();
      } else if (portable_version < stored->version) {
        const std::string lost = std::to_string(portable_version + 1) + "-" + std::to_string(stored->version);
        result->not_restored.emplace(
            "<versions " + lost + ">",
            "the portable snapshot is from version " + std::to_string(portable_version) +
                " (the newer ones were not written before brig stopped): what versions " + lost +
                " did to the namespace is lost; the files are the latest");
      }
    }
    s.files = VersionsOf(*s.sandbox);
    return std::move(made.value());
  }

  // Gives the sandbox's files their stored modes, extended attributes and named pipes; what
  // cannot be applied is reported in result->not_restored, and the session still loads.
  // Named pipes first: a directory that holds nothing else exists only once they are made. A
  // file removed from the host side since the save (brig files rm) has nothing to restore.
  static void ApplyNodeExtras(Sandbox& sandbox, const std::vector<NodeExtras>& nodes, SessionResult* result) {
    for (bool pipes : {true, false}) {
      for (const NodeExtras& n : nodes) {
        if (n.named_pipe != pipes) continue;
        if (Status applied = sandbox.ApplyNodeExtras(n); !applied.ok() && !applied.IsNotFound()) {
          result->not_restored[n.path] = "file attributes not restored: " + applied.message();
        }
      }
    }
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
    s.outside = outside;
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
  // With `records`, sets it to the pages restored (null unless they were).
  Status Restore(Sandbox& sandbox, const StoredState& state, SessionResult* result, std::string* pages_failure,
                 std::shared_ptr<const Sandbox::PageRecords>* records = nullptr) {
    Status pages = state.pages.empty() ? Status::FailedPrecondition("the session was saved without a page snapshot")
                                       : sandbox.RestorePages(state.pages, records);
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

  // What Snapshot's page snapshot was, for the live session's next save.
  struct PagesKept {
    bool delta = false;
    std::shared_ptr<const Sandbox::PageRecords> records;
  };

  // Saves what the execution changed. On error nothing is saved.
  // With `checked`, the store checks that the session is still the one `s` was loaded from
  // (Store::SaveExecution's expected session): Conflict if not.
  Status Save(std::string_view thread_id, LiveSession& s, SessionResult* result, bool checked = false) {
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
    // Files the store holds outside the guest's view count towards the quota too (as counted
    // when the session was loaded: no store read per save). The guest's file system was given
    // the quotas as limits (SandboxLimits), so this is a backstop: it refuses the save of a
    // session that was already over a quota when it was loaded.
    usage.file_count += s.outside.file_count;
    usage.total_bytes += s.outside.total_bytes;
    if (Status q = manager->CheckQuota(thread_id, s.quotas, usage); !q.ok()) return q;

    StoredState state;
    // The portable snapshot after the answer (Housekeeping), for a session that stays live.
    const bool later = options.portable_in_background && options.max_live > 0 && !s.over_quota;
    bool deferred = false;
    // A delta against what the store holds, while the deltas are small beside the whole.
    const bool delta = state_deltas && s.stored_pages && s.delta_count < kMaxDeltas && s.delta_bytes <= 2 * s.whole_bytes;
    PagesKept kept_pages;
    if (Status kept = Snapshot(sandbox, later, delta ? s.stored_pages.get() : nullptr, &state, &deferred, result,
                               &kept_pages);
        !kept.ok()) {
      return kept;
    }
    state.nodes = sandbox.ListNodeExtras();
    store::StateWrite write{session::EncodeState(state), std::string(kStateFormat), std::string(Sandbox::GuestBuildId())};
    write.delta = kept_pages.delta;
    // The CPU work is done: the commit's wait (a group's flush) holds no run slot.
    RunSlot::ReleaseCurrent();
    std::optional<store::ExpectedSession> expected;
    if (checked) expected = store::ExpectedSession{s.created_at, s.expires_at};
    auto version = store->SaveExecution(thread_id, s.version, expected, write, upserts, deletes);
    if (!version.ok()) return version.status();
    s.version = version.value();
    s.stored_pages = std::move(kept_pages.records);
    if (write.delta) {
      s.delta_count++;
      s.delta_bytes += write.snapshot.size();
    } else {
      s.whole_bytes = write.snapshot.size();
      s.delta_count = 0;
      s.delta_bytes = 0;
    }
    s.files = std::move(now);
    s.dirs = std::move(dirs_now);
    if (deferred && !s.portable_pending) s.pending_since = std::chrono::steady_clock::now();
    s.portable_pending = deferred;
    if (!deferred) {
      s.not_portable = state.not_portable;
      if (!state.portable.empty()) s.portable_taken_at = std::chrono::steady_clock::now();
    }
    result->version = s.version;
    result->saved = true;
    result->not_portable = deferred ? s.not_portable : std::move(state.not_portable);
    for (const auto& f : upserts) {
      result->files_saved.push_back(f.path);
      if (f.content_type == store::kDirectoryType) continue;
      result->files_changed.push_back({f.path, f.content_type.empty() ? store::DetectContentType(f.path, f.content) : f.content_type,
                                       static_cast<int64_t>(f.content.size())});
    }
    result->files_deleted = std::move(deletes);
    return Status::Ok();
  }

  // The interpreter's state into `state`: a page snapshot when the sandbox can make one, and
  // the portable snapshot beside it (as a fallback for other builds), unless `later` allows
  // taking that one after the save (then *deferred is set). A sandbox that can make no page
  // snapshot (cold-started, no image, an image that could not be read) is saved by its
  // portable snapshot alone, and result->snapshot says so. Refused (nothing saved) only when
  // neither can hold the state: then the error names what could not be saved.
  // The page snapshot is a delta against `since` if given; *kept gets whether it is, and
  // the records it holds when live sessions are kept (the next save's `since`).
  Status Snapshot(Sandbox& sandbox, bool later, const Sandbox::PageRecords* since, StoredState* state, bool* deferred,
                  SessionResult* result, PagesKept* kept) {
    auto pages = sandbox.SavePages(Sandbox::PagesSaveOptions{since, /*keep_records=*/state_deltas && options.max_live > 0});
    if (pages.ok()) {
      state->pages = std::move(pages.value().snapshot);
      kept->delta = pages.value().delta;
      kept->records = std::move(pages.value().records);
      result->snapshot = "pages";
    } else {
      result->snapshot = "portable";
      result->pages_unavailable = pages.status().message();
    }
    if (!options.portable_snapshots && pages.ok()) return Status::Ok();
    if (later && pages.ok()) {
      *deferred = true;
      return Status::Ok();
    }
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
  if (options.max_running < 0) return Status::InvalidArgument("max_running must not be negative");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->state_deltas = options.state_deltas.value_or(internal::Access::Backend(store).backend() == "postgresql");
  if (options.max_running > 0) impl->run_slots = std::make_unique<RunSlots>(options.max_running);
  impl->store = &internal::Access::Backend(store);
  // On PostgreSQL other nodes restore the session. Their images share the seed stored in the
  // database, so a page snapshot from here restores on any node of the same build and the
  // portable snapshot can be taken after the answer, as on SQLite. Only if this process's
  // image was made with another seed before (an embedder's early sandbox) must the portable
  // snapshot be in the store with each save.
  if (impl->store->backend() == "postgresql") {
    uint64_t proposed = 0;
    while (getrandom(&proposed, sizeof proposed, 0) != static_cast<ssize_t>(sizeof proposed) && errno == EINTR) {
    }
    StatusOr<uint64_t> seed = impl->store->SharedImageSeed(proposed);
    if (!seed.ok()) return seed.status();
    if (!UseImageSeed(seed.value())) impl->options.portable_in_background = false;
  }
  SessionOptions so;
  so.default_expiry_days = options.default_expiry_days;
  so.max_files_per_session = options.max_files_per_session;
  so.max_bytes_per_session = options.max_bytes_per_session;
  so.lock_timeout = options.lock_timeout;
  so.clock = NowMicros;
  impl->public_manager = std::make_unique<SessionManager>(store, so);
  impl->manager = &internal::Access::Manager(*impl->public_manager);
  // Fork, file operations, reset and delete use the stored session: what a live session here
  // still owes the store is written first, and what they make stale is dropped.
  Impl* raw = impl.get();
  impl->manager->SetStoreUseHook([raw](std::string_view thread_id, session::SessionManager::StoreUse use,
                                       bool lock_held) { raw->BeforeStoreUse(thread_id, use, lock_held); });
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
  RunSlot slot(impl.run_slots.get());
  if (options.deferred_save) {
    // In the live interpreter this process holds, without the store: nothing read, nothing
    // written (the background thread saves it later). A session not live here (or whose
    // expiry, as last read, has passed) goes the durable way below, once.
    std::optional<LiveSession> live = impl.TakeLive(thread_id);
    Impl::Checkout checkout{&impl, std::string(thread_id)};
    if (live && impl.manager->Now() < live->expires_at) {
      SessionResult result = Impl::LiveResult(*live);
      const auto began = std::chrono::steady_clock::now();
      auto ran = live->sandbox->Execute(code, call, filename);
      live->last_run = std::chrono::steady_clock::now() - began;
      if (!ran.ok()) {
        checkout.held = false;
        impl.PutLive(thread_id, std::move(*live));
        return ran.status();
      }
      result.execution = std::move(ran.value());
      // A failed execution was rolled back (as below): what it owed before stays owed.
      impl.ReturnAfterLiveRun(thread_id, std::move(*live), result.execution.failure == Failure::kNone, checkout);
      return result;
    }
    if (live) {
      checkout.held = false;
      impl.PutLive(thread_id, std::move(*live));
    }
  }
  auto lock = impl.store->LockSession(thread_id, impl.options.lock_timeout);
  if (!lock.ok()) return lock.status();
  std::optional<LiveSession> live = impl.TakeLive(thread_id);
  Impl::Checkout checkout{&impl, std::string(thread_id)};
  // A live copy runs without reading the store first when nothing could repeat what a run on
  // a stale copy did: its save then checks that the stored session is still the one it was
  // loaded from (the version, the session's creation, its expiry), and a Conflict there sends
  // the execution round again the careful way, on what the store holds. Another process's
  // change of a session is rare; the read it saves is ~55 µs of a durable execution
  // (bench/RESULTS.md, stop 26). Streamed output (already sent) and host mounts (already
  // written) could not be taken back, so those executions read first.
  std::optional<RunSlot> again;  // the second round's run slot (the first gave its own back)
  bool stale = false;            // the first round found the live copy stale
  for (bool unread = live && impl.MayRunUnread(*live, call);; unread = false) {
    SessionResult result;
    if (unread) {
      result.restored_from = "live";
    } else {
      // Not touched here: the save does it (one write less per execution); an execution that
      // saves nothing touches below.
      // The session and its state's version, in one read (the snapshot stays in the store: a
      // live session needs no more). A session missing (made here) or expired (refused, saying
      // why) goes through the manager.
      StatusOr<store::SessionInfo> info = Status::Internal("unread");
      StatusOr<int64_t> stored_version = Status::Internal("unread");
      if (auto both = impl.store->GetSessionAndStateVersion(thread_id);
          both.ok() && !impl.manager->IsExpired(both.value().first)) {
        info = std::move(both.value().first);
        stored_version = both.value().second;
      } else {
        if (!both.ok() && !both.status().IsNotFound()) return both.status();
        info = impl.manager->GetOrCreate(thread_id, /*touch=*/false);
        if (!info.ok()) return info.status();
        stored_version = impl.store->GetStateVersion(thread_id);
        if (!stored_version.ok()) return stored_version.status();
      }
      const int64_t created_at = info.value().created_at;
      if (live && live->version == stored_version.value() && live->created_at == created_at) {
        // With deferred executions in it too: this save takes them along.
        result.restored_from = "live";
        live->read_first = false;
      } else {
        stale = stale || live.has_value();
        if (live && live->save_pending) {
          std::lock_guard<std::mutex> held(impl.mu);
          ++impl.deferred_lost;  // another process saved the session since: they are lost
        }
        // Absent, or another process saved a newer version since (or the session was made
        // again): restore from the store.
        auto stored = impl.store->GetState(thread_id);
        if (!stored.ok()) return stored.status();
        auto loaded = impl.Load(thread_id, created_at, info.value().quotas, stored.value(), *call.memory_bytes, &result);
        if (!loaded.ok()) return loaded.status();
        live = std::move(loaded.value());
        live->read_first = stale;
      }
      live->expires_at = info.value().expires_at;
    }
    result.version = live->version;
    auto keep = [&] {
      checkout.held = false;
      impl.PutLive(thread_id, std::move(*live));
    };
    // The copy ran unread on a state the store no longer holds: dropped (with the deferred
    // executions it owed), and the execution goes round again on what the store holds,
    // with a run slot of its own (the first round's was given back).
    auto run_again = [&] {
      if (live->save_pending) {
        std::lock_guard<std::mutex> held(impl.mu);
        ++impl.deferred_lost;  // another process saved the session since: they are lost
      }
      live.reset();
      stale = true;
      impl.stale_runs.fetch_add(1, std::memory_order_relaxed);
      RunSlot::ReleaseCurrent();
      again.emplace(impl.run_slots.get());
    };
    const auto began = std::chrono::steady_clock::now();
    auto ran = live->sandbox->Execute(code, call, filename);
    live->last_run = std::chrono::steady_clock::now() - began;
    if (!ran.ok()) {
      // Refused before running (a limit it cannot honour): the session is as it was.
      if (!live->over_quota) keep();
      return ran.status();
    }
    result.execution = std::move(ran.value());
    const Failure failure = result.execution.failure;
    if (failure != Failure::kNone) {
      // Timeout, trap, exit or a broken guest: nothing is saved. The sandbox was rolled back to
      // the state it had before (the saved version), so it stays live; one that could not be
      // rolled back is dropped, and the next execution restores the saved state. A copy run
      // unread is checked now: a failure on a stale copy says nothing of the stored session.
      if (unread && !impl.StillStored(thread_id, *live)) {
        run_again();
        continue;
      }
      (void)impl.store->TouchSession(thread_id);  // used all the same
      if (live->sandbox->usable() && !live->over_quota) keep();
      return result;
    }
    if (Status saved = impl.Save(thread_id, *live, &result, /*checked=*/unread); !saved.ok()) {
      if (unread && saved.IsConflict()) {
        run_again();  // nothing of this run was kept
        continue;
      }
      if (live->save_pending) {
        std::lock_guard<std::mutex> held(impl.mu);
        ++impl.deferred_lost;
      }
      return saved.WithPrefix("the code ran but its session could not be saved (the session is unchanged): ");
    }
    live->save_pending = false;
    // A session loaded over its quotas (and now back under them, or the save would have been
    // refused) is loaded again next time, with the quotas as its limits.
    // Kept live; trimmed by the background thread once idle (Impl::kTrimIdleAfter).
    if (!live->over_quota) keep();
    return result;
  }
}

std::optional<StatusOr<SessionResult>> Sessions::TryExecuteLive(std::string_view thread_id, std::string_view code,
                                                                const ExecuteOptions& options,
                                                                std::chrono::microseconds budget,
                                                                std::string_view filename) {
  Impl& impl = *impl_;
  if (!options.deferred_save || budget.count() <= 0) return std::nullopt;
  if (!store::ValidateThreadId(thread_id).ok()) return std::nullopt;  // Execute says why
  ExecuteOptions call = options;
  const double timeout = options.timeout_seconds.value_or(impl.options.limits.timeout_seconds);
  call.memory_bytes = options.memory_bytes.value_or(impl.options.limits.memory_bytes);
  Limits checked = impl.options.limits;
  checked.timeout_seconds = timeout;
  checked.memory_bytes = *call.memory_bytes;
  if (!ValidateLimits(checked).ok()) return std::nullopt;
  // Sessions whose last execution took more than a quarter of the budget are left to
  // Execute: most of them would run past it and be run twice.
  std::optional<LiveSession> live = impl.TryTakeLive(thread_id, budget / 4);
  if (!live) return std::nullopt;
  Impl::Checkout checkout{&impl, std::string(thread_id)};
  auto put_back = [&] {
    checkout.held = false;
    impl.PutLive(thread_id, std::move(*live));
  };
  if (impl.manager->Now() >= live->expires_at) {
    put_back();
    return std::nullopt;  // Execute reads the store, and says so
  }
  const double budget_seconds = std::chrono::duration<double>(budget).count();
  const bool cut_short = budget_seconds < timeout;
  call.timeout_seconds = cut_short ? budget_seconds : timeout;
  SessionResult result = Impl::LiveResult(*live);
  const auto began = std::chrono::steady_clock::now();
  auto ran = live->sandbox->Execute(code, call, filename);
  live->last_run = std::chrono::steady_clock::now() - began;
  if (!ran.ok()) {
    put_back();
    return StatusOr<SessionResult>(ran.status());
  }
  if (cut_short && ran.value().failure == Failure::kTimeout) {
    // Past the budget, not the caller's timeout: rolled back (sandbox.h), so as if it never
    // ran. The caller runs it again with Execute.
    live->last_run = std::max(live->last_run, std::chrono::steady_clock::duration(budget));
    impl.ReturnAfterLiveRun(thread_id, std::move(*live), /*owes_save=*/false, checkout);
    return std::nullopt;
  }
  result.execution = std::move(ran.value());
  impl.ReturnAfterLiveRun(thread_id, std::move(*live), result.execution.failure == Failure::kNone, checkout);
  return StatusOr<SessionResult>(std::move(result));
}

void Sessions::SyncToStore(std::string_view thread_id, bool drop) {
  using Use = session::SessionManager::StoreUse;
  impl_->BeforeStoreUse(thread_id, drop ? Use::kChange : Use::kRead, /*lock_held=*/false);
}

int64_t Sessions::DeferredSavesLost() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->deferred_lost;
}

int64_t Sessions::StaleLiveRuns() const {
  return impl_->stale_runs.load(std::memory_order_relaxed);
}

std::string_view Sessions::backend() const { return impl_->store->backend(); }

size_t Sessions::LiveSessions() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->live.size();
}

size_t Sessions::CompactIdle() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  // What the background thread holds now is idle too: wait for it (a portable snapshot or a
  // trim, ~1 ms).
  impl_->changed.wait(lock, [&] {
    return std::none_of(impl_->live.begin(), impl_->live.end(), [](const LiveEntry& e) { return e.busy; });
  });
  return impl_->CompactIdleLocked(SIZE_MAX);
}

Status Sessions::Reset(std::string_view thread_id) {
  Status s = impl_->manager->Reset(thread_id);
  impl_->BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kGone, /*lock_held=*/false);
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
  // What a live session here still owes the store (a deferred save, a portable snapshot) is
  // written now, so that the export carries it.
  impl.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/true);
  auto stored = impl.store->GetState(thread_id);
  if (!stored.ok()) return stored.status();
  std::optional<StoredState> state;
  int64_t portable_version = 0;
  if (stored.value() && !stored.value()->cleared()) {
    StatusOr<session::ReadState> read = session::ReadStoredState(thread_id, *stored.value());
    if (!read.ok()) return read.status();
    state = std::move(read.value().state);
    portable_version = read.value().portable_version;
    snap.nodes = std::move(state->nodes);
  }
  // A reset's state has no interpreter state to export, only the files' attributes.
  if (state && !state->fresh) {
    const store::SessionState& st = *stored.value();
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
    if (!st.fallback.empty() && (state->portable.empty() || st.fallback_version > portable_version)) {
      // Taken after the save, stored apart (Options::portable_in_background); older than the
      // state only if the process that saved it stopped before writing a newer one.
      if (std::optional<StoredState> fallback = session::DecodeState(st.fallback)) {
        state->portable = std::move(fallback->portable);
        state->not_portable = std::move(fallback->not_portable);
        portable_version = st.fallback_version;
      }
    }
    if (!state->portable.empty() && portable_version < st.version) {
      state->not_portable["<versions " + std::to_string(portable_version + 1) + "-" + std::to_string(st.version) +
                          ">"] = "the portable snapshot is from version " + std::to_string(portable_version) +
                                 ": what the later versions did to the namespace is only in the page snapshot";
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
    StoredState state{std::move(snap.pages), std::move(snap.portable), snap.not_portable, false, std::move(snap.nodes)};
    impl.ApplyNodeExtras(*built.value().sandbox, state.nodes, &trial);
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
  } else if (!snap.nodes.empty()) {
    // A reset session's files with their attributes: stored as the reset stores them.
    StoredState state = session::FreshState(std::move(snap.nodes));
    impl.ApplyNodeExtras(*built.value().sandbox, state.nodes, &trial);
    state_write = store::StateWrite{session::EncodeState(state), std::string(kStateFormat),
                                    std::string(Sandbox::GuestBuildId())};
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
