// Sandbox micro-benchmarks (issue #3's figures): a fresh sandbox from the image plus one
// `pass` plus destruction, and `x = 1` in a live sandbox. Medians over repetitions. Every
// timed call is checked (a few ns): one that fails stops the program with exit status 1.
//   build/bench/sandbox_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "brig/sandbox.h"

namespace {

std::unique_ptr<brig::Sandbox> MustCreate() {
  auto sandbox = brig::Sandbox::Create();
  if (!sandbox.ok()) {
    std::fprintf(stderr, "sandbox_bench: Sandbox::Create failed: %s\n", sandbox.status().message().c_str());
    std::exit(1);
  }
  return std::move(sandbox.value());
}

// A statement's execution: ok, no value, no output.
void MustRunQuietly(const brig::ExecutionResult& r, const char* code) {
  if (!r.ok || r.error || r.failure != brig::Failure::kNone || r.result || !r.stdout_text.empty() ||
      !r.stderr_text.empty()) {
    std::fprintf(stderr, "sandbox_bench: '%s' did not run cleanly: %s%s\n", code, r.stderr_text.c_str(),
                 r.failure_message.c_str());
    std::exit(1);
  }
}

void BM_FreshSandboxPassDestroy(benchmark::State& state) {
  MustCreate().reset();  // the process image is made once, outside timing
  for (auto _ : state) {
    auto sandbox = MustCreate();
    brig::ExecutionResult r = sandbox->Execute("pass");
    MustRunQuietly(r, "pass");
  }
}
BENCHMARK(BM_FreshSandboxPassDestroy)->Unit(benchmark::kMicrosecond);

// The parts of the above: creation and destruction alone.
void BM_FreshSandboxCreateDestroy(benchmark::State& state) {
  MustCreate().reset();
  for (auto _ : state) MustCreate().reset();
}
BENCHMARK(BM_FreshSandboxCreateDestroy)->Unit(benchmark::kMicrosecond);

void BM_LiveSessionAssign(benchmark::State& state) {
  auto sandbox = MustCreate();
  MustRunQuietly(sandbox->Execute("x = 0"), "x = 0");
  for (auto _ : state) {
    brig::ExecutionResult r = sandbox->Execute("x = 1");
    MustRunQuietly(r, "x = 1");
  }
  // The assignments happened (in the sandbox that was timed).
  brig::ExecutionResult r = sandbox->Execute("x");
  if (!r.ok || r.result != "1") {
    std::fprintf(stderr, "sandbox_bench: x is %s after the timed x = 1\n", r.result.value_or("<none>").c_str());
    std::exit(1);
  }
}
BENCHMARK(BM_LiveSessionAssign)->Unit(benchmark::kMicrosecond);

// `x = 1` in turn across N live sandboxes (Arg N), as a server's worker runs them: each
// execution finds its sandbox's memory out of the caches. Against BM_LiveSessionAssign (one
// sandbox, warm): what the rotation itself costs.
void BM_LiveSessionsRotating(benchmark::State& state) {
  std::vector<std::unique_ptr<brig::Sandbox>> sandboxes;
  for (int64_t i = 0; i < state.range(0); i++) {
    sandboxes.push_back(MustCreate());
    MustRunQuietly(sandboxes.back()->Execute("x = 0"), "x = 0");
  }
  size_t next = 0;
  for (auto _ : state) {
    brig::ExecutionResult r = sandboxes[next]->Execute("x = 1");
    MustRunQuietly(r, "x = 1");
    next = (next + 1) % sandboxes.size();
  }
}
BENCHMARK(BM_LiveSessionsRotating)->Arg(1)->Arg(8)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);

// The page snapshot a durable save takes after `x = 1` in a live session (Sandbox::SavePages:
// finding the pages that differ from the image, recording their differing words, zstd).
void BM_LiveSessionSavePages(benchmark::State& state) {
  auto sandbox = MustCreate();
  for (int i = 0; i < 20; i++) MustRunQuietly(sandbox->Execute("x = 1"), "x = 1");
  size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MustRunQuietly(sandbox->Execute("x = 1"), "x = 1");
    state.ResumeTiming();
    auto pages = sandbox->SavePages();
    if (!pages.ok()) {
      std::fprintf(stderr, "sandbox_bench: SavePages: %s\n", pages.status().message().c_str());
      std::exit(1);
    }
    bytes = pages.value().size();
  }
  state.counters["snapshot_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_LiveSessionSavePages)->Unit(benchmark::kMicrosecond);

// The save after `x = 1` across N live sandboxes in turn (Arg N), as a durable server's worker
// makes them: with many, each save finds its sandbox's pages out of the caches (the compare
// with the image reads every page the sandbox wrote). Only the save is timed.
void BM_LiveSessionsRotatingSave(benchmark::State& state) {
  std::vector<std::unique_ptr<brig::Sandbox>> sandboxes;
  for (int64_t i = 0; i < state.range(0); i++) {
    sandboxes.push_back(MustCreate());
    for (int k = 0; k < 5; k++) MustRunQuietly(sandboxes.back()->Execute("x = 1"), "x = 1");
  }
  size_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MustRunQuietly(sandboxes[next]->Execute("x = 1"), "x = 1");
    state.ResumeTiming();
    auto pages = sandboxes[next]->SavePages(brig::Sandbox::PagesSaveOptions{});
    if (!pages.ok()) {
      std::fprintf(stderr, "sandbox_bench: SavePages: %s\n", pages.status().message().c_str());
      std::exit(1);
    }
    next = (next + 1) % sandboxes.size();
  }
}
BENCHMARK(BM_LiveSessionsRotatingSave)->Arg(1)->Arg(64)->Unit(benchmark::kMicrosecond);

// What a live session's durable save takes since state deltas: the page snapshot with its
// records kept (Arg 0: whole, as a compacting save), or (Arg 1) a delta against the records
// of the save before it, as most saves are.
void BM_LiveSessionSavePagesKept(benchmark::State& state) {
  auto sandbox = MustCreate();
  for (int i = 0; i < 20; i++) MustRunQuietly(sandbox->Execute("x = 1"), "x = 1");
  std::shared_ptr<const brig::Sandbox::PageRecords> since;
  size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    MustRunQuietly(sandbox->Execute("x = 1"), "x = 1");
    state.ResumeTiming();
    auto pages = sandbox->SavePages(brig::Sandbox::PagesSaveOptions{state.range(0) ? since.get() : nullptr, true});
    if (!pages.ok()) {
      std::fprintf(stderr, "sandbox_bench: SavePages: %s\n", pages.status().message().c_str());
      std::exit(1);
    }
    bytes = pages.value().snapshot.size();
    since = std::move(pages.value().records);
  }
  state.counters["snapshot_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_LiveSessionSavePagesKept)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// The same through Execute(code, ExecuteOptions): per-execution limits given, and (Arg 1) an
// output callback set. `x = 1` prints nothing: what a callback costs when nothing is written.
void BM_LiveSessionAssignOptions(benchmark::State& state) {
  auto sandbox = MustCreate();
  MustRunQuietly(sandbox->Execute("x = 0"), "x = 0");
  brig::ExecuteOptions options;
  options.timeout_seconds = 20;
  options.memory_bytes = 128ull << 20;
  size_t pieces = 0;
  if (state.range(0)) options.on_output = [&pieces](brig::OutputStream, std::string_view) { pieces++; };
  for (auto _ : state) {
    auto r = sandbox->Execute("x = 1", options);
    if (!r.ok()) std::exit(1);
    MustRunQuietly(r.value(), "x = 1");
  }
  if (pieces != 0) std::exit(1);
}
BENCHMARK(BM_LiveSessionAssignOptions)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// print('hello') with and (Arg 1) without streaming: a callback per write.
void BM_LiveSessionPrint(benchmark::State& state) {
  auto sandbox = MustCreate();
  MustRunQuietly(sandbox->Execute("x = 0"), "x = 0");
  brig::ExecuteOptions options;
  size_t bytes = 0;
  if (state.range(0)) options.on_output = [&bytes](brig::OutputStream, std::string_view b) { bytes += b.size(); };
  for (auto _ : state) {
    auto r = sandbox->Execute("print('hello')", options);
    if (!r.ok() || r.value().stdout_text != "hello\n") std::exit(1);
  }
  if (state.range(0) && bytes != 6 * state.iterations()) std::exit(1);
}
BENCHMARK(BM_LiveSessionPrint)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

// A session's portable snapshot (Sandbox::SavePortable, what Sessions takes after a durable
// save): Arg 0 the first one of a sandbox that ran `x = 1` (as every new session's), Arg 1
// a later one (`x = 1` between). page_faults: the process's faults per snapshot, each a
// copy of a page the sandbox had not written yet (costly on a virtual machine).
void BM_SavePortable(benchmark::State& state) {
  MustCreate().reset();
  auto faults = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt + u.ru_majflt;
  };
  long counted = 0;
  std::unique_ptr<brig::Sandbox> sandbox;
  if (state.range(0)) sandbox = MustCreate();
  for (auto _ : state) {
    state.PauseTiming();
    if (!state.range(0)) sandbox = MustCreate();
    MustRunQuietly(sandbox->Execute("x = 1"), "x = 1");
    const long before = faults();
    state.ResumeTiming();
    auto portable = sandbox->SavePortable();
    state.PauseTiming();
    counted += faults() - before;
    if (!portable.ok()) {
      std::fprintf(stderr, "sandbox_bench: SavePortable: %s\n", portable.status().message().c_str());
      std::exit(1);
    }
    if (!state.range(0)) sandbox.reset();
    state.ResumeTiming();
  }
  state.counters["page_faults"] = benchmark::Counter(static_cast<double>(counted), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_SavePortable)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
