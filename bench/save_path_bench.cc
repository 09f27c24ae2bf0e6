// The save path of a durable execution, part by part (issue #10): what brig::Sessions does
// around `x = 1` in a live session, redone step by step with the same calls so that each part
// is timed on its own, on one store:
//   lock          store.LockSession + release
//   get_or_create GetSession (before: + TouchSession, a write and a commit of its own; the
//                 save touches the session now)
//   get_state     GetStateVersion (before: GetState, which read the whole snapshot)
//   execute       Sandbox::Execute("x = 1")
//   files         the sandbox's file versions, empty directories and usage
//   list_files    store.ListFiles (the quota backstop; Sessions no longer reads it per save:
//                 the live session keeps what its files outside the guest take)
//   page_diff     SavePages less its compression: finding and XORing the changed pages
//   compress      zstd of the same page data (level -3, a kept context, as SavePages does)
//   portable      SavePortable (pickling the namespace inside the guest; Sessions now takes
//                 it after answering, Options::portable_in_background)
//   save          store.SaveExecution (statements + commit)
//   trim          Sandbox::Trim, before the sandbox goes back live
// and, on a second store whose commits do not wait for the disk (SQLite on /dev/shm;
// PostgreSQL with synchronous_commit=off), the same save: the difference is the commit's
// flush. Medians in microseconds.
//
//   build/bench/save_path_bench [sqlite | postgresql://...] [repetitions] [--no-portable]
//
// A second mode measures in-process throughput (no HTTP): N threads each running Execute on
// its own sessions round-robin, durable as the server's:
//   build/bench/save_path_bench URL --threads N --sessions M --seconds S [--pool P] [--no-portable]
// (--pool: Sessions::Options::pool_size, PostgreSQL connections; default 4, as brig serve.)
// and the store alone (N threads saving states of B bytes, no sandbox):
//   build/bench/save_path_bench URL --store-only --threads N --seconds S [--bytes B] [--pool P]
// and a session lock handed from one thread to another waiting in the same process:
//   build/bench/save_path_bench URL --lock-handoff
// URL "sqlite" makes a store in a temp dir (removed at exit).
// SAVE_PATH_BENCH_SHOW=1 prints, for each save, the pages that changed since the previous one
// as INDEX:WORDS (8-byte words changed in that page's record; 9999: the record changed shape).
// Most change by a few words: reference counts and counters the interpreter writes anyway.
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::micro>(b - a).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "save_path_bench: %s failed\n", what.c_str());
    std::exit(1);
  }
}

template <typename T>
T Must(brig::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) {
    std::fprintf(stderr, "save_path_bench: %s: %s\n", what.c_str(), v.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(v.value());
}

// The page data of a page snapshot (magic | u32 header length | header | u64 body length |
// zstd body), decompressed.
std::string PageBody(const std::string& snapshot) {
  uint32_t header = 0;
  std::memcpy(&header, snapshot.data() + 8, 4);
  uint64_t body = 0;
  std::memcpy(&body, snapshot.data() + 12 + header, 8);
  const char* z = snapshot.data() + 20 + header;
  const unsigned long long size = ZSTD_getFrameContentSize(z, body);
  std::string out(size, '\0');
  Check(!ZSTD_isError(ZSTD_decompress(out.data(), out.size(), z, body)), "zstd decompress");
  return out;
}

// The page count of a page snapshot, from its header (JSON).
size_t PageCount(const std::string& snapshot) {
  uint32_t header = 0;
  std::memcpy(&header, snapshot.data() + 8, 4);
  return nlohmann::json::parse(snapshot.substr(12, header)).at("page_count").get<size_t>();
}

// The records of page data `body` holding `n` pages (u32 indices, then per page a 64-byte
// mask of the differing 8-byte words and those words; src/sandbox/sandbox_state.cc), by index.
std::map<uint32_t, std::string_view> PageRecords(const std::string& body, size_t n) {
  std::map<uint32_t, std::string_view> pages;
  size_t at = n * 4;
  for (size_t i = 0; i < n; ++i) {
    uint32_t index;
    std::memcpy(&index, body.data() + 4 * i, 4);
    size_t words = 0;
    for (int k = 0; k < 8; ++k) {
      uint64_t m;
      std::memcpy(&m, body.data() + at + 8 * k, 8);
      words += static_cast<size_t>(__builtin_popcountll(m));
    }
    pages[index] = std::string_view(body).substr(at, 64 + 8 * words);
    at += 64 + 8 * words;
  }
  return pages;
}

// Pages of `b` that are not in `a` with the same record (page data and page counts).
double ChangedPages(const std::string& a, size_t na, const std::string& b, size_t nb) {
  auto pa = PageRecords(a, na), pb = PageRecords(b, nb);
  int changed = 0;
  static const bool show = std::getenv("SAVE_PATH_BENCH_SHOW") != nullptr;
  for (const auto& [index, bytes] : pb) {
    auto it = pa.find(index);
    if (it == pa.end() || it->second != bytes) {
      ++changed;
      if (show) {
        // words that differ between the two saves' records of this page
        size_t w = 0;
        if (it != pa.end() && it->second.size() == bytes.size()) {
          for (size_t k = 0; k < bytes.size(); k += 8) w += std::memcmp(bytes.data() + k, it->second.data() + k, 8) != 0;
        } else {
          w = 9999;
        }
        std::fprintf(stderr, "%u:%zu ", index, w);
      }
    }
  }
  if (show) std::fprintf(stderr, "\n");
  return changed;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/brig-save-path-XXXXXX";
    Check(mkdtemp(t) != nullptr, "mkdtemp");
    path = t;
  }
  explicit TempDir(const char* base) {
    std::string t = std::string(base) + "/brig-save-path-XXXXXX";
    Check(mkdtemp(t.data()) != nullptr, "mkdtemp");
    path = t;
  }
  ~TempDir() { (void)!std::system(("rm -rf " + path).c_str()); }
};

std::string NoFlushUrl(const std::string& url, TempDir* shm) {
  if (url.starts_with("sqlite")) return "sqlite:" + shm->path + "/brig.db";
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "options=-csynchronous_commit%3Doff";
}

void Parts(const std::string& url, int reps, bool with_portable) {
  TempDir shm("/dev/shm");
  std::unique_ptr<brig::store::Store> store = Must(brig::store::OpenStore(url), "open store");
  std::unique_ptr<brig::store::Store> fast = Must(brig::store::OpenStore(NoFlushUrl(url, &shm)), "open second store");
  auto sandbox = Must(brig::Sandbox::Create(), "sandbox");
  const std::string tid = "bench";
  // The two stores may be one PostgreSQL database: a session each.
  const std::string fast_tid = "bench-no-flush";
  Check(store->CreateSession(tid, brig::store::NowMicros() + 86'400'000'000, {}).ok(), "create");
  Check(fast->CreateSession(fast_tid, brig::store::NowMicros() + 86'400'000'000, {}).ok(), "create");
  Check(sandbox->Execute("x = 42; y = 100\ndef calculate(): return x + y").ok, "seed");
  if (const char* pre = std::getenv("SAVE_PATH_BENCH_PRE")) Check(sandbox->Execute(pre).ok, "pre");
  int64_t version = 0, fast_version = 0;
  std::map<std::string, std::vector<double>> t;
  size_t pages_bytes = 0, portable_bytes = 0, page_body = 0;
  std::string last_body;
  size_t last_count = 0, page_count = 0;
  // SavePages' zstd level (src/sandbox/sandbox_state.cc: -3 since 2026-12-04; 1 before, 3 with a new
  // context per save before that).
  const int kLevel = std::getenv("SAVE_PATH_BENCH_LEVEL") ? std::atoi(std::getenv("SAVE_PATH_BENCH_LEVEL")) : -3;
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  std::vector<double> changed_since_save;  // pages whose bytes differ from the previous save's
  for (int i = 0; i < reps + 3; ++i) {
    const bool keep = i >= 3;  // the first executions warm up
    auto add = [&](const char* name, double us) {
      if (keep) t[name].push_back(us);
    };
    auto t0 = Clock::now();
    {
      auto lock = Must(store->LockSession(tid), "lock");
    }
    auto t1 = Clock::now();
    add("lock", Us(t0, t1));
    Must(store->GetSession(tid), "get session");  // the save touches it (SessionManager::GetOrCreate)
    auto t2 = Clock::now();
    add("get_or_create", Us(t1, t2));
    Check(Must(store->GetStateVersion(tid), "get state version") == version, "version");
    auto t3 = Clock::now();
    add("get_state", Us(t2, t3));
    Check(sandbox->Execute("x = 1").ok, "execute");
    auto t4 = Clock::now();
    add("execute", Us(t3, t4));
    auto files = sandbox->ListFiles();
    auto dirs = sandbox->ListEmptyDirectories();
    auto usage = sandbox->GetFileUsage();
    (void)files, (void)dirs, (void)usage;
    auto t5 = Clock::now();
    add("files", Us(t4, t5));
    Must(store->ListFiles(tid), "list files");
    auto t6 = Clock::now();
    add("list_files", Us(t5, t6));
    std::string pages = Must(sandbox->SavePages(), "save pages");
    auto t7 = Clock::now();
    std::string body = PageBody(pages);
    // What SavePages spends compressing: the same page data, at its level, with a kept context.
    std::string compressed(ZSTD_compressBound(body.size()), '\0');
    auto c0 = Clock::now();
    Check(!ZSTD_isError(ZSTD_compressCCtx(cctx, compressed.data(), compressed.size(), body.data(), body.size(), kLevel)),
          "zstd");
    const double compress = Us(c0, Clock::now());
    add("page_diff", Us(t6, t7) - compress);
    add("compress", compress);
    auto t8 = Clock::now();
    brig::Sandbox::PortableSnapshot portable;
    if (with_portable) portable = Must(sandbox->SavePortable(), "save portable");
    auto t9 = Clock::now();
    add("portable", Us(t8, t9));
    pages_bytes = pages.size();
    portable_bytes = portable.data.size();
    page_body = body.size();
    page_count = PageCount(pages);
    if (!last_body.empty()) changed_since_save.push_back(ChangedPages(last_body, last_count, body, page_count));
    last_body = body;
    last_count = page_count;
    brig::store::StateWrite write{pages + portable.data, "bench", std::string(brig::Sandbox::GuestBuildId())};
    auto t10 = Clock::now();
    version = Must(store->SaveExecution(tid, version, write, {}, {}), "save");
    auto t11 = Clock::now();
    add("save", Us(t10, t11));
    fast_version = Must(fast->SaveExecution(fast_tid, fast_version, write, {}, {}), "save without flush");
    auto t12 = Clock::now();
    add("save_no_flush", Us(t11, t12));
    Check(fast->TouchSession(fast_tid).ok(), "touch without flush");
    auto t13 = Clock::now();
    add("touch_no_flush", Us(t12, t13));
    static const bool trim = std::getenv("SAVE_PATH_BENCH_NO_TRIM") == nullptr;
    if (trim) Check(sandbox->Trim().ok(), "trim");  // as Sessions does before putting the sandbox back live
    add("trim", Us(t13, Clock::now()));
  }
  const char* order[] = {"lock", "get_or_create", "get_state", "execute", "files", "list_files", "page_diff",
                         "compress", "save", "total", "portable", "trim", "background", "save_no_flush", "touch_no_flush"};
  // The totals are sums of the parts of one execution (the bench's own decompression and the
  // no-flush comparisons are left out): what an execution waits for before its answer, and
  // what Sessions now does after it, in the background (the portable snapshot, the trim).
  for (int i = 0; i < reps; ++i) {
    double sum = 0;
    for (const char* name : {"lock", "get_or_create", "get_state", "execute", "files", "list_files", "page_diff",
                             "compress", "save"}) {
      sum += t[name][i];
    }
    t["total"].push_back(sum);
    t["background"].push_back(t["portable"][i] + t["trim"][i]);
  }
  const double total = Median(t["total"]);
  // The same page data at other zstd levels.
  std::string out(ZSTD_compressBound(last_body.size()), '\0');
  std::string levels;
  for (int level : {-50, -20, -10, -7, -5, -3, -1, 1}) {
    std::vector<double> us;
    size_t size = 0;
    for (int i = 0; i < 21; ++i) {
      auto a = Clock::now();
      size = ZSTD_compressCCtx(cctx, out.data(), out.size(), last_body.data(), last_body.size(), level);
      us.push_back(Us(a, Clock::now()));
    }
    char line[96];
    std::snprintf(line, sizeof line, "  level %d: %.0f us, %zu bytes;", level, Median(us), size);
    levels += line;
  }
  ZSTD_freeCCtx(cctx);
  std::printf("store %s, %d repetitions; page snapshot %zu bytes (%zu bytes of pages before zstd), portable %zu bytes\n",
              store->backend().data(), reps, pages_bytes, page_body, portable_bytes);
  std::printf("pages differing from the image: %zu; differing from the previous save: median %.0f\n",
              page_count, Median(changed_since_save));
  std::printf("zstd of the page data with a reused context:%s\n", levels.c_str());

  for (const char* name : order) {
    const double m = Median(t[name]);
    std::printf("  %-15s median %9.1f us  p90 %9.1f us  %5.1f%% of total\n", name, m, Pct(t[name], 0.9), 100.0 * m / total);
    if (std::strcmp(name, "total") == 0) std::printf("  after the answer (Sessions' background thread):\n");
    if (std::strcmp(name, "background") == 0) std::printf("  comparisons:\n");
  }
}

void Throughput(const std::string& url, int threads, int sessions, double seconds, bool portable, int pool) {
  brig::Sessions::Options o;
  o.store_url = url;
  o.portable_snapshots = portable;
  o.max_live = static_cast<size_t>(sessions) + 16;
  o.pool_size = pool;
  auto s = Must(brig::Sessions::Open(o), "open sessions");
  std::atomic<bool> measuring{false}, stop{false};
  std::mutex mu;
  std::vector<double> lat;
  uint64_t errors = 0;
  std::vector<std::thread> ts;
  for (int w = 0; w < threads; ++w) {
    ts.emplace_back([&, w] {
      std::vector<std::string> mine;
      for (int i = w; i < sessions; i += threads) mine.push_back("load-" + std::to_string(i));
      std::vector<double> l;
      uint64_t e = 0;
      for (size_t i = 0; !stop.load() && !mine.empty(); ++i) {
        auto a = Clock::now();
        auto r = s->Execute(mine[i % mine.size()], "x = 1");
        const double ms = Us(a, Clock::now()) / 1000;
        const bool ok = r.ok() && r.value().execution.ok && r.value().saved;
        if (!ok && e == 0) std::fprintf(stderr, "error: %s\n", r.ok() ? r.value().execution.stderr_text.c_str() : r.status().ToString().c_str());
        if (measuring.load()) ok ? l.push_back(ms) : (void)++e;
      }
      std::lock_guard<std::mutex> g(mu);
      lat.insert(lat.end(), l.begin(), l.end());
      errors += e;
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  measuring = true;
  auto a = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - a).count();
  stop = true;
  for (auto& t : ts) t.join();
  std::printf("in-process Execute on %s: threads %d, sessions %d, pool %d%s: %.0f executions/s, p50 %.2f ms, p99 %.2f ms, errors %llu\n",
              url.starts_with("sqlite") ? "sqlite" : "postgresql", threads, sessions, pool, portable ? "" : ", no portable",
              lat.size() / elapsed, Pct(lat, 0.5), Pct(lat, 0.99), static_cast<unsigned long long>(errors));
}

// The store alone: `threads` threads each saving its own session again and again (a state
// of `bytes` random-looking bytes, as a compressed page snapshot is), durable. Shows what the
// group commit does: saves/s, latency, and writes per transaction.
void StoreOnly(const std::string& url, int threads, double seconds, int pool, size_t bytes) {
  brig::store::StoreOptions so;
  so.pool_size = pool;
  std::unique_ptr<brig::store::Store> store = Must(brig::store::OpenStore(url, so), "open store");
  std::string state(bytes, '\0');
  uint64_t x = 88172645463325252ull;
  for (char& c : state) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (int w = 0; w < threads; ++w) {
    Check(store->CreateSession("store-" + std::to_string(w), brig::store::NowMicros() + 86'400'000'000, {}).ok(), "create");
  }
  std::atomic<bool> measuring{false}, stop{false};
  std::mutex mu;
  std::vector<double> lat;
  std::vector<std::thread> ts;
  brig::store::WriteStats before{}, after{};
  for (int w = 0; w < threads; ++w) {
    ts.emplace_back([&, w] {
      const std::string tid = "store-" + std::to_string(w);
      int64_t version = 0;
      std::vector<double> l;
      while (!stop.load()) {
        auto a = Clock::now();
        version = Must(store->SaveExecution(tid, version, brig::store::StateWrite{state, "bench", "b"}, {}, {}), "save");
        if (measuring.load()) l.push_back(Us(a, Clock::now()) / 1000);
      }
      std::lock_guard<std::mutex> g(mu);
      lat.insert(lat.end(), l.begin(), l.end());
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  before = store->GetWriteStats();
  measuring = true;
  auto a = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  after = store->GetWriteStats();
  const double elapsed = std::chrono::duration<double>(Clock::now() - a).count();
  stop = true;
  for (auto& t : ts) t.join();
  const double writes = static_cast<double>(after.writes - before.writes);
  const double txns = static_cast<double>(after.transactions - before.transactions);
  std::printf("store-only SaveExecution on %s: threads %d, pool %d, %zu-byte state: %.0f saves/s, p50 %.2f ms, p99 %.2f ms, "
              "%.1f writes per transaction\n",
              store->backend().data(), threads, pool, bytes, lat.size() / elapsed, Pct(lat, 0.5), Pct(lat, 0.99),
              txns > 0 ? writes / txns : 0);
}

}  // namespace

// A session lock handed over inside one process: a holder releases after 2 ms, a waiter
// blocked in LockSession takes it; the time from the release to the waiter holding it,
// median and worst of `rounds`. (The lock's waiters in one process used to poll flock with a
// backoff up to 20 ms.)
void LockHandoff(const std::string& url, int rounds) {
  std::unique_ptr<brig::store::Store> store = Must(brig::store::OpenStore(url, {}), "open store");
  std::vector<double> handoff;
  for (int r = 0; r < rounds; ++r) {
    auto held = Must(store->LockSession("handoff", std::chrono::milliseconds(10'000)), "lock");
    Clock::time_point got;
    std::thread waiter([&] {
      auto second = Must(store->LockSession("handoff", std::chrono::milliseconds(10'000)), "lock (waiter)");
      got = Clock::now();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const Clock::time_point released = Clock::now();
    held.reset();
    waiter.join();
    handoff.push_back(Us(released, got));
  }
  std::printf("session lock handed over in one process (%d rounds): median %.1f us, max %.1f us\n", rounds,
              Median(handoff), *std::max_element(handoff.begin(), handoff.end()));
}

int main(int argc, char** argv) {
  std::string url = argc > 1 ? argv[1] : "sqlite";
  TempDir dir;
  if (url == "sqlite") url = "sqlite:" + dir.path + "/brig.db";
  brig::Sandbox::Create().value().reset();  // the process image, made outside timing
  if (argc > 2 && std::string(argv[2]).starts_with("--")) {
    int threads = 4, sessions = 64, pool = 4;
    double seconds = 5;
    bool portable = true, store_only = false, handoff = false;
    size_t bytes = 20'000;
    for (int i = 2; i < argc; ++i) {
      std::string f = argv[i];
      if (f == "--no-portable") portable = false;
      else if (f == "--store-only") store_only = true;
      else if (f == "--lock-handoff") handoff = true;
      else if (i + 1 < argc && f == "--bytes") bytes = static_cast<size_t>(std::atol(argv[++i]));
      else if (i + 1 < argc && f == "--threads") threads = std::atoi(argv[++i]);
      else if (i + 1 < argc && f == "--sessions") sessions = std::atoi(argv[++i]);
      else if (i + 1 < argc && f == "--pool") pool = std::atoi(argv[++i]);
      else if (i + 1 < argc && f == "--seconds") seconds = std::atof(argv[++i]);
      else Check(false, "flag " + f);
    }
    if (handoff) {
      LockHandoff(url, 200);
    } else if (store_only) {
      StoreOnly(url, threads, seconds, pool, bytes);
    } else {
      Throughput(url, threads, sessions, seconds, portable, pool);
    }
    return 0;
  }
  const bool no_portable = argc > 3 && std::string(argv[3]) == "--no-portable";
  Parts(url, argc > 2 ? std::atoi(argv[2]) : 200, !no_portable);
  return 0;
}
