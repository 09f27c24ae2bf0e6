// brig::Sessions: executions in sessions that survive restarts of brig.
//
// A session is named by a thread_id (1..255 bytes, see store/validation.h). Each Execute
// loads the session (its interpreter state and its files) from the store, runs the code,
// and saves the new state and the files the code changed, in one transaction, so that the
// next Execute (in this process or in another one, later) continues where it left off:
//
//   auto sessions = brig::Sessions::Open({.store_url = "sqlite:/tmp/brig.db"});
//   sessions.value()->Execute("agent-7", "x = 42; y = 100\ndef calculate(): return x + y");
//   // ... a new process ...
//   sessions.value()->Execute("agent-7", "calculate()");   // result "142"
//
// State. The interpreter is saved as a page snapshot (the guest memory pages that differ
// from the process image, compressed) plus, as a fallback, a portable snapshot of the
// user's namespace (functions and classes by value). The page snapshot restores everything
// exactly (generators, open files, imported modules) in any process running the same guest
// build; after an upgrade of brig the portable one is used, and names it could not save
// (or load) are reported in the result. A process keeps recently used sessions live in
// memory and reuses them without restoring, unless another process saved a newer version.
//
// Files. Files under /home/user and /tmp in the guest are the session's files: those the
// code created, changed or removed are written to (or deleted from) the store with the
// state; the store's files appear in the guest at the same paths. Per file at most 20 MiB
// and per session the quotas of Options (defaults 1000 files, 200 MiB; directories do not
// count, the session's files outside /home/user and /tmp do). They are the limits of the
// guest's file system: writing a file past 20 MiB fails in the guest with OSError EFBIG,
// creating a file past the file count or writing past the bytes with OSError ENOSPC ("No
// space left on device": the guest gets only the errno). The code may catch it; the rest of
// the execution (variables, other files) is saved. Deleting a file makes room. A session
// already over a quota when loaded (quotas lowered since) still loads, but its save is
// refused (ResourceExhausted, naming the quota) until files are deleted to bring it under.
//
// Failures. An execution that times out, traps or exits the interpreter saves nothing: the
// session stays as it was before it. An ordinary Python exception saves what the code did
// before raising (as a REPL keeps it).
//
// Managing sessions and their files without executing: manager() and files() (the same
// store and policy; brig/session_manager.h, brig/files.h). Moving a session to another
// machine: ExportSnapshot and ImportSnapshot.
//
// Concurrency: executions in one session are serialised across threads and processes (the
// store's session lock); different sessions run in parallel. Thread-safe.
#ifndef BRIG_SESSIONS_H_
#define BRIG_SESSIONS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brig/files.h"
#include "brig/sandbox.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/status.h"
#include "brig/store.h"

namespace brig {

struct SessionResult {
  ExecutionResult execution;
  // The state version after this execution (0: never saved). Unchanged when nothing was
  // saved (timeout, trap, exit).
  int64_t version = 0;
  // Where the interpreter came from: "new" (no saved state), "live" (kept in this process),
  // "pages" (page snapshot) or "portable" (portable snapshot).
  std::string restored_from;
  // What the save stored the interpreter as: "pages" (a page snapshot, with the portable one
  // beside it) or "portable" (the portable snapshot alone: this sandbox could make no page
  // snapshot, pages_unavailable says why). Empty when nothing was saved.
  std::string snapshot;
  std::string pages_unavailable;
  // Names the portable snapshot could not save, with why (the page snapshot has them; they
  // would be lost only if a different brig build restores the session). With
  // Options::portable_in_background, from the last portable snapshot taken of the session
  // (it is taken after each execution): empty after a session's first execution.
  std::map<std::string, std::string> not_portable;
  // When restored from a portable snapshot: names that could not be restored, with why, and
  // when that snapshot is older than the session's version (see
  // Options::portable_in_background), an entry "<versions N-M>" saying what it lacks.
  // Also stored files the sandbox could not hold (keyed by their path, which starts with '/':
  // a name an older brig accepted); they stay in the store, outside the guest's view.
  std::map<std::string, std::string> not_restored;
  // Files written to / deleted from the store by this execution.
  std::vector<std::string> files_saved;
  std::vector<std::string> files_deleted;
  // The regular files of files_saved with their size and content type (directories left out;
  // created_at / modified_at are not set).
  std::vector<FileInfo> files_changed;
  bool saved = false;  // whether state and files were saved
};

// What ImportSnapshot made.
struct ImportResult {
  SessionInfo session;  // the new session
  // What its next execution restores: "pages" (the page snapshot: everything, exactly),
  // "portable" (the portable snapshot: see not_restored) or "new" (the snapshot held no
  // interpreter state).
  std::string restored_from;
  // Why the page snapshot was not kept (made by another guest build or image, or it does
  // not restore here); empty when it was kept or there was none.
  std::string pages_dropped;
  // Names (and stored files) that will not be restored, with why: as
  // SessionResult::not_restored (restoring from the portable snapshot: the names it could
  // not load, and those the exporting side could not save portably).
  std::map<std::string, std::string> not_restored;
  // From the snapshot: the session it was exported from, when, and the guest build that made
  // its page snapshot.
  std::string source_thread_id;
  int64_t exported_at = 0;
  std::string source_guest_build_id;
};

class Sessions {
 public:
  struct Options {
    // sqlite:PATH or postgresql://... (see brig/store.h).
    std::string store_url;
    // Limits of each execution. Its file limits (file_bytes, max_files, max_file_bytes) are
    // replaced by the session quotas below and the store's 20 MiB per file.
    Limits limits;
    int64_t default_expiry_days = 180;
    // Quotas of each session's files (see Files above). At least 1.
    int64_t max_files_per_session = 1000;
    int64_t max_bytes_per_session = int64_t{200} << 20;
    // Sessions kept live in this process between executions (0: restore every time).
    size_t max_live = 64;
    // And the memory they hold at most (Sandbox::PrivateBytes of each, as of its last save:
    // ~1 MiB for a small session, ~40 KiB once compacted; 0: no bound but max_live). Past
    // either bound the least recently used go (a later execution restores them from the
    // store); the session just used stays, whatever its size.
    uint64_t max_live_bytes = 0;
    // Executions doing their CPU work at once (0: no bound). An execution takes a slot when
    // Execute begins (waiting for one if none is free) and gives it back when its save goes
    // to the store: the wait for the commit (with other saves, one flush) holds none. So a
    // caller can run more threads than slots and keep the CPUs busy while commits are on
    // the disk, without more executions competing for the CPUs (their time limits are wall
    // clock). TryExecuteLive does not take one (it runs only quick executions).
    int max_running = 0;
    // A live session unused this long is compacted (Sandbox::Compact: its memory shrinks to
    // its differences from the image, ~40 KiB for a small session instead of ~540; its next
    // execution pays ~0.5 ms to remake the interpreter). Checked after each execution (a
    // few sessions at a time) and by CompactIdle().
    std::chrono::milliseconds compact_idle_after{10'000};
    // Also save the portable fallback snapshot. Costs a pickling pass per execution.
    bool portable_snapshots = true;
    // Take the portable snapshot after Execute has returned, on a background thread, and
    // store it apart from the save (store::Store::SaveFallback), instead of inside the save:
    // the execution answers without the pickling pass (~0.7 ms for a small session) and its
    // write. Applies to sessions kept live (max_live > 0); others are saved with it as
    // before. It is taken once the session has been idle for portable_delay (a burst of
    // executions pays for one), or has owed one for portable_max_lag, or leaves the live
    // sessions; ~Sessions writes those still pending. Until then the stored portable
    // snapshot is an older one: a different brig build restoring the session in between
    // (after a crash, say) gets the namespace as it was at that older version, and
    // not_restored says which versions it lacks; the page snapshot, the files and the
    // version are always the latest. A live session whose portable snapshot is being taken
    // makes its next execution wait for it (~1 ms).
    // On PostgreSQL too: the nodes there make their images with the seed stored in the
    // database, so another node of the same build restores the page snapshot; only if this
    // process's image was made earlier with another seed is it taken in the save.
    bool portable_in_background = true;
    // Durable saves of a session kept live store only the pages that changed since the
    // state the store holds (a state delta: ~2-5 KiB instead of the whole ~9-30 KiB), and
    // the whole state again once the deltas since it take twice its size or number 64.
    // nullopt: on PostgreSQL, where they cut the database's work per save by a quarter to a
    // third; not on SQLite, where a delta's transaction measured slower to commit than a
    // whole state's (bench/RESULTS.md, 2026-12-05, stop 22). Either way, every reader of a
    // stored state (another process, fork, export) applies the deltas it finds.
    std::optional<bool> state_deltas;
    std::chrono::milliseconds portable_delay{200};
    std::chrono::milliseconds portable_max_lag{10'000};
    // The idle trigger above waits until this long after the session's last portable
    // snapshot: a session used every few hundred ms (hundreds of sessions under load, an
    // agent's think time) would otherwise be idle portable_delay after nearly every execution
    // and pay a pickling pass (~1.4 ms, a tenth of its CPU) and a write for each; measured at
    // 512 sessions: half the throughput (bench/RESULTS.md, stop 25). portable_max_lag still
    // bounds how long one is owed, and leaving the live sessions or ~Sessions still writes it.
    std::chrono::milliseconds portable_min_interval{10'000};
    // Executions with ExecuteOptions::deferred_save are saved (all of a burst in one save)
    // once the session has been idle this long, or at the latest save_max_lag after the first
    // unsaved one, or when it leaves the live sessions, or at ~Sessions.
    std::chrono::milliseconds save_delay{200};
    std::chrono::milliseconds save_max_lag{2'000};
    // How long an execution waits for another one in the same session.
    std::chrono::milliseconds lock_timeout{60'000};
    // PostgreSQL: connections kept in the pool, and the statement_timeout of each.
    int pool_size = 4;
    std::chrono::milliseconds statement_timeout{30'000};
  };

  // Opens the store (applying migrations). Unavailable / InvalidArgument as Store::Open.
  static StatusOr<std::unique_ptr<Sessions>> Open(const Options& options);
  // Uses a store that is already open (so that a process opens it once), borrowed: it must
  // outlive the Sessions. options.store_url, pool_size and statement_timeout are not used.
  static StatusOr<std::unique_ptr<Sessions>> Open(Store& store, const Options& options);
  ~Sessions();
  Sessions(const Sessions&) = delete;
  Sessions& operator=(const Sessions&) = delete;

  // Runs `code` in the session, creating it (default expiry) if missing. Errors (nothing
  // ran, nothing changed): InvalidArgument for a bad thread_id, FailedPrecondition for an
  // expired session, DeadlineExceeded if the session stayed locked, Unavailable when the
  // store cannot be reached. If saving fails after the code ran, the error says so and the
  // session stays as it was before this execution. A session this process holds live runs
  // without reading the store first; if its save then finds that another process changed
  // the session, the code runs again on the stored state (StaleLiveRuns): it ran twice (the
  // first run left nothing behind) and the answer took up to twice as long.
  StatusOr<SessionResult> Execute(std::string_view thread_id, std::string_view code,
                                  std::string_view filename = "<exec>");
  // The same with this execution's own limits and streaming (ExecuteOptions, sandbox.h):
  // timeout_seconds and memory_bytes replace those of Options::limits for this execution
  // only. More errors (nothing ran, nothing changed): InvalidArgument for a limit out of
  // range (checked first); FailedPrecondition when the session holds more memory than
  // memory_bytes allows. on_output is called on this thread, only while the code runs: never
  // for output of a restore, of a rollback's replays, or of the save.
  //
  // With options.deferred_save, an execution in a session this process keeps live runs there
  // and answers without touching the store: no lock, no read, no save (~the cost of the bare
  // execution). The result has saved == false and the version it builds on. Its state and
  // files are saved later, by a background thread, together with the deferred executions
  // that followed (Options::save_delay, save_max_lag), and before anything else here reads or
  // changes the stored session (a durable execution, file operations, fork, export; reset and
  // delete discard them). Until then they are not durable: they are lost if the process dies,
  // and if another process saves the session in between (its save wins; DeferredSavesLost
  // counts them, and the next execution here starts from the store). Executions in one
  // session stay serialised within this process. A session not live here (its first
  // execution in this process, or one evicted since) runs the durable way.
  StatusOr<SessionResult> Execute(std::string_view thread_id, std::string_view code,
                                  const ExecuteOptions& options, std::string_view filename = "<exec>");

  // Execute with options.deferred_save, but only if it can be done at once and quickly here:
  // the session is live in this process, nobody holds it, its expiry (as last read) has not
  // passed, its last execution ran within budget / 4, and this one finishes within `budget`
  // (its timeout is cut to that; one that runs past it is rolled back, as a timeout is).
  // Returns what Execute would, or nullopt when it ran nothing and changed nothing: then the
  // caller runs it with Execute (on a thread that may wait). For a server to answer quick
  // executions of live sessions on the thread that read the request, without a hand-off.
  // Never waits for a lock; the code runs on the calling thread for up to `budget` (plus a
  // rollback's replay when it runs past). A call with options.deferred_save false, or with
  // limits out of range, returns nullopt (Execute reports the error).
  std::optional<StatusOr<SessionResult>> TryExecuteLive(std::string_view thread_id, std::string_view code,
                                                        const ExecuteOptions& options, std::chrono::microseconds budget,
                                                        std::string_view filename = "<exec>");

  // Writes what this process's live interpreter of the session still owes the store (its
  // deferred executions, its portable snapshot), taking the session's lock if it must save;
  // with `drop`, then drops the interpreter (for a process about to change the stored session
  // behind this one's back: another process's file write, reset or delete). Fork, export and
  // this Sessions' own file operations do it themselves; a server whose workers hold the live
  // sessions calls it in the worker before the supervisor uses the store. A save the store
  // refuses is lost (DeferredSavesLost). No-op if the session is not live here.
  void SyncToStore(std::string_view thread_id, bool drop);

  // Deferred executions (ExecuteOptions::deferred_save) whose save the store refused since
  // this Sessions was opened: lost, as described at Execute.
  int64_t DeferredSavesLost() const;

  // Durable executions run twice since this Sessions was opened: the first time in a live
  // interpreter without reading the store (as Execute does when it holds one), which turned
  // out stale at the save (another process had saved or deleted the session, or moved its
  // expiry earlier), so
  // the execution ran again on the stored state. After that, the session's executions here
  // read the store first until one finds the live interpreter current.
  int64_t StaleLiveRuns() const;

  // Clears the session's interpreter state, keeping its files (SessionManager::Reset), and
  // drops this process's live interpreter of it.
  Status Reset(std::string_view thread_id);

  // The session policy (expiry, quotas, lock timeout: from Options) and the file operations
  // on this Sessions' store. Borrowed: valid as long as this Sessions.
  SessionManager& manager();
  FileService& files();

  // ---- Snapshots: a session as bytes, to restore on another machine or node.
  //
  // The bytes are self-describing and versioned: a magic ("BRIGSNAP"), the format version,
  // the guest build and image digest the page snapshot is tied to, the page snapshot, the
  // portable snapshot, the files with their content types, the empty directories, the
  // metadata, and a SHA-256 checksum over all of it (docs/architecture.md, "Snapshots").
  // Not compressed beyond the page snapshot; not encrypted or signed: whoever holds them
  // holds the session.

  // The session as snapshot bytes, taken under its lock (never in the middle of an
  // execution). NotFound if missing; FailedPrecondition if expired; DeadlineExceeded if it
  // stayed locked past lock_timeout. Holds the whole snapshot in memory.
  // REQUIRES: the calling thread holds no lock of the session.
  StatusOr<std::string> ExportSnapshot(std::string_view thread_id);

  struct ImportOptions {
    // Days until the new session expires (nullopt: Options::default_expiry_days).
    std::optional<int64_t> expiry_days;
    // Its metadata, a JSON object (nullopt: the snapshot's).
    std::optional<nlohmann::json> metadata;
  };
  // Makes the new session `thread_id` from snapshot bytes (ExportSnapshot's, from this or
  // another machine; untrusted input: every field is checked). The page snapshot is kept
  // only if it restores here (same guest build and image); otherwise the session keeps the
  // portable part and restores from it (ImportResult says what will not be restored), or,
  // with no portable part, the import is refused (FailedPrecondition naming both builds).
  // The state and files are tried in a sandbox before anything is written, then the session
  // is created whole in one store transaction: on any error there is no new session.
  // AlreadyExists if thread_id exists; InvalidArgument for bytes that are not a snapshot,
  // damaged or truncated ones (the message says what is wrong), a newer format version, or
  // bad options; ResourceExhausted when its files exceed this process's quotas.
  StatusOr<ImportResult> ImportSnapshot(std::string_view thread_id, std::string_view bytes,
                                        const ImportOptions& options);
  StatusOr<ImportResult> ImportSnapshot(std::string_view thread_id, std::string_view bytes) {
    return ImportSnapshot(thread_id, bytes, ImportOptions{});
  }

  // Compacts every live session idle for at least Options::compact_idle_after; returns how
  // many it compacted. For a server's housekeeping timer; Execute does a few at a time.
  size_t CompactIdle();

  // Sessions kept live in this process now (at most Options::max_live).
  size_t LiveSessions() const;

  // The store's backend: "sqlite" or "postgresql" (Store::backend).
  std::string_view backend() const;

  struct Impl;

 private:
  explicit Sessions(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace brig

#endif  // BRIG_SESSIONS_H_
