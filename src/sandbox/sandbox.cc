// A sandbox: one guest instance, its WASI context and its file system, and the protocol that
// hands code in and reads the outcome back (guest/brig_guest.c is the other side).
#include "brig/sandbox.h"

#include <sys/random.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>

#include "engine/page_snapshot.h"
#include "sandbox/display.h"
#include "sandbox/image_cache.h"
#include "sandbox/image_seed.h"
#include "sandbox/sandbox_impl.h"
#include "sandbox/watchdog.h"
#include "util/json_depth.h"
#include "vfs/pack.h"

extern "C" const char brig_stdlib_pack_begin[];
extern "C" const char brig_stdlib_pack_end[];

namespace brig {
namespace {

constexpr uint64_t kWasmPage = 65536;
constexpr uint64_t kMinMemory = 16ull << 20;
constexpr uint64_t kMaxMemory = 4096ull << 20;
// The result document the guest hands back is bounded: output travels through WASI, not here.
constexpr uint64_t kMaxResultBytes = 64ull << 20;

// The stdlib pack embedded in the binary, parsed once and shared (read-only) by all sandboxes.
const std::shared_ptr<const vfs::PackTree>& Stdlib(std::string* error) {
  static std::string parse_error;
  static std::shared_ptr<const vfs::PackTree> tree = [] {
    std::string_view bytes(brig_stdlib_pack_begin, brig_stdlib_pack_end - brig_stdlib_pack_begin);
    return vfs::PackTree::Parse(bytes, &parse_error);
  }();
  if (!tree) *error = parse_error;
  return tree;
}

// The system's tz directory, /usr/share/zoneinfo: a second view of the pack's tzdata/zoneinfo
// (the same bytes) without the files that make it a Python package, made once and shared like
// the pack; null if the pack has none.
const std::shared_ptr<const vfs::PackTree>& Zoneinfo(const std::shared_ptr<const vfs::PackTree>& stdlib) {
  static std::shared_ptr<const vfs::PackTree> tree =
      stdlib->Subtree("tzdata/zoneinfo", vfs::kZoneinfoMount, {"__init__.py", "__pycache__"});
  return tree;
}

std::string TruncationMarker(uint64_t dropped) {
  return "\n[brig: output truncated, " + std::to_string(dropped) + " more bytes dropped]\n";
}

// Reads the guest's result document into `r`. Every field is checked: the guest is untrusted.
// A host call (code the host runs under kHostFilename) may instead answer "H" + its value's
// text, taken as it is as the result.
bool ParseGuestResult(const std::string& text, bool host_call, ExecutionResult* r, std::string* why) {
  if (!text.empty() && text[0] == 'H') {
    if (!host_call) return *why = "a host reply to user code", false;
    r->ok = true;
    r->result = text.substr(1);
    return true;
  }
  // Copying and destroying a parsed value recurse: no deeper than the guest's runner makes.
  if (JsonNestsTooDeep(text)) return *why = "result nests too deep", false;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return *why = "result is not a JSON object", false;
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) return *why = "result.ok is not a boolean", false;
  r->ok = ok->get<bool>();
  auto value = j.find("result");
  if (value != j.end() && !value->is_null()) {
    if (!value->is_string()) return *why = "result.result is not a string", false;
    r->result = value->get<std::string>();
  }
  auto error = j.find("error");
  if (error != j.end() && !error->is_null()) {
    if (!error->is_object()) return *why = "result.error is not an object", false;
    PythonError e;
    for (auto [key, field] : {std::pair{"type", &e.type}, {"message", &e.message}, {"traceback", &e.traceback}}) {
      auto it = error->find(key);
      if (it == error->end() || !it->is_string()) return *why = std::string("result.error.") + key + " is not a string", false;
      *field = it->get<std::string>();
    }
    r->error = std::move(e);
  }
  auto exit_code = j.find("exit_code");
  if (exit_code != j.end() && !exit_code->is_null()) {
    if (!exit_code->is_number_integer()) return *why = "result.exit_code is not an integer", false;
    r->exit_code = static_cast<int>(exit_code->get<int64_t>());
  }
  sandbox::ReadGuestDisplay(j, r);
  return true;
}

}  // namespace

std::string_view FailureName(Failure failure) {
  switch (failure) {
    case Failure::kNone: return "none";
    case Failure::kTrap: return "trap";
    case Failure::kExit: return "exit";
    case Failure::kTimeout: return "timeout";
    case Failure::kGuestError: return "guest_error";
  }
  return "unknown";
}

void Sandbox::Impl::Run(std::string_view code, std::string_view filename, ExecutionResult* r) {
  // Code and file name go into one guest buffer; its address comes from the guest.
  uint64_t total = code.size() + filename.size();
  if (total > UINT32_MAX / 2) {
    r->failure = Failure::kGuestError;
    r->failure_message = "code too large";
    return;
  }
  uint32_t buf = 0;
  if (!Returned(brig_python_alloc(instance, static_cast<uint32_t>(total), &buf), r)) return;
  wasi::GuestMemory mem = Memory();
  if (buf == 0 || !mem.InBounds(buf, total)) {
    r->error = PythonError{"MemoryError", "no guest memory for the code", ""};
    r->ok = false;
    return;
  }
  if (!mem.CopyOut(buf, code.data(), code.size()) ||
      !mem.CopyOut(buf + code.size(), filename.data(), filename.size())) {
    r->failure = Failure::kGuestError;
    r->failure_message = "guest buffer out of bounds";
    return;
  }
  int32_t len = -1;
  brig_call_outcome o = brig_python_execute(instance, buf, static_cast<uint32_t>(code.size()),
                                            buf + static_cast<uint32_t>(code.size()),
                                            static_cast<uint32_t>(filename.size()), &len);
  if (!Returned(o, r)) return;
  if (!Returned(brig_python_free(instance, buf), r)) return;
  if (len < 0) {
    r->failure = Failure::kGuestError;
    r->failure_message = "the guest runner failed (see stderr)";
    return;
  }
  if (len == 0) {  // succeeded, no value to show: the runner's short answer
    r->ok = true;
    return;
  }
  uint32_t result_ptr = 0;
  if (!Returned(brig_python_result(instance, &result_ptr), r)) return;
  mem = Memory();
  std::string text;
  if (static_cast<uint64_t>(len) > kMaxResultBytes || !mem.InBounds(result_ptr, static_cast<uint64_t>(len))) {
    r->failure = Failure::kGuestError;
    r->failure_message = "the guest's result is out of bounds";
    return;
  }
  text.resize(static_cast<size_t>(len));
  if (!mem.CopyIn(result_ptr, text.data(), text.size())) {
    r->failure = Failure::kGuestError;
    r->failure_message = "the guest's result is out of bounds";
    return;
  }
  std::string why;
  if (!ParseGuestResult(text, filename == kHostFilename, r, &why)) {
    r->ok = false;
    r->failure = Failure::kGuestError;
    r->failure_message = "malformed result from the guest: " + why;
  }
}

Sandbox::Sandbox(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sandbox::~Sandbox() = default;

std::string_view Sandbox::GuestBuildId() { return brig_python_build_id(); }

bool Sandbox::usable() const { return impl_->dead == Failure::kNone; }

Status ValidateLimits(const Limits& limits) {
  if (limits.memory_bytes < kMinMemory || limits.memory_bytes > kMaxMemory) {
    return Status::InvalidArgument("memory limit must be between 16 MiB and 4096 MiB");
  }
  if (!(limits.timeout_seconds > 0) || !(limits.timeout_seconds <= 1e6)) {
    return Status::InvalidArgument("timeout must be positive and at most 1e6 seconds");
  }
  if (limits.output_bytes == 0) return Status::InvalidArgument("output limit must be positive");
  std::vector<std::string> points;
  for (const Mount& m : limits.mounts) points.push_back(m.guest_dir);
  if (std::string e = wasi::CheckMountPoints(points); !e.empty()) return Status::InvalidArgument(e);
  return Status::Ok();
}

// A sandbox's host side (file system, WASI) without its guest instance yet.
StatusOr<std::unique_ptr<Sandbox::Impl>> NewImpl(const Limits& limits, std::optional<uint64_t> image_seed) {
  std::string pack_error;
  const auto& stdlib = Stdlib(&pack_error);
  if (!stdlib) return Status::Internal("the embedded stdlib is damaged: " + pack_error);
  auto impl = std::make_unique<Sandbox::Impl>();
  impl->limits = limits;
  vfs::FileSystem::Options fs_options;
  fs_options.stdlib = stdlib;
  fs_options.zoneinfo = Zoneinfo(stdlib);
  fs_options.limits.max_total_bytes = limits.file_bytes;
  fs_options.limits.SetFileLimit(limits.max_files);  // and room for as many directories
  fs_options.limits.max_file_size = limits.max_file_bytes;
  impl->fs = std::make_unique<vfs::FileSystem>(std::move(fs_options));

  wasi::WasiContext::Options wasi_options;
  wasi_options.args = {"python3"};
  wasi_options.env = {"HOME=/home/user", "USER=user", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin"};
  wasi_options.stdout_cap = limits.output_bytes;
  wasi_options.stderr_cap = limits.output_bytes;
  wasi_options.deterministic = image_seed.has_value();
  wasi_options.random_seed = image_seed.value_or(0);
  Sandbox::Impl* raw = impl.get();
  wasi_options.sleep = [raw](uint64_t ns) { raw->SleepInterruptibly(ns); };
  for (const Mount& mount : limits.mounts) {
    wasi::HostMount::Quota quota;
    quota.max_bytes_written = limits.file_bytes;
    quota.max_file_size = limits.max_file_bytes;
    std::string error;
    auto m = wasi::HostMount::Open(mount.host_dir, mount.guest_dir, mount.writable, quota, &error);
    if (!m) return Status::InvalidArgument(error);
    wasi_options.mounts.push_back(std::move(m));
  }
  impl->wasi = std::make_unique<wasi::WasiContext>(*impl->fs, std::move(wasi_options));
  return impl;
}

// Starts CPython from scratch in `impl` (~25 ms).
namespace {

Status StartCold(Sandbox::Impl* impl) {
  uint32_t pages = static_cast<uint32_t>(impl->limits.memory_bytes / kWasmPage);
  impl->instance = brig_python_instance_create(impl->wasi.get(), pages);
  if (!impl->instance) return Status::ResourceExhausted("cannot create a guest instance");
  brig_python_instance_set_control(impl->instance, &impl->control);
  int32_t status = -1;
  ExecutionResult r;
  if (!impl->Returned(brig_python_initialize(impl->instance, &status), &r) || status != 0) {
    std::string detail = r.failure_message.empty() ? impl->wasi->stderr_data() : r.failure_message;
    return Status::Internal("the Python interpreter failed to start: " + detail);
  }
  impl->wasi->ClearOutput();
  return Status::Ok();
}

// Descriptors a fresh interpreter holds: stdin, stdout, stderr and the preopened "/". A clone
// gets a new WasiContext with exactly these, so the image must hold no others.
constexpr size_t kImageFds = 4;

// A fresh seed for an image's random stream: each image gets its own string-hash secret.
uint64_t NewImageSeed() {
  uint64_t seed = 0;
  while (getrandom(&seed, sizeof seed, 0) != static_cast<ssize_t>(sizeof seed)) {
    if (errno != EINTR) break;
  }
  return seed;
}

// Makes the process image: CPython started, the common modules imported, the heap frozen.
// *save: whether it is worth keeping for later processes.
brig_python_image* MakeImage(std::optional<uint64_t> wanted_seed, std::string* error, bool* save) {
  Limits limits;
  limits.memory_bytes = kMaxMemory;  // clones apply their own limit
  uint64_t seed = wanted_seed ? *wanted_seed : NewImageSeed();
  auto impl = NewImpl(limits, seed);
  if (!impl.ok()) return *error = impl.status().message(), nullptr;
  Status started = StartCold(impl.value().get());
  if (!started.ok()) return *error = started.message(), nullptr;
  ExecutionResult r;
  impl.value()->Run("import _brig_runner as _b\n_b.prepare_image()\ndel _b\n", "<brig-image>", &r);
  if (!r.ok || r.failure != Failure::kNone) {
    *error = "preparing the image failed: " + r.stderr_text + r.failure_message + impl.value()->wasi->stderr_data();
    return nullptr;
  }
  if (impl.value()->wasi->open_fd_count() != kImageFds) return *error = "the image would hold open files", nullptr;
  brig_python_image* image = brig_python_image_capture(impl.value()->instance);
  if (!image) return *error = "cannot capture the image (out of memory or descriptors)", nullptr;
  brig_python_image_set_random_seed(image, seed);
  // A probe clone runs one execution so the image learns which pages executions write.
  auto probe = NewImpl(limits);
  if (!probe.ok()) return image;
  probe.value()->instance = brig_python_instance_clone(image, probe.value()->wasi.get(), 0);
  if (!probe.value()->instance) return image;
  brig_python_instance_set_control(probe.value()->instance, &probe.value()->control);
  ExecutionResult warm;
  probe.value()->Run("pass\n", "<exec>", &warm);
  if (warm.ok) {
    int n = brig_python_image_learn_warm_pages(image, probe.value()->instance);
    if (std::getenv("BRIG_DEBUG_IMAGE")) {
      std::fprintf(stderr, "brig: image %llu bytes, %d warm pages, digest %016llx\n",
                   (unsigned long long)brig_python_image_memory_bytes(image), n,
                   (unsigned long long)brig_python_image_digest(image));
    }
    *save = true;
  }
  return image;
}

}  // namespace

namespace {

// The seed UseImageSeed asked for, and whether ProcessImage has read it (then it is fixed).
std::mutex image_seed_mu;
std::optional<uint64_t> image_seed;  // GUARDED_BY(image_seed_mu)
bool image_seed_fixed = false;       // GUARDED_BY(image_seed_mu)

}  // namespace

// The image from the cache (made by an earlier process) or made now.
const brig_python_image* ProcessImage(std::string* why) {
  static std::once_flag once;
  static brig_python_image* image = nullptr;
  static std::string error;
  std::call_once(once, [] {
    std::optional<uint64_t> seed;
    {
      std::lock_guard<std::mutex> lock(image_seed_mu);
      seed = image_seed;
      image_seed_fixed = true;
    }
    image = image_cache::LoadOrMake(seed, [seed](bool* save) { return MakeImage(seed, &error, save); });
  });
  if (!image) *why = error;
  return image;
}

bool UseImageSeed(uint64_t seed) {
  {
    std::lock_guard<std::mutex> lock(image_seed_mu);
    if (!image_seed_fixed) {
      image_seed = seed;
      return true;
    }
  }
  std::string why;
  const brig_python_image* image = ProcessImage(&why);  // made, or being made: wait for it
  return image && brig_python_image_random_seed(image) == seed;
}

std::string Sandbox::ImageFile() { return image_cache::HeldFile(); }

bool Sandbox::HoldImageFile(const std::string& path) { return image_cache::Hold(path); }

// Gives `impl` its guest: a clone of the process image, or (cold) a new interpreter.
Status StartGuest(Sandbox::Impl* impl, Start start) {
  const char* no_image = std::getenv("BRIG_NO_IMAGE");
  bool cold = start == Start::kCold || (no_image && *no_image == '1');
  std::string why;
  const brig_python_image* image = cold ? nullptr : ProcessImage(&why);
  if (!image) return StartCold(impl);  // an image that cannot be made falls back to cold
  const Limits& limits = impl->limits;
  uint64_t needed = brig_python_image_memory_bytes(image);
  if (limits.memory_bytes < needed) {
    return Status::InvalidArgument("memory limit below the interpreter's own " + std::to_string(needed >> 20) + " MiB");
  }
  impl->instance = brig_python_instance_clone(image, impl->wasi.get(),
                                              static_cast<uint32_t>(limits.memory_bytes / kWasmPage));
  if (!impl->instance) return Status::ResourceExhausted("cannot map a new sandbox");
  impl->base_image = image;
  brig_python_instance_set_control(impl->instance, &impl->control);
  impl->SetPristine(nullptr);  // nothing changed yet: its first checkpoint is free
  return Status::Ok();
}

StatusOr<std::unique_ptr<Sandbox>> Sandbox::Create(const Limits& limits, Start start) {
  if (Status valid = ValidateLimits(limits); !valid.ok()) return valid;
  auto made = NewImpl(limits);
  if (!made.ok()) return made.status();
  std::unique_ptr<Impl> impl = std::move(made.value());
  impl->start = start;
  if (Status started = StartGuest(impl.get(), start); !started.ok()) return started;
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(impl)));
}

Status Sandbox::Reset() {
  auto made = NewImpl(impl_->limits);
  if (!made.ok()) return made.status();
  std::unique_ptr<Impl> fresh = std::move(made.value());
  fresh->start = impl_->start;
  if (Status started = StartGuest(fresh.get(), fresh->start); !started.ok()) return started;
  impl_ = std::move(fresh);
  return Status::Ok();
}

namespace {

// Page faults the calling thread has taken (minor and major, GUP's included: the kernel
// counts every fault for the thread that caused it); kUnknownFaults if it cannot tell.
constexpr uint64_t kUnknownFaults = ~uint64_t{0};
uint64_t ThreadFaults() {
  rusage u{};
  if (getrusage(RUSAGE_THREAD, &u) != 0) return kUnknownFaults;
  return static_cast<uint64_t>(u.ru_minflt) + static_cast<uint64_t>(u.ru_majflt);
}

// Keeps the save's kept candidates (Impl::candidates_kept) through one execution only if its
// thread took no page fault meanwhile and the instance is the same one, in the same shape: a
// page of guest memory becomes one this process wrote only through a fault, and only this
// thread touches the sandbox while it runs. Faults elsewhere in the thread (its malloc, its
// stack) just cost the next save its walk.
class FaultWatch {
 public:
  explicit FaultWatch(Sandbox::Impl* impl)
      : impl_(impl),
        watching_(Watch(impl)),
        instance_(watching_ ? impl->instance : nullptr),
        id_(instance_ ? brig_python_instance_id(instance_) : 0),
        layered_(instance_ ? brig_python_instance_layered(instance_) : 0),
        before_(watching_ ? ThreadFaults() : kUnknownFaults) {}
  ~FaultWatch() {
    if (!watching_) return;
    const bool same = before_ != kUnknownFaults && impl_->instance == instance_ && instance_ &&
                      brig_python_instance_id(instance_) == id_ && brig_python_instance_layered(instance_) == layered_ &&
                      impl_->dead == Failure::kNone && ThreadFaults() == before_;
    if (!same) impl_->ForgetCandidates();
  }
  FaultWatch(const FaultWatch&) = delete;
  FaultWatch& operator=(const FaultWatch&) = delete;

 private:
  static bool Watch(Sandbox::Impl* impl) {
    if (!impl->candidates_kept) return false;
    if (++impl->watched_executions > Sandbox::Impl::kMaxWatchedExecutions) {
      impl->ForgetCandidates();
      return false;
    }
    return true;
  }

  Sandbox::Impl* impl_;
  bool watching_;
  brig_python_instance* instance_;
  uint64_t id_;
  int layered_;
  uint64_t before_;
};

}  // namespace

ExecutionResult Sandbox::Impl::Execute(std::string_view code, std::string_view filename, const Limits& call,
                                       const std::function<void(OutputStream, std::string_view)>& on_output) {
  FaultWatch faults(this);  // first: its destructor runs after everything below
  ExecutionResult r;
  auto start = std::chrono::steady_clock::now();
  if (dead != Failure::kNone) {
    r.failure = dead;
    r.failure_message = dead_message + " (the sandbox no longer runs code)";
    r.exit_code = dead_exit_code;
    return r;
  }
  // This execution's limits, for everything it does (the watchdog, a wake-up, a rollback);
  // the sandbox's own come back after it.
  const Limits own = limits;
  limits = call;
  if (Status ready = PrepareRun(); !ready.ok() || dead != Failure::kNone) {
    r.failure = dead != Failure::kNone ? dead : Failure::kGuestError;
    r.failure_message = dead != Failure::kNone ? dead_message : ready.message();
    limits = own;
    return r;
  }
  // At least what it holds (only the old Execute overload gets here with less: no growth then).
  const wasm_rt_memory_t* memory = brig_python_instance_memory(instance);
  uint32_t memory_pages = std::max(LimitPages(call), memory->pages);
  if (memory->max_pages != memory_pages && brig_python_instance_set_memory_limit(instance, memory_pages) != 0) {
    r.failure = Failure::kGuestError;
    r.failure_message = "cannot apply the memory limit of " + std::to_string(call.memory_bytes >> 20) + " MiB";
    limits = own;
    return r;
  }
  // The caller's callback sees the guest's output, never an exception of its own making
  // in guest frames, and nothing once it has thrown.
  bool streaming = static_cast<bool>(on_output);
  auto emit = [&](OutputStream stream, std::string_view bytes) {
    if (!streaming) return;
    try {
      on_output(stream, bytes);
    } catch (...) {
      streaming = false;
    }
  };
  if (streaming) {
    wasi->set_output_sink([&emit](uint32_t fd, std::string_view bytes) {
      emit(fd == 1 ? OutputStream::kStdout : OutputStream::kStderr, bytes);
    });
  }
  RunRecorded(code, filename, &r);  // under the watchdog; recorded for rollbacks
  wasi->set_output_sink(nullptr);   // a rollback's replays run without it

  const wasi::WasiContext& w = *wasi;
  r.stdout_text = w.stdout_data();
  r.stderr_text = w.stderr_data();
  r.stdout_truncated = w.stdout_truncated();
  r.stderr_truncated = w.stderr_truncated();
  if (r.stdout_truncated) {
    std::string marker = TruncationMarker(w.stdout_dropped());
    emit(OutputStream::kStdout, marker);
    r.stdout_text += marker;
  }
  if (r.stderr_truncated) {
    std::string marker = TruncationMarker(w.stderr_dropped());
    emit(OutputStream::kStderr, marker);
    r.stderr_text += marker;
  }
  wasi->ClearOutput();
  // A trap, timeout or exit: back to the state before this execution (the result still says
  // what happened, and keeps the output up to it).
  if (dead != Failure::kNone) RollBack(&r);
  limits = own;
  // Memory this execution grew into stays; below it, the sandbox's own limit applies again.
  if (instance) {
    const wasm_rt_memory_t* now = brig_python_instance_memory(instance);
    uint32_t own_pages = std::max(LimitPages(own), now->pages);
    if (now->max_pages != own_pages) (void)brig_python_instance_set_memory_limit(instance, own_pages);
  }
  r.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return r;
}

ExecutionResult Sandbox::Execute(std::string_view code, std::string_view filename) {
  return impl_->Execute(code, filename, impl_->limits, nullptr);
}

StatusOr<ExecutionResult> Sandbox::Execute(std::string_view code, const ExecuteOptions& options,
                                           std::string_view filename) {
  Limits call = impl_->limits;
  if (options.timeout_seconds) call.timeout_seconds = *options.timeout_seconds;
  if (options.memory_bytes) call.memory_bytes = *options.memory_bytes;
  if (Status valid = ValidateLimits(call); !valid.ok()) return valid;
  if (uint64_t held = GuestMemoryBytes(); held > call.memory_bytes) {
    return Status::FailedPrecondition("the interpreter already holds " + std::to_string(held >> 20) +
                                      " MiB of memory, more than this execution's limit of " +
                                      std::to_string(call.memory_bytes >> 20) + " MiB (run it with a higher memory limit)");
  }
  return impl_->Execute(code, filename, call, options.on_output);
}

StatusOr<std::unique_ptr<Sandbox>> Sandbox::Fork() {
  impl_->ForgetCandidates();
  auto child = impl_->Fork();
  if (!child.ok()) return child.status();
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(child.value())));
}

Status Sandbox::Compact() {
  impl_->ForgetCandidates();
  return impl_->Compact();
}

StatusOr<uint64_t> Sandbox::Trim() {
  impl_->ForgetCandidates();
  if (impl_->dead != Failure::kNone) return Status::FailedPrecondition("the sandbox no longer runs code");
  if (!impl_->instance) return uint64_t{0};  // compacted: nothing private left to give back
  int64_t pages = brig_python_instance_trim(impl_->instance);
  if (pages < 0) return Status::Internal("cannot read which pages the sandbox wrote");
  impl_->written_pages -= std::min(impl_->written_pages, static_cast<uint64_t>(pages));
  return static_cast<uint64_t>(pages) * 4096;
}

uint64_t Sandbox::PrivateBytes() const {
  const uint64_t files = GetFileUsage().bytes;
  if (impl_->instance) return files + impl_->written_pages * 4096;
  // Compacted: what its recorded differences keep.
  return files + (impl_->tx.checkpoint ? brig_python_state_private_bytes(impl_->tx.checkpoint->memory) : 0);
}

uint64_t Sandbox::GuestMemoryBytes() const {
  if (impl_->instance) return brig_python_instance_memory(impl_->instance)->size;
  return impl_->tx.checkpoint ? brig_python_state_memory_bytes(impl_->tx.checkpoint->memory) : 0;
}

ExecutionResult ExecuteOnce(std::string_view code, const Limits& limits, std::string_view filename) {
  auto sandbox = Sandbox::Create(limits);
  if (!sandbox.ok()) {
    ExecutionResult r;
    r.failure = Failure::kGuestError;
    r.failure_message = sandbox.status().message();
    return r;
  }
  return sandbox.value()->Execute(code, filename);
}

}  // namespace brig
