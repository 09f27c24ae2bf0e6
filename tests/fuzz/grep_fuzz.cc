// Fuzz target: grep patterns, through files::FileService::Grep (the entry point agents reach,
// which survives a change of regex engine) over an SQLite store in a private temporary
// directory. The input gives the pattern, the options, an optional path glob and up to three
// files' contents. Checks: no crash or sanitizer report, the bounds hold (lines reported,
// bytes kept per line), results are ordered by path and name only files that exist, and a
// plain pattern (printable ASCII, no metacharacter) finds exactly the lines that contain it.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "files/file_service.h"
#include "fuzz_vfs_check.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace {

struct Env {
  std::unique_ptr<brig::store::Store> store;
  std::unique_ptr<brig::session::SessionManager> sessions;
  std::unique_ptr<brig::files::FileService> files;
};

Env& GetEnv() {
  static Env* env = [] {
    auto* e = new Env;
    // In memory where possible: SQLite syncs every write.
    const char* base = std::getenv("TMPDIR");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string dir = std::string(base) + "/brig-grep-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(dir.data()) != nullptr);
    static std::string* removed_at_exit = new std::string(dir);
    std::atexit([] { (void)std::system(("rm -rf '" + *removed_at_exit + "'").c_str()); });
    auto store = brig::store::OpenStore("sqlite:" + dir + "/store.db");
    FUZZ_CHECK(store.ok(), "%s", store.status().message().c_str());
    e->store = std::move(store.value());
    e->sessions = std::make_unique<brig::session::SessionManager>(*e->store, brig::session::SessionOptions{});
    e->files = std::make_unique<brig::files::FileService>(*e->sessions);
    auto session = e->sessions->GetOrCreate("t");
    FUZZ_CHECK(session.ok(), "%s", session.status().message().c_str());
    return e;
  }();
  return *env;
}

constexpr const char* kPaths[] = {"/home/user/a.txt", "/home/user/src/b.py", "/tmp/c.log"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env& env = GetEnv();
  FuzzedDataProvider in(data, size);
  brig::files::GrepOptions o;
  o.mode = static_cast<brig::files::GrepMode>(in.ConsumeIntegralInRange(0, 2));
  o.case_insensitive = in.ConsumeBool();
  o.max_lines = in.ConsumeIntegralInRange<int64_t>(0, 64);
  o.max_line_bytes = in.ConsumeIntegralInRange<int64_t>(0, 256);
  // Keeps each input fast: RE2 has no step counter, so the bounds are per line and in time.
  o.max_line_work = in.ConsumeIntegralInRange<int64_t>(0, int64_t{1} << 24);
  o.max_time = std::chrono::milliseconds(in.ConsumeIntegralInRange(0, 2000));
  if (in.ConsumeIntegralInRange(0, 3) == 0) o.path_glob = in.ConsumeRandomLengthString(64);
  const std::string pattern = in.ConsumeRandomLengthString(256);

  // Files: each input rewrites the three (an empty content deletes the file).
  std::string contents[3];
  for (int i = 0; i < 3; ++i) {
    contents[i] = in.ConsumeRandomLengthString(4096);
    if (contents[i].empty()) {
      (void)env.files->Delete("t", kPaths[i]);
    } else {
      auto w = env.files->Write("t", kPaths[i], contents[i]);
      FUZZ_CHECK(w.ok(), "%s", w.status().message().c_str());
    }
  }

  brig::StatusOr<brig::files::GrepResult> r = env.files->Grep("t", pattern, o);
  if (!r.ok()) {
    FUZZ_CHECK(r.status().IsInvalidArgument(), "%s", r.status().message().c_str());
    return 0;
  }
  const brig::files::GrepResult& g = r.value();
  int64_t lines = 0;
  for (size_t i = 0; i < g.files.size(); ++i) {
    const brig::files::GrepFileResult& f = g.files[i];
    if (i > 0) FUZZ_CHECK(g.files[i - 1].path < f.path);
    int which = -1;
    for (int k = 0; k < 3; ++k) {
      if (f.path == kPaths[k]) which = k;
    }
    FUZZ_CHECK(which >= 0 && !contents[which].empty(), "a result for %s", f.path.c_str());
    FUZZ_CHECK(f.count >= 1);
    if (o.mode == brig::files::GrepMode::kFilesWithMatches) FUZZ_CHECK(f.count == 1);
    if (o.mode != brig::files::GrepMode::kContent) FUZZ_CHECK(f.lines.empty());
    for (const brig::files::GrepLine& l : f.lines) {
      FUZZ_CHECK(l.number >= 1);
      FUZZ_CHECK(static_cast<int64_t>(l.text.size()) <= o.max_line_bytes);
      ++lines;
    }
  }
  FUZZ_CHECK(lines <= o.max_lines);
  FUZZ_CHECK(g.truncated == !g.truncated_reason.empty());

  // A plain string: the files that match are exactly those with a line containing it.
  bool plain = !pattern.empty() && !o.case_insensitive && o.path_glob.empty();
  for (unsigned char c : pattern) plain &= c >= 0x20 && c < 0x7f && !std::strchr("\\^$.|?*+()[]{}", c);
  if (plain && !g.truncated) {
    for (int k = 0; k < 3; ++k) {
      if (contents[k].empty()) continue;
      bool found = false;
      for (const auto& f : g.files) found |= f.path == kPaths[k];
      FUZZ_CHECK(found == (contents[k].find(pattern) != std::string::npos), "plain '%s' in %s: reported %d",
                 pattern.c_str(), kPaths[k], found);
    }
  }
  return 0;
}
