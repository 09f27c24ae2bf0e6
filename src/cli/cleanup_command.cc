// `brig cleanup`: delete expired sessions (with their state and files) and orphaned files,
// once.
//
//   brig cleanup [--dry-run] [--json] [--db URL]
//
// --dry-run changes nothing and reports what would be deleted. Exit status: 0 success; 1 the
// store failed; 2 bad command line.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"
#include "session/session_manager.h"
#include "store/store.h"

namespace brig::cli {
namespace {

struct CleanupOptions {
  std::string db;
  bool json = false;
  bool dry_run = false;
};

int RunCleanup(const CleanupOptions& opt) {
  StatusOr<std::unique_ptr<store::Store>> store = OpenConfiguredStore(opt.db);
  if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
  session::SessionManager manager(*store.value());
  StatusOr<store::CleanupStats> stats = manager.Cleanup(opt.dry_run);
  if (!stats.ok()) return ReportFailure(stats.status());
  const store::CleanupStats& s = stats.value();
  if (opt.json) {
    const nlohmann::json j = {{"dry_run", opt.dry_run},
                              {"sessions_deleted", s.sessions_deleted},
                              {"files_deleted", s.files_deleted},
                              {"bytes_freed", s.bytes_freed}};
    PrintJson(j);
  } else {
    std::cout << (opt.dry_run ? "would delete " : "deleted ") << s.sessions_deleted << " expired session(s), "
              << s.files_deleted << " file(s), freeing " << s.bytes_freed << " bytes"
              << (s.bytes_freed >= 1024 ? " (" + session::FormatBytes(s.bytes_freed) + ")" : std::string()) << "\n";
  }
  return kExitOk;
}

}  // namespace

Runner AddCleanupCommand(CLI::App& app) {
  auto opt = std::make_shared<CleanupOptions>();
  CLI::App* cmd = app.add_subcommand("cleanup", "Delete expired sessions and orphaned files");
  cmd->add_flag("--dry-run", opt->dry_run, "Change nothing; report what would be deleted");
  cmd->add_flag("--json", opt->json, "Print JSON");
  AddStoreOption(cmd, &opt->db);
  return [opt, cmd]() -> int { return cmd->parsed() ? RunCleanup(*opt) : -1; };
}

}  // namespace brig::cli
