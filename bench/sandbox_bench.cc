// Sandbox micro-benchmarks (issue #3's figures): a fresh sandbox from the image plus one
// `pass` plus destruction, and `x = 1` in a live sandbox. Medians over repetitions.
//   build/bench/sandbox_bench --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "brig/sandbox.h"

namespace {

void BM_FreshSandboxPassDestroy(benchmark::State& state) {
  brig::Sandbox::Create().value().reset();  // the process image is made once, outside timing
  for (auto _ : state) {
    auto sandbox = brig::Sandbox::Create();
    benchmark::DoNotOptimize(sandbox.value()->Execute("pass"));
  }
}
BENCHMARK(BM_FreshSandboxPassDestroy)->Unit(benchmark::kMicrosecond);

// The parts of the above: creation and destruction alone.
void BM_FreshSandboxCreateDestroy(benchmark::State& state) {
  brig::Sandbox::Create().value().reset();
  for (auto _ : state) benchmark::DoNotOptimize(brig::Sandbox::Create());
}
BENCHMARK(BM_FreshSandboxCreateDestroy)->Unit(benchmark::kMicrosecond);

void BM_LiveSessionAssign(benchmark::State& state) {
  auto sandbox = brig::Sandbox::Create();
  sandbox.value()->Execute("x = 0");
  for (auto _ : state) benchmark::DoNotOptimize(sandbox.value()->Execute("x = 1"));
}
BENCHMARK(BM_LiveSessionAssign)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
