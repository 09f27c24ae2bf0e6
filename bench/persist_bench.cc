// Persistent-session figures (issue #4), medians over repetitions:
//   - size of the saved state after the seed example (target <= 64 KiB);
//   - restoring a session whose state holds ~1 MB of Python objects, from its page snapshot,
//     up to the first execution returning (target <= 5 ms beyond process start);
//   - one Sessions::Execute round trip on the SQLite store (load, execute, save);
//   - `x = 1` in a live session holding 200 MiB of files, against one holding none: the save
//     reads only the files that changed, so the two should be close (issue #9).
//   build/bench/persist_bench [repetitions]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "brig/sandbox.h"
#include "brig/sessions.h"

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "persist_bench: %s failed\n", what);
    std::exit(1);
  }
}

constexpr const char* kSeed = "x = 42; y = 100\ndef calculate(): return x + y\nprint(f'Sum: {calculate()}')";
// ~1 MB of Python objects: 5000 records of a dict with strings, ints and a list.
constexpr const char* kMegabyte =
    "records = [{'id': i, 'name': 'user-%06d' % i, 'tags': ['a', 'b', str(i)], 'score': i * 0.5}"
    " for i in range(5000)]\nimport sys\ntotal = sum(r['id'] for r in records)";

}  // namespace

int main(int argc, char** argv) {
  int reps = argc > 1 ? std::atoi(argv[1]) : 20;
  brig::Sandbox::Create().value().reset();  // the process image, made outside timing

  {
    auto s = std::move(brig::Sandbox::Create().value());
    brig::ExecutionResult seed = s->Execute(kSeed);
    Check(seed.ok && seed.stdout_text == "Sum: 142\n", "seed");
    auto pages = s->SavePages();
    auto portable = s->SavePortable();
    Check(pages.ok() && portable.ok(), "save");
    std::printf("seed example: page snapshot %zu bytes, portable %zu bytes, total %.1f KiB (target <= 64 KiB)\n",
                pages.value().size(), portable.value().data.size(),
                (pages.value().size() + portable.value().data.size()) / 1024.0);
  }

  {
    auto s = std::move(brig::Sandbox::Create().value());
    Check(s->Execute(kMegabyte).ok, "1 MB state");
    std::string snapshot = s->SavePages().value();
    std::vector<double> restore;
    for (int i = 0; i < reps; i++) {
      auto t0 = Clock::now();
      auto fresh = std::move(brig::Sandbox::Create().value());
      Check(fresh->RestorePages(snapshot).ok(), "restore");
      brig::ExecutionResult r = fresh->Execute("total");
      auto t1 = Clock::now();
      Check(r.ok && r.result == "12497500", "restored value");
      restore.push_back(Ms(t0, t1));
    }
    std::vector<double> save_pages, save_portable;
    for (int i = 0; i < reps; i++) {
      Check(s->Execute("total += 0").ok, "execute");
      auto t0 = Clock::now();
      Check(s->SavePages().ok(), "save pages");
      auto t1 = Clock::now();
      Check(s->SavePortable().ok(), "save portable");
      save_pages.push_back(Ms(t0, t1));
      save_portable.push_back(Ms(t1, Clock::now()));
    }
    std::printf("~1 MB state: page snapshot %zu bytes; restore + first execution: median %.3f ms (target <= 5 ms)\n",
                snapshot.size(), Median(restore));
    std::printf("~1 MB state: SavePages median %.3f ms, SavePortable median %.3f ms\n", Median(save_pages),
                Median(save_portable));
  }

  {
    char dir[] = "/tmp/brig-persist-bench-XXXXXX";
    Check(mkdtemp(dir) != nullptr, "mkdtemp");
    brig::Sessions::Options options;
    options.store_url = std::string("sqlite:") + dir + "/brig.db";
    options.max_live = 0;  // every execution loads from the store, as a new process would
    auto sessions = brig::Sessions::Open(options);
    Check(sessions.ok(), "open store");
    auto first = sessions.value()->Execute("bench", kMegabyte);
    Check(first.ok() && first.value().execution.ok && first.value().saved, "first execution");
    std::vector<double> round_trip;
    for (int i = 0; i < reps; i++) {
      auto t0 = Clock::now();
      auto r = sessions.value()->Execute("bench", "total += 0");
      auto t1 = Clock::now();
      Check(r.ok() && r.value().execution.ok && r.value().saved && r.value().restored_from == "pages",
            "session execution");
      round_trip.push_back(Ms(t0, t1));
    }
    options.portable_snapshots = false;
    auto no_portable = brig::Sessions::Open(options);
    Check(no_portable.ok(), "open store without portable snapshots");
    std::vector<double> pages_only;
    for (int i = 0; i < reps; i++) {
      auto t0 = Clock::now();
      auto r = no_portable.value()->Execute("bench", "total += 0");
      pages_only.push_back(Ms(t0, Clock::now()));
      Check(r.ok() && r.value().execution.ok && r.value().saved && r.value().restored_from == "pages",
            "session execution without the portable snapshot");
    }
    // What the timed executions saved is the session's state.
    auto total = no_portable.value()->Execute("bench", "total");
    Check(total.ok() && total.value().execution.result == "12497500", "the saved state");
    std::printf("Sessions::Execute on SQLite, ~1 MB state, restored from the store each time: median %.3f ms "
                "(%.3f ms without the portable snapshot)\n",
                Median(round_trip), Median(pages_only));
    std::string cleanup = std::string("rm -rf ") + dir;
    Check(std::system(cleanup.c_str()) == 0, "cleanup");
  }

  {
    char dir[] = "/tmp/brig-persist-bench-XXXXXX";
    Check(mkdtemp(dir) != nullptr, "mkdtemp");
    brig::Sessions::Options options;
    options.store_url = std::string("sqlite:") + dir + "/brig.db";
    auto sessions = brig::Sessions::Open(options);
    Check(sessions.ok(), "open store");
    auto& live = *sessions.value();
    // Ten files of 20 MiB (the per-file limit) fill the default 200 MiB quota; written in
    // 1 MiB pieces, so that the interpreter's own memory stays small.
    auto big = live.Execute("big", "chunk = bytes(1 << 20)\nfor i in range(10):\n    with open(f'/tmp/big{i}', 'wb') as f:\n"
                                 "        for _ in range(20): f.write(chunk)\ndel chunk");
    Check(big.ok() && big.value().saved && big.value().files_saved.size() == 10, "200 MiB of files");
    Check(live.Execute("small", "pass").ok(), "empty session");
    std::vector<double> with_files, without;
    for (int i = 0; i < reps; i++) {
      for (const char* id : {"big", "small"}) {
        auto t0 = Clock::now();
        auto r = live.Execute(id, "x = 1");
        const double ms = Ms(t0, Clock::now());
        Check(r.ok() && r.value().saved && r.value().restored_from == "live" && r.value().files_saved.empty(),
              "x = 1 in a live session");
        (std::string(id) == "big" ? with_files : without).push_back(ms);
      }
    }
    std::printf("x = 1 in a live session on SQLite: with 200 MiB of files median %.3f ms, without files %.3f ms "
                "(ratio %.2f)\n",
                Median(with_files), Median(without), Median(with_files) / Median(without));
    std::string cleanup = std::string("rm -rf ") + dir;
    Check(std::system(cleanup.c_str()) == 0, "cleanup");
  }
  return 0;
}
