// The inside of a Sandbox (include/brig/sandbox.h): its guest instance, WASI context and
// file system, and the call protocol. Shared by the files that implement Sandbox's methods;
// nothing outside src/sandbox/ includes it.
#ifndef BRIG_SANDBOX_SANDBOX_IMPL_H_
#define BRIG_SANDBOX_SANDBOX_IMPL_H_

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "brig/sandbox.h"
#include "engine/python_instance.h"
#include "sandbox/transaction.h"
#include "vfs/file_system.h"
#include "wasi/guest_memory.h"
#include "wasi/wasi_context.h"

namespace brig {

// The file name of code the host runs for itself (portable snapshots): its final value, if a
// str, comes back as it is (guest/_brig_runner.py HOST_FILENAME). Still untrusted.
inline constexpr std::string_view kHostFilename = "<brig-host>";

struct Sandbox::Impl {
  Limits limits;
  std::unique_ptr<vfs::FileSystem> fs;
  std::unique_ptr<wasi::WasiContext> wasi;
  brig_python_instance* instance = nullptr;
  // The process image `instance` was cloned from (page snapshots diff against it); null for
  // a cold-started instance, and while `instance` is layered (a fork, or memory it grew into is
  // frozen: brig_python_instance_layered) or gone (compacted): page snapshots refuse those.
  const brig_python_image* base_image = nullptr;
  // Set when a guest call traps, times out or exits; cleared by RollBack. Stays set (later
  // executions report it) only if the sandbox could not be rolled back.
  Start start = Start::kFromImage;  // how this sandbox (and so its Reset) gets a guest
  Failure dead = Failure::kNone;
  std::string dead_message;
  std::optional<int> dead_exit_code;

  // ---- Transactions, forks, compaction (src/sandbox/transaction.cc, transaction.h).
  // `instance` is null while compacted: Wake() (or PrepareRun) brings it back.
  TxState tx;
  // The image a cold-started sandbox made of itself to become transactional (held by its forks
  // too); null otherwise.
  std::shared_ptr<brig_python_image> own_image;

  // Timeouts: the watchdog interrupts guest code through `control` and wakes host sleeps
  // (time.sleep reaches poll_oneoff) through `sleep_cv`.
  brig_call_control control{};
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;

  // The next save may visit the candidate pages of the last page-table walk again
  // (brig_python_instance_candidates' `unfaulted`): set by a save, kept through executions
  // whose thread took no page fault and left the instance as it was (FaultWatch, sandbox.cc),
  // cleared by everything else that changes the sandbox (ForgetCandidates).
  bool candidates_kept = false;
  // Guest pages this sandbox has of its own (written since its clone), as counted by its
  // last page-snapshot save or trim: what PrivateBytes reports.
  uint64_t written_pages = 0;
  // Executions watched since the last save: the watch costs two getrusage calls (~1.2 µs
  // each on a virtual machine), so past kMaxWatchedExecutions (a session saved now and then,
  // not after each execution) the next save walks instead.
  uint32_t watched_executions = 0;
  static constexpr uint32_t kMaxWatchedExecutions = 8;
  void ForgetCandidates() { candidates_kept = false; }

  ~Impl() { brig_python_instance_destroy(instance); }

  void SleepInterruptibly(uint64_t ns) {
    if (tx.tape.replaying()) return;  // a replay reads the clocks the sleep left behind
    auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(sleep_mu);
    sleep_cv.wait_for(lock, std::chrono::nanoseconds(ns), [&] { return control.interrupted != 0; });
    tx.slept_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  }

  void Interrupt() {
    brig_call_interrupt(&control);
    std::lock_guard<std::mutex> lock(sleep_mu);
    sleep_cv.notify_all();
  }

  wasi::GuestMemory Memory() {
    wasm_rt_memory_t* m = brig_python_instance_memory(instance);
    return wasi::GuestMemory(m->data, m->size);
  }

  // Turns a guest call that did not return into the sandbox's death. False if it did not return.
  bool Returned(const brig_call_outcome& o, ExecutionResult* r) {
    if (o.status == BRIG_CALL_RETURNED) return true;
    if (o.status == BRIG_CALL_TRAPPED) {
      dead = Failure::kTrap;
      dead_message = std::string("WebAssembly trap: ") + wasm_rt_strerror(o.trap);
    } else if (o.status == BRIG_CALL_INTERRUPTED) {
      // Stopped mid-way, the interpreter's own state may be half-updated: not reused.
      dead = Failure::kTimeout;
      char text[96];
      std::snprintf(text, sizeof text, "the execution exceeded the %.3g s timeout", limits.timeout_seconds);
      dead_message = text;
    } else {
      dead = Failure::kExit;
      dead_message = "the guest exited with code " + std::to_string(o.exit_code);
      dead_exit_code = static_cast<int>(o.exit_code);
    }
    r->failure = dead;
    r->failure_message = dead_message;
    r->exit_code = dead_exit_code;
    r->ok = dead == Failure::kExit && o.exit_code == 0;
    return false;
  }

  // One execution under `call` (the sandbox's limits or an execution's own), streaming its
  // output to `on_output` if set (Sandbox::Execute's contract).
  ExecutionResult Execute(std::string_view code, std::string_view filename, const Limits& call,
                          const std::function<void(OutputStream, std::string_view)>& on_output);

  // Hands `code` to the guest and reads its result document into *r.
  void Run(std::string_view code, std::string_view filename, ExecutionResult* r);

  // ---- Transactions (transaction.cc).
  // Before an execution: wakes a compacted sandbox, takes a checkpoint if one is due, and
  // reseeds a fork's `random`. Not Ok if the sandbox cannot be brought back.
  Status PrepareRun();
  // Runs `code` as one recorded execution under the watchdog (Run plus the bookkeeping that
  // lets it be replayed). A failure (trap, timeout, exit) leaves `dead` set: see RollBack.
  void RunRecorded(std::string_view code, std::string_view filename, ExecutionResult* r);
  // After a failed execution (dead != kNone): puts the sandbox back in the state before it
  // and clears `dead`. If that is impossible, the sandbox stays dead and *r says why.
  void RollBack(ExecutionResult* r);
  // A new checkpoint of the current state; the log empties.
  Status TakeCheckpoint();
  // Gives the instance's memory back (the checkpoint keeps the state). Ok if already done.
  Status Compact();
  // Makes the instance again after Compact. Ok if it exists.
  Status Wake();
  // A new sandbox host side plus instance in the current state (see Sandbox::Fork).
  StatusOr<std::unique_ptr<Impl>> Fork();
  // Marks `instance` (just made, in the state `state`, or its backing's if null) as having
  // changed nothing: its checkpoint is free. Takes a reference to `state`.
  void SetPristine(brig_python_state* state);
};

// The limit of guest memory, in 64 KiB pages.
inline uint32_t LimitPages(const Limits& limits) { return static_cast<uint32_t>(limits.memory_bytes / 65536); }
// A sandbox's host side (file system, WASI) without its guest instance yet.
// `image_seed`: for making an image: the guest sees fixed clocks and a random stream that only
// the seed decides (WasiContext::Options::deterministic), so that the image is a function
// of the guest build and the seed.
StatusOr<std::unique_ptr<Sandbox::Impl>> NewImpl(const Limits& limits,
                                                 std::optional<uint64_t> image_seed = std::nullopt);
// The process's image of a ready interpreter, made on first use; null (and *why) if it
// cannot be made.
const brig_python_image* ProcessImage(std::string* why);
// Gives `impl` its guest: a clone of the process image, or (kCold) a new interpreter.
Status StartGuest(Sandbox::Impl* impl, Start start);

}  // namespace brig

#endif  // BRIG_SANDBOX_SANDBOX_IMPL_H_
