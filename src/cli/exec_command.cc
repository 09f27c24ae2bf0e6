// `brig exec`: run Python code once in a fresh sandbox and report what it did.
//
//   brig exec -c CODE | FILE | -   [--session ID [--db URL]] [--json] [--timeout S] [--memory MB]
//             [-v HOST_DIR:GUEST_DIR[:ro|rw]]...
//
// Without --session the code runs in a fresh sandbox that is thrown away. With --session it
// runs in that session (created if missing): its variables, functions and files from earlier
// executions are there, and what this one leaves is saved to the store (brig/sessions.h).
//
// Exit status: 0 success; 1 the code raised a Python exception; N when the code called
// sys.exit(N); 124 timeout; 125 the sandbox failed (trap, guest error); 2 bad command line
// or unreadable input; 3 the session could not be used or saved (expired, store
// unavailable, quota).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "brig/result_json.h"
#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "brig/store.h"
#include "cli/commands.h"
#include "cli/mount_option.h"
#include "cli/output.h"

namespace brig::cli {
namespace {

struct ExecOptions {
  std::string code;
  bool has_code = false;
  std::string file;
  bool json = false;
  double timeout_seconds = 30;
  uint64_t memory_mb = 256;
  std::string session;
  std::string db;
  // Session quotas and the expiry of a session this execution creates (0: the defaults).
  int64_t max_files = 0;
  int64_t max_mib = 0;
  int64_t expires_days = 0;
  std::vector<std::string> mounts;  // -v values
};

constexpr int kExitSession = 3;

int ExitStatusOf(const brig::ExecutionResult& r) {
  switch (r.failure) {
    case brig::Failure::kNone: break;
    case brig::Failure::kTimeout: return kExitTimeout;
    case brig::Failure::kExit: return r.exit_code.value_or(kExitSandbox) & 0xff;
    case brig::Failure::kTrap:
    case brig::Failure::kGuestError: return kExitSandbox;
  }
  if (r.exit_code) return *r.exit_code & 0xff;
  return r.ok ? 0 : 1;
}

bool ReadAll(std::istream& in, std::string* out) {
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

int RunExec(const ExecOptions& opt) {
  std::string code;
  std::string filename;
  if (opt.has_code) {
    code = opt.code;
    filename = "<string>";
  } else if (opt.file == "-") {
    if (!ReadAll(std::cin, &code)) {
      PrintError("cannot read code from stdin");
      return kExitUsage;
    }
    filename = "<stdin>";
  } else if (!opt.file.empty()) {
    std::ifstream in(opt.file, std::ios::binary);
    if (!in || !ReadAll(in, &code)) {
      PrintError("cannot read " + opt.file);
      return kExitUsage;
    }
    filename = opt.file;
  } else {
    PrintError("exec: give -c CODE, a FILE, or - to read the code from stdin");
    return kExitUsage;
  }

  brig::Limits limits;
  limits.timeout_seconds = opt.timeout_seconds;
  limits.memory_bytes = opt.memory_mb << 20;
  for (const std::string& v : opt.mounts) {
    brig::Mount mount;
    std::string error;
    if (!ParseMountOption(v, &mount, &error)) {
      PrintError("exec: " + error);
      return kExitUsage;
    }
    limits.mounts.push_back(std::move(mount));
  }
  if (brig::Status valid = brig::ValidateLimits(limits); !valid.ok()) {
    PrintError("exec: " + valid.message());
    return kExitUsage;
  }
  brig::ExecutionResult r;
  nlohmann::json json_out;  // --json: what brig/result_json.h makes of the outcome
  if (!opt.session.empty()) {
    brig::Sessions::Options options;
    options.limits = limits;
    options.max_live = 0;  // one execution per process
    if (opt.max_files > 0) options.max_files_per_session = opt.max_files;
    if (opt.max_mib > 0) options.max_bytes_per_session = opt.max_mib << 20;
    if (opt.expires_days > 0) options.default_expiry_days = opt.expires_days;
    StoreOptions tuning;
    if (Status tuned = StoreTuningFromEnv(&tuning); !tuned.ok()) {
      PrintError(tuned.message());
      return kExitUsage;
    }
    // Opened once, tuned as above (the default SQLite file lives in $BRIG_HOME, created on
    // first use); the error is printed.
    auto store = OpenConfiguredStore(opt.db);
    if (!store.ok()) return kExitSession;
    auto sessions = brig::Sessions::Open(*store.value(), options);
    if (!sessions.ok()) {
      PrintError(sessions.status().message());
      return kExitSession;
    }
    auto ran = sessions.value()->Execute(opt.session, code, filename);
    if (!ran.ok()) {
      PrintError("session " + opt.session + ": " + ran.status().message());
      return kExitSession;
    }
    if (opt.json) json_out = brig::ToJson(opt.session, ran.value());
    r = std::move(ran.value().execution);
    if (!opt.json) {
      for (const auto& [name, why] : ran.value().not_restored) {
        PrintError("warning: " + name + " was not restored: " + why);
      }
    }
  } else {
    // The process image is cached on disk, so after the first run a clone of it is much
    // cheaper than starting CPython; without the cache, making it would cost more than it saves.
    const char* cache = std::getenv("BRIG_IMAGE_CACHE");
    bool cached = !(cache && std::string_view(cache) == "off");
    auto sandbox = brig::Sandbox::Create(limits, cached ? brig::Start::kFromImage : brig::Start::kCold);
    if (!sandbox.ok()) {
      PrintError(sandbox.status().message());
      return kExitUsage;
    }
    r = sandbox.value()->Execute(code, filename);
    // Not destroyed: the process ends after printing, and destroying a clone resets its
    // memory for a next sandbox that this process never makes (a tenth of `exec -c pass`).
    (void)sandbox.value().release();
  }

  if (opt.json) {
    PrintJson(json_out.is_null() ? brig::ToJson(r) : json_out);
  } else {
    std::fwrite(r.stdout_text.data(), 1, r.stdout_text.size(), stdout);
    std::fflush(stdout);
    std::fwrite(r.stderr_text.data(), 1, r.stderr_text.size(), stderr);
    if (r.failure != brig::Failure::kNone && r.failure != brig::Failure::kExit) {
      std::fprintf(stderr, "brig: %s: %s\n", std::string(brig::FailureName(r.failure)).c_str(),
                   r.failure_message.c_str());
    }
  }
  return ExitStatusOf(r);
}

}  // namespace


Runner AddExecCommand(CLI::App& app) {
  auto exec = std::make_shared<ExecOptions>();
  CLI::App* cmd = app.add_subcommand("exec", "Run Python code in a fresh sandbox");
  auto* code_opt = cmd->add_option("-c,--code", exec->code, "Python code to run");
  auto* file_opt = cmd->add_option("file", exec->file, "File with the code, or - for stdin");
  code_opt->excludes(file_opt);
  cmd->add_flag("--json", exec->json, "Print one JSON object describing the outcome");
  cmd->add_option("--session", exec->session,
                  "Run in this session (a thread_id): state and files persist in the store");
  AddStoreOption(cmd, &exec->db);
  auto* session_opt = cmd->get_option("--session");
  cmd->add_option("--max-files", exec->max_files, "With --session: the session's file-count quota (default 1000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->needs(session_opt);
  cmd->add_option("--max-mib", exec->max_mib, "With --session: the session's total file size quota in MiB (default 200)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->needs(session_opt);
  cmd->add_option("--expires-days", exec->expires_days,
                  "With --session: expiry of the session if this execution creates it (default 180)")
      ->check(CLI::Range(int64_t{1}, int64_t{36500}))
      ->needs(session_opt);
  cmd->add_option("--timeout", exec->timeout_seconds, "Wall-clock limit in seconds (default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--memory", exec->memory_mb, "Guest memory limit in MB (default 256)")
      ->check(CLI::Range(16, 4095));
  cmd->add_option("-v,--volume", exec->mounts,
                  "Show host directory HOST_DIR to the code at GUEST_DIR (HOST_DIR:GUEST_DIR[:ro|rw], "
                  "read-only by default; repeatable). Not saved with a session");
  cmd->callback([exec, code_opt] { exec->has_code = code_opt->count() > 0; });
  return [exec, cmd]() -> int { return cmd->parsed() ? RunExec(*exec) : -1; };
}

}  // namespace brig::cli
