// brig: run untrusted Python inside WebAssembly.
//
// A Sandbox is one isolated CPython 3.11 interpreter (compiled to WebAssembly and translated
// to native code ahead of time) with its own in-memory file system: the stdlib read-only at
// /usr/local/lib/python3.11, a writable workspace at /home/user (the working directory) and
// /tmp, and nothing of the host. The guest has no sockets, no processes and no host files.
//
//   brig::Limits limits;
//   limits.memory_bytes = 128 << 20;
//   auto sandbox = brig::Sandbox::Create(limits);      // check sandbox.ok()
//   brig::ExecutionResult r = sandbox.value()->Execute("import math\nmath.pi * 2");
//   // r.ok == true, r.result == "6.283185307179586"
//
// Thread-safety: a Sandbox is used by one thread at a time (callers serialise); different
// Sandboxes may execute at the same time on different threads.
#ifndef BRIG_SANDBOX_H_
#define BRIG_SANDBOX_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "brig/node_extras.h"
#include "brig/status.h"

namespace brig {

// A host directory shown to the guest (a volume mount; README "Volume mounts").
// The guest reaches it at guest_dir and cannot leave it: "..", symlinks (any, anywhere in a
// path), hard-linked files, special files and renames or links across its edge are refused,
// by the kernel (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), race-free. Read-only unless
// `writable`; writes into a writable mount count against Limits::file_bytes (bytes written,
// for the sandbox's life, per mount) and Limits::max_file_bytes (a file's size).
// A mount is never saved with the sandbox's state: not in snapshots, the session store or
// forks (a fork has no mounts). Host writes are not undone when an execution fails.
struct Mount {
  std::string host_dir;   // an existing directory on the host
  std::string guest_dir;  // absolute, outside /usr, /home and /tmp, e.g. /mnt/data
  bool writable = false;
};

// Limits applied to a sandbox. Defaults are what a production agent sandbox uses.
struct Limits {
  // Wall-clock limit of one execution, in seconds (0 < timeout <= 1e6). It stops Python
  // loops, long C-level work (sum(range(10**12))) and sleeps alike.
  double timeout_seconds = 30.0;
  // Most memory the guest's heap may use. Allocations past it raise MemoryError in Python.
  // At least 16 MiB (the interpreter's own start-up needs ~10 MiB).
  uint64_t memory_bytes = 256ull << 20;
  // Bytes kept of each of stdout and stderr per execution; the rest is dropped and the
  // kept text ends with a marker saying how much was cut.
  uint64_t output_bytes = 1ull << 20;
  // Bytes the files written in the workspace and /tmp may hold in total.
  uint64_t file_bytes = 256ull << 20;
  // Regular files the workspace and /tmp may hold (directories are limited apart, to as
  // many again and at least 1000), and the size of one file. Creating a file past the count,
  // or writing past the size, fails in the guest with OSError: errno.ENOSPC ("No space left
  // on device"), errno.EFBIG ("File too large"). Deleting a file frees its place.
  uint64_t max_files = 10000;
  uint64_t max_file_bytes = 100ull << 20;
  // Host directories to show the guest (see Mount); no two may overlap. Each sandbox made with
  // these limits opens them anew (Sandbox::Create, Reset, a session's sandbox); Linux 5.6 or
  // later is required (openat2), else creating the sandbox fails.
  std::vector<Mount> mounts;
};

// Ok, or InvalidArgument saying which limit is out of its range (those documented above).
Status ValidateLimits(const Limits& limits);

// A Python exception raised by the user's code.
struct PythonError {
  std::string type;       // e.g. "ZeroDivisionError"
  std::string message;    // str(exception)
  std::string traceback;  // as CPython prints it
};

// Why an execution stopped without finishing, when the sandbox (not the user's Python code)
// is the reason. Kept apart from PythonError: the script did not get to raise anything.
enum class Failure {
  kNone,
  kTrap,        // the guest hit a WebAssembly trap (bad memory access, stack exhaustion, ...)
  kExit,        // the guest process exited (os._exit / proc_exit); exit_code holds the code
  kTimeout,     // the execution ran past Limits::timeout_seconds
  kGuestError,  // the guest broke brig's protocol (malformed result): a bug or an attack
};

// One rich output the code showed with `brig.show(obj)` in the guest, like Jupyter's display
// data: the same thing in one or more MIME types (e.g. a chart as image/png and text/plain).
struct DisplayOutput {
  // MIME type -> data. image/png, image/jpeg and image/gif hold the bytes (checked to start
  // as such a file does); text/plain, text/html, text/markdown, text/latex, image/svg+xml and
  // application/json (checked to parse) hold UTF-8 text. No other type is ever here.
  std::map<std::string, std::string> data;
};

// What one execution may show (the host's bounds; guest/stdlib/brig.py applies the same):
// outputs, and bytes of data in all. Outputs past them are dropped, and said so in
// ExecutionResult::display_note.
inline constexpr size_t kMaxDisplayOutputs = 32;
inline constexpr size_t kMaxDisplayBytes = size_t{16} << 20;

// Whether `mime` is one a DisplayOutput may hold; whether its data are bytes (else UTF-8 text).
bool IsDisplayType(std::string_view mime);
bool IsBinaryDisplayType(std::string_view mime);

struct ExecutionResult {
  // True when the code ran to the end (or called sys.exit(0)) without an exception.
  bool ok = false;
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  // repr() of the value of the last expression, if the code ends with one and it is not None.
  std::optional<std::string> result;
  // Set when the code raised (including SystemExit with a non-zero code).
  std::optional<PythonError> error;
  // sys.exit()/os._exit() code, if the code exited.
  std::optional<int> exit_code;
  Failure failure = Failure::kNone;
  std::string failure_message;  // human-readable, set when failure != kNone
  double duration_ms = 0;
  // What the code showed with brig.show(), in order (see DisplayOutput).
  std::vector<DisplayOutput> display;
  // Empty, or why some of what the code showed is not in `display` (over a limit, a MIME
  // type or data brig does not take), e.g. "brig: 3 display outputs dropped: ...".
  std::string display_note;
};

std::string_view FailureName(Failure failure);  // "trap", "exit", "timeout", ...

// Which of the guest's output streams a piece of output came from.
enum class OutputStream { kStdout, kStderr };

// Settings of one execution (Sandbox::Execute, Sessions::Execute).
struct ExecuteOptions {
  // Replace Limits::timeout_seconds and Limits::memory_bytes for this execution only, with
  // the same ranges (InvalidArgument outside them). The memory limit bounds what the guest
  // may grow to during this execution; one below the memory the interpreter already holds
  // is refused (FailedPrecondition: nothing runs), since memory is never taken back from a
  // live interpreter. An execution that grew past the sandbox's own limit leaves it that big:
  // later executions need a limit at least that high.
  std::optional<double> timeout_seconds;
  std::optional<uint64_t> memory_bytes;
  // Streaming: called with the guest's stdout and stderr as it writes them, in order, on the
  // executing thread, before Execute returns. The pieces of a stream add up to exactly the
  // result's stdout_text / stderr_text: bytes past Limits::output_bytes are not passed, and a
  // truncated stream ends with the same "[brig: output truncated, ...]" marker, passed once
  // the code has stopped. Output of brig's own work (rolling back a failed execution re-runs
  // earlier ones; portable snapshots) is never passed. `bytes` is valid during the call only.
  // It runs inside the guest call: keep it short (a timeout waits for it to return). If it
  // throws, the exception is swallowed and it is not called again for this execution (the
  // execution and its result are unaffected). Empty (the default): no streaming, no cost.
  std::function<void(OutputStream stream, std::string_view bytes)> on_output;
  // Sessions::Execute only (a bare Sandbox saves nothing): run in the interpreter this
  // process keeps live for the session, and return without saving; the save follows in the
  // background (Sessions::Options::save_delay). See Sessions::Execute.
  bool deferred_save = false;
};

// How a new sandbox gets its interpreter.
enum class Start {
  // A copy-on-write clone of the process's image (CPython started, common modules imported):
  // ~25 µs, reusing the memory of a destroyed sandbox when there is one. The first sandbox
  // of a process maps the image from the on-disk cache or makes it (~60 ms).
  kFromImage,
  // CPython starts from scratch (~25 ms, fewer modules imported). Cheaper for a process that
  // runs a single sandbox, until images are cached on disk.
  kCold,
};

class Sandbox {
 public:
  // Starts a fresh interpreter. Fails (with a message) if the limits are invalid or the
  // interpreter cannot start within them. The environment variable BRIG_NO_IMAGE=1 turns
  // kFromImage into kCold.
  static StatusOr<std::unique_ptr<Sandbox>> Create(const Limits& limits = {}, Start start = Start::kFromImage);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs `code` (Python source, UTF-8) in the interpreter's __main__, which keeps its
  // variables between calls. `filename` is what tracebacks call the code.
  //
  // Executions are transactional. One that fails as a sandbox failure -- kTrap, kTimeout or
  // kExit (os._exit, which ends the guest process, counts: sys.exit() is an ordinary result)
  // -- leaves the sandbox exactly as it was before it started: guest memory (contents and
  // size), globals, open descriptors and files (a file written during it is gone, one removed
  // is back). The result still reports the failure (failure, failure_message, exit_code) and
  // the output printed before it; the next execution runs in the old state. An execution that
  // raises an ordinary Python exception keeps what it did before the exception, as a REPL
  // does. Cost: nothing is copied per execution; a rollback takes ~1-10 ms (it re-runs the
  // executions since the sandbox's last checkpoint, bench/RESULTS.md).
  // Only if a rollback cannot be made (host out of memory, or the re-run does not reproduce
  // the recorded results) is the sandbox dead: every later call then returns the failure
  // without running anything, until Reset().
  ExecutionResult Execute(std::string_view code, std::string_view filename = "<exec>");
  // The same with per-execution limits and streaming (ExecuteOptions). Errors (nothing ran,
  // the sandbox is unchanged): InvalidArgument for a limit out of range; FailedPrecondition
  // for a memory limit below GuestMemoryBytes(), or one that cannot be applied.
  StatusOr<ExecutionResult> Execute(std::string_view code, const ExecuteOptions& options,
                                    std::string_view filename = "<exec>");

  // Returns the sandbox to a fresh interpreter: no user variables, modules or files, and a
  // sandbox that had died (trap, timeout, exit) runs again. Keeps the limits. Fails only if
  // a new interpreter cannot be made (the sandbox is then unchanged).
  Status Reset();

  // The guest build this sandbox runs ("cpython-<debian revision>-<hash>").
  static std::string_view GuestBuildId();

  // ---- Forks and idle sandboxes.

  // A new sandbox in this one's current state: the same variables, modules, files and open
  // descriptors, and the same limits; the two then diverge (what one does, the other does not
  // see). `random` is reseeded in the fork before its first execution, so the two draw
  // different numbers; os.urandom differs anyway. This sandbox is not changed.
  // Cost: the first fork of a given state copies the memory pages this sandbox changed in its
  // image range once (memory it grew into is shared in place: a session holding 50 MB of
  // objects forks in a few ms); later forks of the same state (no execution in between) cost
  // tens of microseconds. Forks share unchanged pages and file contents copy-on-write.
  // Thread-safety: several threads may fork one sandbox at once; not while it executes.
  // Fails (FailedPrecondition) for a dead sandbox; ResourceExhausted if the host cannot map
  // the new one.
  StatusOr<std::unique_ptr<Sandbox>> Fork();

  // Gives the interpreter a new `random` stream (from the host's randomness) before its next
  // execution, as a fork gets: for a sandbox restored from a state that another sandbox also
  // continues (a forked session), so that the two do not draw the same numbers. Nothing
  // else changes; cheap (done by the next execution).
  void ReseedRandom();

  // Gives back the memory of an idle sandbox: its state is kept as its differences from the
  // image (typically tens of KiB for a small session; the memory it grew into stays, shared)
  // and the interpreter is remade from them by the next call that needs it (~0.5 ms for a
  // small session). For sandboxes that wait for their next execution a long time. The
  // sandbox behaves exactly the same afterwards. FailedPrecondition for a dead sandbox.
  Status Compact();

  // Gives back the guest pages that executions wrote but that hold the image's bytes again
  // (reference counts that went up and back down): about a third of a small session's private
  // memory. Cheaper than Compact (tens of µs; the interpreter stays), and the next execution
  // takes a page fault for each such page it writes again (~1 µs). Nothing else changes.
  // Returns the bytes given back; FailedPrecondition for a dead sandbox.
  StatusOr<uint64_t> Trim();

  // False once a failed execution could not be rolled back (see Execute): the sandbox then
  // only reports that failure, until Reset().
  bool usable() const;

  // Host memory the sandbox holds of its own, as last counted: the guest pages it wrote (as
  // its last SavePages or Trim counted them; executions since may have written more) or,
  // compacted, its recorded differences; plus what its files take. An estimate that walks
  // nothing, for bounding the memory of many sandboxes (Sessions::Options::max_live_bytes):
  // 0 for the guest's pages of a sandbox never saved.
  uint64_t PrivateBytes() const;

  // Size of the guest's linear memory in bytes: it grows as Python needs more and never
  // shrinks, except back to its old size when a failed execution is rolled back.
  uint64_t GuestMemoryBytes() const;

  // ---- Saved state: what persistent sessions (brig/session.h) store between processes.
  // Files are not part of either snapshot; they are read and written with the file calls
  // below. REQUIRES for all: the sandbox is not executing.

  // The interpreter's state as a page snapshot: the 4 KiB pages of guest memory that differ
  // from the process image (XOR against it, zstd-compressed), the guest's globals and memory
  // size, and its open descriptors (by path). It restores only onto the same image
  // (ImageDigest): each image is made with its own hash secret, so in another process only
  // if that process loaded the same image from the image cache. FailedPrecondition for a
  // cold-started or dead sandbox, or a guest that changed its function table.
  StatusOr<std::string> SavePages();
  // The pages a page snapshot holds, decoded (src/sandbox/page_records.h): what a later
  // save can be a page delta against. Immutable once made; safe to share between threads.
  struct PageRecords;
  struct PagesSave {
    // A page snapshot, or with `since` a page delta: only the pages whose content differs
    // from what `since` holds (and those that no longer differ from the image). A delta
    // restores only over the snapshot `since` came from (ApplyPageDeltas).
    std::string snapshot;
    bool delta = false;
    std::shared_ptr<const PageRecords> records;  // what it holds, with keep_records
    // Diagnostics: the save compared the pages found by the save before it instead of
    // walking the page tables again, as it may when only executions that took no page fault
    // came between them (a page becomes one the sandbox wrote only through a fault).
    bool candidates_reused = false;
  };
  struct PagesSaveOptions {
    const PageRecords* since = nullptr;  // not null: save a delta against these records
    bool keep_records = false;           // return the records of this save
  };
  StatusOr<PagesSave> SavePages(const PagesSaveOptions& options);
  // Puts this sandbox in the state `snapshot` holds, with its limits unchanged.
  // REQUIRES: made from the image (Start::kFromImage), no files open, and the workspace
  // files the snapshot's descriptors name already written (WriteFile). FailedPrecondition if
  // the snapshot was made for another image; InvalidArgument if it is damaged or a delta;
  // ResourceExhausted if it needs more memory than the limit. On error the sandbox is
  // unchanged. With `records`, sets it to what the snapshot holds (null for a snapshot of
  // the old whole-page format, which a delta cannot build on).
  Status RestorePages(std::string_view snapshot, std::shared_ptr<const PageRecords>* records = nullptr);
  // The page snapshot that `whole` with `deltas` applied in order describes: each delta must
  // have been saved against the records of the snapshot before it. Host-only (no image
  // needed). InvalidArgument if any part is damaged, is not of `whole`'s build and image, or
  // does not fit the snapshot before it.
  static StatusOr<std::string> ApplyPageDeltas(std::string_view whole, const std::vector<std::string_view>& deltas);
  // The digest of the process image that page snapshots are tied to (hex).
  static StatusOr<std::string> ImageDigest();
  // The image cache's file that the process image was loaded from or saved to, or empty (the
  // cache is off or unusable, the image was not saved, or no sandbox was created yet). This
  // process holds it: the cache never removes a file a living process holds.
  static std::string ImageFile();
  // Holds `path`, another process's ImageFile() in this process's cache directory, so that
  // the cache keeps it while no process maps it (brig serve's supervisor, whose workers may
  // all be dead at once). False, holding nothing, if `path` is not a regular ".img" file
  // directly in that directory. The 8 files named most recently stay held until this process
  // exits (naming a ninth lets the least recent go). Thread-safe.
  static bool HoldImageFile(const std::string& path);
  // The guest build and image digest a page snapshot is tied to, read from its header
  // without restoring it (any process, no image needed). InvalidArgument if `snapshot` is
  // not a page snapshot.
  struct PagesOrigin {
    std::string guest_build_id;
    std::string image_digest;
  };
  static StatusOr<PagesOrigin> PageSnapshotOrigin(std::string_view snapshot);

  // A portable snapshot of the user's namespace (guest/_brig_snapshot.py): restores in any
  // build of CPython 3.11. Functions and classes defined by the user are saved by value.
  struct PortableSnapshot {
    std::string data;
    std::map<std::string, std::string> skipped;  // names not saved -> why
  };
  StatusOr<PortableSnapshot> SavePortable();
  // Loads a portable snapshot into __main__; returns the names that failed to load, with
  // why. InvalidArgument if `data` is not a readable snapshot.
  StatusOr<std::map<std::string, std::string>> LoadPortable(std::string_view data);

  // ---- Files of the writable mounts (/home/user, /tmp), from the host side.
  struct FileEntry {
    std::string path;
    uint64_t size = 0;
    // Changes whenever the file's contents may have changed (inode and ctime).
    std::pair<uint64_t, uint64_t> version;
  };
  // Every regular file under /home/user and /tmp, ordered by path.
  std::vector<FileEntry> ListFiles() const;
  std::optional<std::string> ReadFile(std::string_view path) const;
  // Creates or replaces a file, with its parent directories. InvalidArgument for a path
  // outside the writable mounts or one that breaks the name rules (the store's: UTF-8, no
  // control characters, components <= 255 bytes, <= 64 deep, <= 4096 bytes); ResourceExhausted
  // over the file limits.
  Status WriteFile(std::string_view path, std::string_view content);
  // Every empty directory under /home/user and /tmp, ordered by path. Sessions save them
  // like files, so that a directory made and left empty is there after a restart.
  std::vector<std::string> ListEmptyDirectories() const;
  // Creates a directory and its missing parents (mkdir -p). Errors as WriteFile.
  Status MakeDirectory(std::string_view path);
  // What a node under /home/user and /tmp has beyond what ListFiles, ReadFile and
  // ListEmptyDirectories say (brig/node_extras.h): sessions keep it with the session's state.
  // Every node with extras, ordered by path.
  std::vector<NodeExtras> ListNodeExtras() const;
  // Gives the node at extras.path its extras: makes the named pipe (and missing parent
  // directories) first if asked and nothing is there, sets the mode and adds the extended
  // attributes. NotFound if nothing is at the path (and no named pipe is asked for);
  // InvalidArgument if the path is outside the writable mounts, breaks the name rules, or
  // names a node of another kind; ResourceExhausted over the limits. What was applied before
  // an error stays.
  Status ApplyNodeExtras(const NodeExtras& extras);

  // What the files under /home/user and /tmp take, as the file limits count it (regular
  // files; bytes include removed files still open). Kept by the file system: no file is read.
  struct FileUsage {
    uint64_t files = 0;
    uint64_t bytes = 0;
  };
  FileUsage GetFileUsage() const;

  struct Impl;  // defined in src/sandbox/sandbox.cc

 private:
  explicit Sandbox(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Runs `code` once in a new sandbox and discards it.
ExecutionResult ExecuteOnce(std::string_view code, const Limits& limits = {},
                            std::string_view filename = "<exec>");

}  // namespace brig

#endif  // BRIG_SANDBOX_H_
