// Transactional executions, forks and compaction (see transaction.h for the design).
#include <algorithm>
#include <chrono>
#include <functional>
#include <string>

#include "sandbox/sandbox_impl.h"
#include "sandbox/watchdog.h"

namespace brig {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A new checkpoint is due once replaying the log would cost this many times what the last
// checkpoint cost: the checkpoints then cost at most ~1/kReplayFactor of the executions'
// time, and a rollback replays at most ~kReplayFactor checkpoints' worth.
constexpr uint64_t kReplayFactor = 25;
// A checkpoint is counted as at least this costly (the first ones of a sandbox are nearly
// free: nothing to record yet).
constexpr uint64_t kMinCheckpointNs = 50'000;
constexpr size_t kMaxLogRuns = 1000;
constexpr uint64_t kMaxLogBytes = 8ull << 20;
// What one run may take from outside (clock readings, random bytes) and still be replayable.
constexpr size_t kMaxRunTapeBytes = 4u << 20;
// A replay that runs this much longer than the runs it replays took has gone astray.
constexpr uint64_t kReplaySlack = 10;
constexpr double kMinReplaySeconds = 5.0;
// A fork may start from a checkpoint (its differences written into the fork as it is made)
// instead of a layer, if they are this few pages.
constexpr uint32_t kMaxForkDeltaPages = 64;

uint64_t ElapsedNs(SteadyClock::time_point since) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now() - since).count();
}

// What a run's outcome looks like from outside: a replay of it must look the same.
uint64_t Digest(const ExecutionResult& r, const wasi::WasiContext& w, brig_python_instance* p) {
  std::hash<std::string_view> hash;
  uint64_t h = 0x62726967;
  auto mix = [&](std::string_view s) { h = (h ^ hash(s)) * 0x9e3779b97f4a7c15ull + s.size(); };
  auto mix_n = [&](uint64_t v) { h = (h ^ v) * 0xc2b2ae3d27d4eb4full + 1; };
  mix_n(r.ok);
  mix_n(r.result.has_value());
  if (r.result) mix(*r.result);
  mix_n(r.error.has_value());
  if (r.error) {
    mix(r.error->type);
    mix(r.error->message);
    mix(r.error->traceback);
  }
  mix_n(r.exit_code.value_or(-1000));
  mix_n(static_cast<uint64_t>(r.failure));
  mix(r.failure_message);
  mix(w.stdout_data());
  mix(w.stderr_data());
  mix_n(brig_python_instance_memory(p)->size);
  return h;
}

struct HostCopy {
  std::unique_ptr<vfs::FileSystem> fs;
  std::unique_ptr<wasi::WasiContext> wasi;
};

// A copy of a sandbox's host side: the file system (sharing file contents) and a context
// with the same descriptors over it, made with `options`.
HostCopy CopyHost(const vfs::FileSystem& fs, const wasi::WasiContext& from, const wasi::WasiContext::Options& options) {
  vfs::FileSystem::NodeMap map;
  HostCopy c;
  c.fs = fs.Clone(&map);
  c.wasi = std::make_unique<wasi::WasiContext>(*c.fs, options);
  c.wasi->CopyStateFrom(from, &map);
  return c;
}

// Clock readings of the file system and the WASI context go through the sandbox's tape.
void Hook(Sandbox::Impl* impl) {
  wasi::Tape* tape = &impl->tx.tape;
  impl->fs->set_clock([tape] { return tape->Value(vfs::NowNs()); });
  impl->wasi->set_tape(tape);
  impl->tx.hooked = impl->fs.get();
}

// Page snapshots (sandbox_state.cc) diff an instance against the image by asking which pages
// are still the file's: only right for an instance mapped from the image alone.
void UpdateBaseImage(Sandbox::Impl* impl) {
  if (impl->base_image && !impl->tx.image) impl->tx.image = impl->base_image;
  bool plain = impl->instance && !impl->own_image && !brig_python_instance_layered(impl->instance);
  impl->base_image = plain ? impl->tx.image : nullptr;
}

// A cold-started instance has no image to take states against: it makes one of itself (a
// few ms, once) and goes on as a clone of it.
Status MakeTransactional(Sandbox::Impl* impl) {
  if (brig_python_instance_has_image(impl->instance)) return Status::Ok();
  brig_python_image* image = brig_python_image_capture(impl->instance);
  if (!image) return Status::ResourceExhausted("cannot capture the interpreter's state");
  std::shared_ptr<brig_python_image> owned(image, brig_python_image_destroy);
  brig_python_instance* clone = brig_python_instance_clone(image, impl->wasi.get(), LimitPages(impl->limits));
  if (!clone) return Status::ResourceExhausted("cannot map the interpreter's state");
  brig_python_instance_set_control(clone, &impl->control);
  brig_python_instance_destroy(impl->instance);
  impl->instance = clone;
  impl->own_image = std::move(owned);
  impl->SetPristine(nullptr);
  UpdateBaseImage(impl);
  return Status::Ok();
}

}  // namespace

void Sandbox::Impl::SetPristine(brig_python_state* state) {
  brig_python_state_release(tx.pristine);
  tx.pristine = state;
  tx.pristine_id = instance ? brig_python_instance_id(instance) : 0;
}

Status Sandbox::Impl::TakeCheckpoint() {
  auto start = SteadyClock::now();
  uint64_t id = brig_python_instance_id(instance);
  brig_python_state* memory = nullptr;
  if (tx.pristine_id == id) {
    memory = tx.pristine ? brig_python_state_ref(tx.pristine) : brig_python_instance_base_state(instance);
  } else {
    int damaged = 0;
    memory = brig_python_instance_checkpoint(instance, &damaged);
    if (damaged) {
      dead = Failure::kTrap;
      dead_message = "the sandbox's memory mapping failed while taking a checkpoint";
    }
  }
  tx.checkpoint.reset();
  tx.log.clear();
  tx.log_ns = tx.log_bytes = 0;
  if (!memory) return Status::ResourceExhausted("cannot take a checkpoint of the sandbox");
  auto cp = std::make_unique<Checkpoint>();
  cp->memory = memory;
  HostCopy host = CopyHost(*fs, *wasi, wasi->options());
  cp->fs = std::move(host.fs);
  cp->wasi = std::move(host.wasi);
  tx.checkpoint = std::move(cp);
  tx.instance_id = id;
  tx.fs_generation = fs->generation();
  tx.checkpoint_ns = ElapsedNs(start);
  UpdateBaseImage(this);
  return Status::Ok();
}

Status Sandbox::Impl::Wake() {
  if (!tx.compacted) return Status::Ok();
  brig_python_instance* fresh = brig_python_instance_from_state(tx.checkpoint->memory, wasi.get(), LimitPages(limits));
  if (!fresh) return Status::ResourceExhausted("cannot map the sandbox's memory again");
  brig_python_instance_set_control(fresh, &control);
  instance = fresh;
  tx.compacted = false;
  tx.instance_id = brig_python_instance_id(fresh);
  SetPristine(brig_python_state_ref(tx.checkpoint->memory));
  UpdateBaseImage(this);
  return Status::Ok();
}

Status Sandbox::Impl::Compact() {
  std::lock_guard<std::mutex> lock(tx.fork_mu);
  if (tx.compacted) return Status::Ok();
  if (dead != Failure::kNone) return Status::FailedPrecondition("the sandbox no longer runs code");
  if (tx.hooked != fs.get()) Hook(this);
  if (Status s = MakeTransactional(this); !s.ok()) return s;
  uint64_t id = brig_python_instance_id(instance);
  if (!tx.checkpoint || tx.instance_id != id || tx.fs_generation != fs->generation() || !tx.log.empty()) {
    if (Status s = TakeCheckpoint(); !s.ok()) return s;
  }
  brig_python_instance_destroy(instance);
  instance = nullptr;
  tx.compacted = true;
  tx.pristine_id = 0;
  brig_python_state_release(tx.shared);
  tx.shared = nullptr;
  UpdateBaseImage(this);
  return Status::Ok();
}

Status Sandbox::Impl::PrepareRun() {
  if (Status s = Wake(); !s.ok()) return s;
  if (tx.hooked != fs.get()) Hook(this);
  if (Status s = MakeTransactional(this); !s.ok()) {
    tx.checkpoint.reset();  // runs, but a failure cannot be undone
    return Status::Ok();
  }
  uint64_t id = brig_python_instance_id(instance);
  bool stale = !tx.checkpoint || tx.instance_id != id || tx.fs_generation != fs->generation();
  bool long_log = tx.log_ns > kReplayFactor * std::max(tx.checkpoint_ns, kMinCheckpointNs) ||
                  tx.log.size() >= kMaxLogRuns || tx.log_bytes >= kMaxLogBytes ||
                  // A replay would read and write the host's files again: never replay.
                  (!wasi->options().mounts.empty() && !tx.log.empty());
  if (stale || long_log) (void)TakeCheckpoint();  // without one, a failure cannot be undone
  if (!base_image && tx.image && !own_image) {
    // A fork froze what this sandbox grew into: map it again for page snapshots (their
    // pagemap walk must see it), now that the fork itself is done.
    brig_python_instance_populate(instance);
    UpdateBaseImage(this);
  }
  if (tx.reseed && dead == Failure::kNone) {
    // A fork starts with its parent's `random` state: give it its own stream, as a run of
    // its own so that a rollback replays it too.
    tx.reseed = false;
    ExecutionResult r;
    RunRecorded("__import__('_brig_runner')._reseed()\n", "<brig>", &r);
    wasi->ClearOutput();
    if (dead != Failure::kNone) RollBack(&r);
  }
  return Status::Ok();
}

void Sandbox::Impl::RunRecorded(std::string_view code, std::string_view filename, ExecutionResult* r) {
  LoggedRun entry;
  wasi->ClearOutput();
  brig_call_control_reset(&control);
  tx.slept_ns = 0;
  tx.pristine_id = 0;  // the memory is about to change
  auto start = SteadyClock::now();
  auto deadline = start + std::chrono::duration_cast<SteadyClock::duration>(
                              std::chrono::duration<double>(limits.timeout_seconds));
  Impl* self = this;
  Watchdog::Id alarm = Watchdog::Instance().Arm(deadline, [self] { self->Interrupt(); });
  entry.memory_pages = brig_python_instance_memory(instance)->max_pages;
  tx.tape.Record(&entry.tape, kMaxRunTapeBytes);
  Run(code, filename, r);
  tx.tape.Stop();
  Watchdog::Instance().Cancel(alarm);
  if (dead != Failure::kNone) return;  // not part of the state: RollBack undoes it
  tx.runs++;
  if (tx.tape.overflowed()) {
    // It took too much from outside to be replayed (e.g. millions of clock readings): the
    // state it left becomes the checkpoint instead.
    (void)TakeCheckpoint();
    return;
  }
  uint64_t ns = ElapsedNs(start);
  entry.ns = ns > tx.slept_ns ? ns - tx.slept_ns : 0;
  entry.code = code;
  entry.filename = filename;
  entry.digest = Digest(*r, *wasi, instance);
  tx.log_ns += entry.ns;
  tx.log_bytes += entry.code.size() + entry.filename.size() + entry.tape.size() + sizeof entry;
  tx.log.push_back(std::move(entry));
  tx.fs_generation = fs->generation();
}

void Sandbox::Impl::RollBack(ExecutionResult* r) {
  if (dead == Failure::kNone) return;
  auto fail = [&](const std::string& why) {
    dead_message += " (the sandbox could not be rolled back: " + why + ")";
    r->failure_message = dead_message;
  };
  if (!tx.checkpoint) return fail("no checkpoint");
  const Failure failure = dead;
  const std::string message = dead_message;
  const std::optional<int> exit_code = dead_exit_code;

  HostCopy host = CopyHost(*tx.checkpoint->fs, *tx.checkpoint->wasi, wasi->options());
  brig_python_instance* fresh = brig_python_instance_from_state(tx.checkpoint->memory, host.wasi.get(), LimitPages(limits));
  if (!fresh) return fail("cannot map its memory");
  brig_python_instance_set_control(fresh, &control);
  brig_python_instance_destroy(instance);
  instance = fresh;
  wasi = std::move(host.wasi);  // the old context goes first: it refers to the old file system
  fs = std::move(host.fs);
  Hook(this);
  SetPristine(brig_python_state_ref(tx.checkpoint->memory));
  dead = Failure::kNone;
  dead_message.clear();
  dead_exit_code.reset();

  // The runs since the checkpoint, again, each taking exactly what it took the first time.
  bool diverged = false;
  if (!tx.log.empty()) {
    tx.pristine_id = 0;
    double budget = std::max(kMinReplaySeconds, 1e-9 * static_cast<double>(kReplaySlack * tx.log_ns));
    brig_call_control_reset(&control);
    Impl* self = this;
    auto deadline = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(budget));
    Watchdog::Id alarm = Watchdog::Instance().Arm(deadline, [self] { self->Interrupt(); });
    for (const LoggedRun& run : tx.log) {
      wasi->ClearOutput();
      ExecutionResult again;
      // Under the memory limit it ran with (a MemoryError is part of its outcome).
      if (brig_python_instance_set_memory_limit(instance, run.memory_pages) != 0) {
        diverged = true;
        break;
      }
      tx.tape.Replay(&run.tape);
      Run(run.code, run.filename, &again);
      bool same = dead == Failure::kNone && tx.tape.Finished() && Digest(again, *wasi, instance) == run.digest;
      tx.tape.Stop();
      if (!same) {
        diverged = true;
        break;
      }
    }
    Watchdog::Instance().Cancel(alarm);
    wasi->ClearOutput();
    if (!diverged) (void)brig_python_instance_set_memory_limit(instance, LimitPages(limits));
  }
  tx.instance_id = brig_python_instance_id(instance);
  tx.fs_generation = fs->generation();
  UpdateBaseImage(this);
  if (diverged) {
    // Not the state the runs led to: nothing trustworthy to go on with.
    dead = failure;
    dead_message = message + " (rolling back failed: replaying the executions since the last checkpoint "
                             "did not give the same results)";
    dead_exit_code = exit_code;
    tx.checkpoint.reset();
    tx.log.clear();
    r->failure_message = dead_message;
    return;
  }
  r->failure_message = message + "; the sandbox was rolled back to its state before this execution";
}

StatusOr<std::unique_ptr<Sandbox::Impl>> Sandbox::Impl::Fork() {
  std::lock_guard<std::mutex> lock(tx.fork_mu);
  if (dead != Failure::kNone) return Status::FailedPrecondition("the sandbox no longer runs code");
  if (Status s = Wake(); !s.ok()) return s;
  if (tx.hooked != fs.get()) Hook(this);
  if (Status s = MakeTransactional(this); !s.ok()) return s;
  uint64_t id = brig_python_instance_id(instance);
  if (!tx.shared || tx.shared_instance != id || tx.shared_runs != tx.runs || tx.shared_fs_generation != fs->generation()) {
    int damaged = 0;
    brig_python_state* state = nullptr;
    if (tx.pristine_id == id) {
      // Unchanged since it was made (a fresh sandbox, a fork that has not run): forks can start
      // from the same state it did, with nothing to copy.
      state = tx.pristine ? brig_python_state_ref(tx.pristine) : brig_python_instance_base_state(instance);
      if (state && brig_python_state_delta_pages(state) > kMaxForkDeltaPages) {
        brig_python_state_release(state);
        state = nullptr;
      }
    }
    if (!state) state = brig_python_instance_share(instance, &damaged);
    if (!state) {
      if (damaged) {
        dead = Failure::kTrap;
        dead_message = "the sandbox's memory mapping failed while forking";
      }
      return Status::ResourceExhausted("cannot share the sandbox's memory");
    }
    brig_python_state_release(tx.shared);
    tx.shared = state;
    tx.shared_instance = id;
    tx.shared_runs = tx.runs;
    tx.shared_fs_generation = fs->generation();
    UpdateBaseImage(this);  // what it grew into is frozen now: it maps files besides the image
  }
  Limits child_limits = limits;
  child_limits.mounts.clear();  // a mount is not part of the state a fork copies
  auto made = NewImpl(child_limits);
  if (!made.ok()) return made.status();
  std::unique_ptr<Impl> child = std::move(made.value());
  child->start = start;
  child->own_image = own_image;
  child->tx.image = tx.image;
  wasi::WasiContext::Options options = child->wasi->options();
  child->wasi.reset();
  HostCopy host = CopyHost(*fs, *wasi, options);
  child->fs = std::move(host.fs);
  child->wasi = std::move(host.wasi);
  child->instance = brig_python_instance_from_state(tx.shared, child->wasi.get(), LimitPages(limits));
  if (!child->instance) return Status::ResourceExhausted("cannot map a forked sandbox");
  brig_python_instance_set_control(child->instance, &child->control);
  child->SetPristine(brig_python_state_ref(tx.shared));
  child->tx.reseed = true;
  UpdateBaseImage(child.get());
  return child;
}

void Sandbox::ReseedRandom() {
  impl_->ForgetCandidates();
  impl_->tx.reseed = true;
}

}  // namespace brig
