// Fuzz target: Sandbox::RestorePages and Sandbox::LoadPortable on damaged and hostile
// snapshots, on a real guest (CPython, cloned from this process's image). The host-side code
// (sandbox, engine, WASI, VFS) is instrumented; the guest's generated C is not (it is the
// sandboxed side: what it does to its own memory is its business).
//
// The first input byte picks the mode:
//   0  the rest, as is, to RestorePages (header framing, JSON, zstd body)
//   1  the rest, as is, to LoadPortable (the guest's own parser; the host reads its reply)
//   2  a page snapshot built from the input with this build's guest id and image digest,
//      so that it passes the identity checks: memory size, globals (the shadow-stack pointer),
//      saved descriptors (paths, offsets, rights), page indices and XOR deltas all come
//      from the input, and a few flags break the framing on purpose
//   3  a real page snapshot (of a sandbox that ran some code) with bytes changed by the input
// A restore that succeeds is followed by two executions: whatever the restored memory makes
// the guest do (trap, loop until the timeout, exit, print garbage, break brig's reply
// protocol), the host must report it and stay well.
#include <fuzzer/FuzzedDataProvider.h>
#include <signal.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "brig/sandbox.h"
#include "fuzz_vfs_check.h"

namespace {

// What SavePages writes (records of differing words), and the older form still read (whole
// XORed pages).
constexpr char kMagic[] = "BRIGPG02";
constexpr char kWholeMagic[] = "BRIGPG01";

struct Base {
  brig::Limits limits;
  nlohmann::json header;  // of a real page snapshot: build id, digest, pages, globals
  std::string real;       // a real page snapshot (mode 3)
};

std::unique_ptr<brig::Sandbox> NewSandbox(const brig::Limits& limits) {
  auto s = brig::Sandbox::Create(limits);
  FUZZ_CHECK(s.ok(), "%s", s.status().message().c_str());
  return std::move(s.value());
}

nlohmann::json HeaderOf(const std::string& snapshot) {
  uint32_t len = 0;
  FUZZ_CHECK(snapshot.size() > 12 && snapshot.compare(0, 8, kMagic) == 0, "SavePages wrote another format");
  std::memcpy(&len, snapshot.data() + 8, 4);
  return nlohmann::json::parse(snapshot.substr(12, len));
}

const Base& GetBase() {
  static const Base* base = [] {
    auto* b = new Base;
    b->limits.timeout_seconds = 0.25;  // restored garbage may loop forever
    if (const char* t = std::getenv("BRIG_FUZZ_TIMEOUT")) b->limits.timeout_seconds = std::atof(t);
    b->limits.memory_bytes = 64ull << 20;
    b->limits.output_bytes = 4096;
    auto fresh = NewSandbox(b->limits);
    auto pages = fresh->SavePages();
    FUZZ_CHECK(pages.ok(), "%s", pages.status().message().c_str());
    b->header = HeaderOf(pages.value());
    auto used = NewSandbox(b->limits);
    (void)used->WriteFile("/home/user/f", "hello");
    brig::ExecutionResult r =
        used->Execute("import json\nd = {i: str(i) * 10 for i in range(2000)}\nf = open('/home/user/f')\n");
    FUZZ_CHECK(r.ok, "%s", r.stderr_text.c_str());
    auto real = used->SavePages();
    FUZZ_CHECK(real.ok(), "%s", real.status().message().c_str());
    b->real = std::move(real.value());
    return b;
  }();
  return *base;
}

template <typename T>
void Append(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string Built(FuzzedDataProvider& in, const Base& base) {
  const uint8_t flags = in.ConsumeIntegral<uint8_t>();
  nlohmann::json h = base.header;
  const uint64_t image_pages = h["memory_pages"].get<uint64_t>();
  uint64_t pages = image_pages + in.ConsumeIntegralInRange<uint64_t>(0, 24);
  if (flags & 1) pages = in.ConsumeIntegral<uint64_t>();
  h["memory_pages"] = pages;
  if (flags & 2) h["guest_build_id"] = in.ConsumeRandomLengthString(16);
  if (flags & 4) h["image_digest"] = in.ConsumeRandomLengthString(20);
  if (flags & 8) {
    auto& g = h["globals"];
    for (auto& v : g) {
      if (in.ConsumeBool()) v = in.ConsumeIntegral<uint64_t>();
    }
    if (in.ConsumeBool()) g.push_back(in.ConsumeIntegral<uint64_t>());
  }
  nlohmann::json fds = nlohmann::json::array();
  const int nfds = in.ConsumeIntegralInRange(0, 2);
  static const char* kPaths[] = {"/home/user/f", "/tmp/d", "/home/user", "/etc/passwd", "/tmp/d/../../home/user/f", ""};
  for (int i = 0; i < nfds; ++i) {
    nlohmann::json f;
    f["fd"] = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 8) : in.ConsumeIntegral<uint32_t>();
    f["directory"] = in.ConsumeBool();
    f["path"] = in.ConsumeBool() ? std::string(kPaths[in.ConsumeIntegralInRange(0, 5)]) : in.ConsumeRandomLengthString(32);
    f["offset"] = in.ConsumeIntegral<uint64_t>();
    f["fdflags"] = in.ConsumeIntegral<uint16_t>();
    f["rights_base"] = in.ConsumeIntegral<uint64_t>();
    f["rights_inheriting"] = in.ConsumeIntegral<uint64_t>();
    if (in.ConsumeIntegralInRange(0, 7) == 0) f.erase(f.begin());  // a missing field
    fds.push_back(std::move(f));
  }
  h["fds"] = std::move(fds);

  // Pages: indices (ascending unless flag 16) and XOR deltas, a few bytes of each page: as
  // whole pages (BRIGPG01) or as records of a word mask and the masked words (BRIGPG02), whose
  // counts may not match (a mask bit more or less than the words given).
  const bool whole = in.ConsumeBool();
  const uint64_t host_pages = std::min<uint64_t>(pages, 1 << 16) * 16;
  std::vector<uint32_t> index;
  std::string deltas;
  const int n = in.ConsumeIntegralInRange(0, 6);
  uint32_t at = in.ConsumeIntegralInRange<uint32_t>(0, host_pages ? host_pages - 1 : 0);
  for (int i = 0; i < n; ++i) {
    index.push_back(at);
    if (whole) {
      std::string page(4096, '\0');
      const uint32_t off = in.ConsumeIntegralInRange<uint32_t>(0, 4095);
      std::string bytes = in.ConsumeRandomLengthString(64);
      std::memcpy(page.data() + off, bytes.data(), std::min<size_t>(bytes.size(), 4096 - off));
      deltas += page;
    } else {
      uint64_t mask[8] = {};
      const int words = in.ConsumeIntegralInRange(0, 8);
      for (int w = 0; w < words; ++w) {
        const uint32_t word = in.ConsumeIntegralInRange<uint32_t>(0, 511);
        mask[word / 64] |= uint64_t{1} << (word % 64);
      }
      if (in.ConsumeIntegralInRange(0, 15) == 0) mask[in.ConsumeIntegralInRange(0, 7)] = in.ConsumeIntegral<uint64_t>();
      int count = 0;
      for (uint64_t m : mask) {
        Append<uint64_t>(&deltas, m);
        count += __builtin_popcountll(m);
      }
      const int given = count + (in.ConsumeIntegralInRange(0, 15) == 0 ? in.ConsumeIntegralInRange(-2, 2) : 0);
      for (int w = 0; w < given; ++w) Append<uint64_t>(&deltas, in.ConsumeIntegral<uint64_t>());
    }
    at += (flags & 16) ? in.ConsumeIntegral<uint32_t>() : 1 + in.ConsumeIntegralInRange<uint32_t>(0, 300);
  }
  h["page_count"] = (flags & 32) ? in.ConsumeIntegralInRange<uint64_t>(0, 8) : index.size();
  std::string body(reinterpret_cast<const char*>(index.data()), index.size() * 4);
  body += deltas;
  std::string z(ZSTD_compressBound(body.size()), '\0');
  const size_t zn = ZSTD_compress(z.data(), z.size(), body.data(), body.size(), 1);
  FUZZ_CHECK(!ZSTD_isError(zn));
  z.resize(zn);
  if (flags & 64 && !z.empty()) z[in.ConsumeIntegralInRange<size_t>(0, z.size() - 1)] ^= 1 + in.ConsumeIntegral<uint8_t>() % 255;

  const std::string text = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(whole ? kWholeMagic : kMagic, 8);
  Append<uint32_t>(&out, static_cast<uint32_t>(text.size()));
  out += text;
  Append<uint64_t>(&out, (flags & 128) ? in.ConsumeIntegral<uint64_t>() : z.size());
  out += z;
  return out;
}

std::string Mutated(FuzzedDataProvider& in, const Base& base) {
  std::string s = base.real;
  while (in.remaining_bytes() >= 3) {
    const size_t pos = in.ConsumeIntegralInRange<size_t>(0, s.size() - 1);
    s[pos] = static_cast<char>(in.ConsumeIntegral<uint8_t>());
  }
  return s;
}

void RunSome(brig::Sandbox& s) {
  for (const char* code : {"x = 1\nx", "import json\njson.dumps(sorted(globals()))"}) {
    brig::ExecutionResult r = s.Execute(code);
    FUZZ_CHECK(r.ok || r.error || r.failure != brig::Failure::kNone, "an execution neither ran nor failed");
    FUZZ_CHECK(r.stdout_text.size() <= 4096 + 256 && r.stderr_text.size() <= 4096 + 256);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("BRIG_IMAGE_CACHE", "off", 1);  // each run makes its own image; none is written
  GetBase();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A fault outside guest memory ends the process through brig's own handler (the default
  // action, not libFuzzer's), so libFuzzer saves no input: BRIG_FUZZ_SAVE_INPUT=FILE keeps
  // the one being run.
  static const char* save = std::getenv("BRIG_FUZZ_SAVE_INPUT");
  if (save) {
    if (FILE* f = std::fopen(save, "wb")) {
      std::fwrite(data, 1, size, f);
      std::fclose(f);
    }
  }
  // libFuzzer installs its SIGSEGV handler after brig's (which it then calls first) without
  // SA_NODEFER: once a guest trap longjmps out of it, SIGSEGV stays blocked and the next
  // trap kills the process. brig's own handler has SA_NODEFER; give libFuzzer's the same.
  static const bool nodefer = [] {
    for (int sig : {SIGSEGV, SIGBUS}) {
      struct sigaction sa;
      FUZZ_CHECK(sigaction(sig, nullptr, &sa) == 0);
      sa.sa_flags |= SA_NODEFER;
      FUZZ_CHECK(sigaction(sig, &sa, nullptr) == 0);
    }
    return true;
  }();
  (void)nodefer;
  if (size < 1) return 0;
  const Base& base = GetBase();
  const uint8_t mode = data[0] % 4;
  std::unique_ptr<brig::Sandbox> s = NewSandbox(base.limits);
  (void)s->WriteFile("/home/user/f", "hello");
  (void)s->WriteFile("/tmp/d/g", "");
  if (mode == 1) {
    auto r = s->LoadPortable(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    if (r.ok() || r.status().IsInvalidArgument() || r.status().IsInternal()) RunSome(*s);
    return 0;
  }
  std::string snapshot;
  if (mode == 0) {
    snapshot.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  } else {
    FuzzedDataProvider in(data + 1, size - 1);
    snapshot = mode == 2 ? Built(in, base) : Mutated(in, base);
  }
  brig::Status restored = s->RestorePages(snapshot);
  if (restored.ok()) {
    RunSome(*s);
    return 0;
  }
  // "On error the sandbox is unchanged": it still runs code.
  brig::ExecutionResult r = s->Execute("x = 6 * 7\nx");
  FUZZ_CHECK(r.ok && r.result == "42", "after a refused restore (%s): %s%s", restored.message().c_str(),
             r.stderr_text.c_str(), r.failure_message.c_str());
  return 0;
}
