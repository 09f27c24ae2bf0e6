// `brig cleanup`: delete expired sessions (with their state and files) and orphaned files,
// once or periodically.
//
//   brig cleanup [--dry-run] [--json] [--db URL] [--every SECONDS [--rounds N]]
//
// --dry-run changes nothing and reports what would be deleted. --every runs a round every
// SECONDS (PeriodicCleanup, as a server does) and prints one line per round, until
// SIGINT/SIGTERM or N rounds; a failed round is reported on stderr and the next one runs.
// Exit status: 0 success (periodic: stopped as asked); 1 the store failed (periodic: the
// last round failed); 2 bad command line.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "brig/periodic_cleanup.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/store.h"
#include "brig/text.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace brig::cli {
namespace {

struct CleanupOptions {
  std::string db;
  bool json = false;
  bool dry_run = false;
  double every_seconds = 0;  // 0: once
  uint64_t rounds = 0;       // with --every: stop after this many (0: until a signal)
};

void PrintStats(const CleanupOptions& opt, const CleanupStats& s) {
  if (opt.json) {
    const nlohmann::json j = {{"dry_run", opt.dry_run},
                              {"sessions_deleted", s.sessions_deleted},
                              {"files_deleted", s.files_deleted},
                              {"bytes_freed", s.bytes_freed}};
    PrintJson(j);
  } else {
    std::cout << (opt.dry_run ? "would delete " : "deleted ") << s.sessions_deleted << " expired session(s), "
              << s.files_deleted << " file(s), freeing " << s.bytes_freed << " bytes"
              << (s.bytes_freed >= 1024 ? " (" + FormatBytes(s.bytes_freed) + ")" : std::string()) << "\n";
  }
  std::cout.flush();  // one line per round, as it happens, also into a pipe
}

// Rounds every opt.every_seconds until SIGINT/SIGTERM (or opt.rounds rounds).
int RunPeriodically(const CleanupOptions& opt, SessionManager& manager) {
  // The signals are taken by sigwait below, so every thread (the cleanup thread is made
  // after this) must block them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::mutex mu;
  bool last_failed = false;
  auto interval = std::chrono::milliseconds(static_cast<int64_t>(std::llround(opt.every_seconds * 1000)));
  PeriodicCleanup job(manager, interval, opt.dry_run,
                               [&](uint64_t round, const StatusOr<CleanupStats>& r) {
                                 if (r.ok()) PrintStats(opt, r.value());
                                 else PrintError("cleanup round " + std::to_string(round) + " failed: " + r.status().message());
                                 {
                                   std::lock_guard<std::mutex> lock(mu);
                                   last_failed = !r.ok();
                                 }
                                 // Enough rounds: the same way out as a signal from outside.
                                 if (opt.rounds > 0 && round == opt.rounds) kill(getpid(), SIGTERM);
                               });
  int sig = 0;
  sigwait(&stop_signals, &sig);
  job.Stop();
  std::lock_guard<std::mutex> lock(mu);
  return last_failed ? kExitFailure : kExitOk;
}

int RunCleanup(const CleanupOptions& opt) {
  StatusOr<std::unique_ptr<Store>> store = OpenConfiguredStore(opt.db);
  if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
  SessionManager manager(*store.value());
  if (opt.every_seconds > 0) return RunPeriodically(opt, manager);
  StatusOr<CleanupStats> stats = manager.Cleanup(opt.dry_run);
  if (!stats.ok()) return ReportFailure(stats.status());
  PrintStats(opt, stats.value());
  return kExitOk;
}

}  // namespace

Runner AddCleanupCommand(CLI::App& app) {
  auto opt = std::make_shared<CleanupOptions>();
  CLI::App* cmd = app.add_subcommand("cleanup", "Delete expired sessions and orphaned files");
  cmd->add_flag("--dry-run", opt->dry_run, "Change nothing; report what would be deleted");
  cmd->add_flag("--json", opt->json, "Print JSON");
  CLI::Option* every = cmd->add_option("--every", opt->every_seconds,
                                       "Run a round every SECONDS until SIGINT/SIGTERM (one line per round)")
                           ->check(CLI::Range(0.01, 366.0 * 24 * 3600));
  cmd->add_option("--rounds", opt->rounds, "With --every: stop after N rounds")
      ->check(CLI::PositiveNumber)
      ->needs(every);
  AddStoreOption(cmd, &opt->db);
  return [opt, cmd]() -> int { return cmd->parsed() ? RunCleanup(*opt) : -1; };
}

}  // namespace brig::cli
