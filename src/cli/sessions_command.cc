// `brig sessions`: list, inspect, create, extend, delete, reset, fork, export and import
// sessions.
//
//   brig sessions list
//   brig sessions show ID
//   brig sessions create ID [--expires-days N] [--metadata JSON] [--max-files N]
//                           [--max-total-bytes N] [--max-file-bytes N]
//   brig sessions extend ID DAYS
//   brig sessions delete ID
//   brig sessions reset ID          (clears the interpreter state, keeps the files)
//   brig sessions fork SRC DST [--expires-days N] [--metadata JSON]
//   brig sessions export ID FILE    (FILE "-": stdout)
//   brig sessions import ID FILE [--expires-days N] [--metadata JSON]   (FILE "-": stdin)
//
// Every subcommand takes --db URL and --json. Exit status: 0 success; 1 the operation failed
// (no such session, expired, exists already, store unavailable); 2 bad command line or
// argument, or an unreadable or damaged snapshot.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "brig/result_json.h"
#include "brig/session_info.h"
#include "brig/session_manager.h"
#include "brig/sessions.h"
#include "brig/store.h"
#include "brig/text.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace brig::cli {
namespace {

struct SessionsOptions {
  std::string db;
  bool json = false;
  std::string thread_id;
  int64_t days = 0;
  int64_t expires_days = 0;
  bool has_expires_days = false;
  std::string metadata;
  SessionQuotas quotas;  // create
  std::string dst;   // fork
  std::string file;  // export, import: a path or "-"
};

// A snapshot is at most its header (32 MiB), state (1 GiB) and files (the quota, 200 MiB by
// default): reading stops well past that, before memory runs out.
constexpr int64_t kMaxSnapshotInput = int64_t{2} << 30;

// --metadata as a JSON object, into *out (nullopt when not given).
Status ParseMetadata(const std::string& text, std::optional<nlohmann::json>* out) {
  if (text.empty()) return Status::Ok();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("--metadata must be a JSON object, e.g. '{\"owner\": \"me\"}'");
  }
  *out = std::move(j);
  return Status::Ok();
}

// Prints the error as one line; a malformed argument is a usage error.

// "expires 2026-05-21T10:00:00Z (in 179 days)" / "expired 2025-...".
std::string ExpiryText(const SessionManager& m, const SessionInfo& s) {
  if (m.IsExpired(s)) return "expired " + FormatTimestamp(s.expires_at);
  // Rounded: a session made with --expires-days 30 a moment ago shows "in 30 days".
  const int64_t days = (s.expires_at - m.Now() + kMicrosPerDay / 2) / kMicrosPerDay;
  return FormatTimestamp(s.expires_at) +
         (days >= 1 ? " (in " + std::to_string(days) + (days == 1 ? " day)" : " days)") : " (in less than a day)");
}

void PrintSession(const SessionManager& m, const SessionInfo& s) {
  std::cout << "thread_id:      " << s.thread_id << "\n"
            << "created:        " << FormatTimestamp(s.created_at) << "\n"
            << "last accessed:  " << FormatTimestamp(s.last_accessed) << "\n"
            << "expires:        " << ExpiryText(m, s) << "\n"
            << "files:          " << s.file_count << " (" << s.total_bytes << " bytes"
            << (s.total_bytes >= 1024 ? ", " + FormatBytes(s.total_bytes) : std::string()) << ")\n"
            << "metadata:       " << s.metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
  const SessionQuotas q = m.EffectiveQuotas(s);
  std::cout << "quotas:         " << *q.max_files << " files, " << FormatBytes(*q.max_total_bytes) << " in all, "
            << FormatBytes(*q.max_file_bytes) << " per file" << (s.quotas.empty() ? "" : " (its own)") << "\n";
}

int RunList(SessionManager& m, const SessionsOptions& opt) {
  StatusOr<std::vector<SessionInfo>> list = m.List();
  if (!list.ok()) return ReportFailure(list.status());
  if (opt.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const SessionInfo& s : list.value()) out.push_back(SessionInfoToJson(m, s));
    PrintJson(out);
    return kExitOk;
  }
  if (list.value().empty()) {
    std::cout << "no sessions\n";
    return kExitOk;
  }
  size_t width = std::string("THREAD_ID").size();
  for (const SessionInfo& s : list.value()) width = std::max(width, s.thread_id.size());
  std::cout << std::left << std::setw(static_cast<int>(width)) << "THREAD_ID" << "  " << std::right
            << std::setw(6) << "FILES" << "  " << std::setw(10) << "BYTES" << "  " << std::left << std::setw(20)
            << "LAST_ACCESSED" << "  EXPIRES\n";
  for (const SessionInfo& s : list.value()) {
    std::cout << std::left << std::setw(static_cast<int>(width)) << s.thread_id << "  " << std::right
              << std::setw(6) << s.file_count << "  " << std::setw(10) << s.total_bytes << "  " << std::left
              << std::setw(20) << FormatTimestamp(s.last_accessed) << "  " << ExpiryText(m, s) << "\n";
  }
  return kExitOk;
}

int Show(SessionManager& m, const SessionsOptions& opt, const StatusOr<SessionInfo>& s) {
  if (!s.ok()) return ReportFailure(s.status());
  if (opt.json) {
    PrintJson(SessionInfoToJson(m, s.value()));
  } else {
    PrintSession(m, s.value());
  }
  return kExitOk;
}

int RunCreate(SessionManager& m, const SessionsOptions& opt) {
  std::optional<nlohmann::json> metadata;
  if (Status s = ParseMetadata(opt.metadata, &metadata); !s.ok()) return ReportFailure(s);
  const std::optional<int64_t> days = opt.has_expires_days ? std::optional<int64_t>(opt.expires_days) : std::nullopt;
  return Show(m, opt, m.Create(opt.thread_id, days, metadata.value_or(nlohmann::json::object()), opt.quotas));
}

int RunExtend(SessionManager& m, const SessionsOptions& opt) {
  StatusOr<SessionInfo> s = m.Extend(opt.thread_id, opt.days);
  if (!s.ok()) return ReportFailure(s.status());
  if (opt.json) {
    PrintJson(SessionInfoToJson(m, s.value()));
  } else {
    std::cout << "session '" << s.value().thread_id << "' expires " << ExpiryText(m, s.value()) << "\n";
  }
  return kExitOk;
}

int RunDelete(SessionManager& m, const SessionsOptions& opt) {
  if (Status s = m.Delete(opt.thread_id); !s.ok()) return ReportFailure(s);
  if (opt.json) {
    PrintJson({{"thread_id", opt.thread_id}, {"deleted", true}});
  } else {
    std::cout << "deleted session '" << opt.thread_id << "' with its state and files\n";
  }
  return kExitOk;
}

int RunReset(SessionManager& m, const SessionsOptions& opt) {
  if (Status s = m.Reset(opt.thread_id); !s.ok()) return ReportFailure(s);
  if (opt.json) {
    PrintJson({{"thread_id", opt.thread_id}, {"reset", true}});
  } else {
    std::cout << "reset session '" << opt.thread_id << "': interpreter state cleared, files kept\n";
  }
  return kExitOk;
}

int RunFork(SessionManager& m, const SessionsOptions& opt) {
  ForkOptions fork;
  if (Status s = ParseMetadata(opt.metadata, &fork.metadata); !s.ok()) return ReportFailure(s);
  if (opt.has_expires_days) fork.expiry_days = opt.expires_days;
  StatusOr<SessionInfo> s = m.Fork(opt.thread_id, opt.dst, fork);
  if (!s.ok()) return ReportFailure(s.status());
  if (opt.json) {
    PrintJson(SessionInfoToJson(m, s.value()));
  } else {
    std::cout << "forked session '" << opt.thread_id << "' into '" << s.value().thread_id << "' ("
              << s.value().file_count << (s.value().file_count == 1 ? " file" : " files") << "; expires "
              << ExpiryText(m, s.value()) << ")\n";
  }
  return kExitOk;
}

// Writes `bytes` to `path` whole or not at all: into a new file beside it, then renamed over
// it. Private (0600): a snapshot holds everything the session holds.
Status WriteFileWhole(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  int err = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err == 0 && fsync(fd) != 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(tmp.c_str());
    return Status::Unavailable("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

// Reads all of `in` (at most kMaxSnapshotInput bytes) into *out.
Status ReadSnapshot(std::istream& in, const std::string& name, std::string* out) {
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out->append(buf, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(out->size()) > kMaxSnapshotInput) {
      return Status::InvalidArgument(name + " is larger than a brig snapshot can be (" +
                                     std::to_string(kMaxSnapshotInput) + " bytes)");
    }
  }
  if (in.bad()) return Status::InvalidArgument("cannot read " + name);
  return Status::Ok();
}

int RunExport(Sessions& sessions, const SessionsOptions& opt) {
  const bool to_stdout = opt.file == "-";
  if (to_stdout && opt.json) {
    return ReportFailure(Status::InvalidArgument("--json cannot be used when the snapshot goes to stdout (-)"));
  }
  StatusOr<std::string> bytes = sessions.ExportSnapshot(opt.thread_id);
  if (!bytes.ok()) return ReportFailure(bytes.status());
  if (to_stdout) {
    if (std::fwrite(bytes.value().data(), 1, bytes.value().size(), stdout) != bytes.value().size() ||
        std::fflush(stdout) != 0) {
      return ReportFailure(Status::Unavailable(std::string("cannot write the snapshot to stdout: ") + std::strerror(errno)));
    }
    return kExitOk;
  }
  if (Status s = WriteFileWhole(opt.file, bytes.value()); !s.ok()) return ReportFailure(s);
  if (opt.json) {
    PrintJson({{"thread_id", opt.thread_id}, {"file", opt.file}, {"bytes", bytes.value().size()}});
  } else {
    std::cout << "exported session '" << opt.thread_id << "' to " << opt.file << " (" << bytes.value().size()
              << " bytes" << (bytes.value().size() >= 1024 ? ", " + FormatBytes(static_cast<int64_t>(bytes.value().size())) : std::string())
              << ")\n";
  }
  return kExitOk;
}

int RunImport(Sessions& sessions, const SessionsOptions& opt) {
  Sessions::ImportOptions import;
  if (Status s = ParseMetadata(opt.metadata, &import.metadata); !s.ok()) return ReportFailure(s);
  if (opt.has_expires_days) import.expiry_days = opt.expires_days;
  std::string bytes;
  if (opt.file == "-") {
    if (Status s = ReadSnapshot(std::cin, "stdin", &bytes); !s.ok()) return ReportFailure(s);
  } else {
    std::ifstream in(opt.file, std::ios::binary);
    if (!in) return ReportFailure(Status::InvalidArgument("cannot open " + opt.file));
    if (Status s = ReadSnapshot(in, opt.file, &bytes); !s.ok()) return ReportFailure(s);
  }
  StatusOr<ImportResult> r = sessions.ImportSnapshot(opt.thread_id, bytes, import);
  if (!r.ok()) return ReportFailure(r.status());
  const ImportResult& got = r.value();
  SessionManager& m = sessions.manager();
  if (opt.json) {
    PrintJson({{"session", SessionInfoToJson(m, got.session)},
               {"restored_from", got.restored_from},
               {"pages_dropped", got.pages_dropped.empty() ? nlohmann::json() : nlohmann::json(got.pages_dropped)},
               {"not_restored", got.not_restored},
               {"source", {{"thread_id", got.source_thread_id},
                           {"exported_at", FormatTimestamp(got.exported_at)},
                           {"guest_build_id", got.source_guest_build_id}}}});
    return kExitOk;
  }
  std::cout << "imported session '" << got.session.thread_id << "' from a snapshot of '" << got.source_thread_id
            << "' (exported " << FormatTimestamp(got.exported_at) << "): " << got.session.file_count
            << (got.session.file_count == 1 ? " file" : " files") << "; its interpreter restores from "
            << (got.restored_from == "new" ? "nothing (no state was saved)" : got.restored_from + " snapshot") << "\n";
  std::cout.flush();
  if (!got.pages_dropped.empty()) PrintError("note: the page snapshot does not restore here: " + got.pages_dropped);
  for (const auto& [name, why] : got.not_restored) PrintError("warning: " + name + " will not be restored: " + why);
  return kExitOk;
}

}  // namespace

Runner AddSessionsCommand(CLI::App& app) {
  auto opt = std::make_shared<SessionsOptions>();
  CLI::App* cmd =
      app.add_subcommand("sessions", "List, inspect, extend, delete, reset, fork, export or import sessions");
  cmd->require_subcommand(1);
  auto leaf = [&](const char* name, const char* help) {
    CLI::App* sub = cmd->add_subcommand(name, help);
    AddStoreOption(sub, &opt->db);
    sub->add_flag("--json", opt->json, "Print JSON");
    return sub;
  };
  auto id = [&](CLI::App* sub) { sub->add_option("thread_id", opt->thread_id, "Session id")->required(); };

  CLI::App* list = leaf("list", "List every session (expired ones too)");
  CLI::App* show = leaf("show", "Show one session: times, expiry, files, metadata");
  id(show);
  CLI::App* create = leaf("create", "Create a session");
  id(create);
  CLI::Option* expires = create->add_option("--expires-days", opt->expires_days, "Days until it expires (default 180)");
  create->add_option("--metadata", opt->metadata, "A JSON object to keep with the session");
  // Each may only lower the default quota (README: Quotas); unset: the default.
  create->add_option("--max-files", opt->quotas.max_files, "The session's own file-count quota")->check(CLI::PositiveNumber);
  create->add_option("--max-total-bytes", opt->quotas.max_total_bytes, "The session's own quota of bytes in all its files")
      ->check(CLI::PositiveNumber);
  create->add_option("--max-file-bytes", opt->quotas.max_file_bytes, "The session's own quota of bytes per file")
      ->check(CLI::PositiveNumber);
  CLI::App* extend = leaf("extend", "Push the expiry DAYS further: from now if already expired");
  id(extend);
  extend->add_option("days", opt->days, "Days to add")->required();
  CLI::App* del = leaf("delete", "Delete a session with its state and files");
  id(del);
  CLI::App* reset = leaf("reset", "Clear the session's interpreter state; keep its files");
  id(reset);
  CLI::App* fork = leaf("fork", "Make DST, a new session with SRC's variables and files; the two then diverge");
  fork->add_option("src", opt->thread_id, "Session to fork")->required();
  fork->add_option("dst", opt->dst, "New session id (must not exist)")->required();
  CLI::Option* fork_expires = fork->add_option("--expires-days", opt->expires_days, "Days until DST expires (default 180)");
  fork->add_option("--metadata", opt->metadata, "DST's metadata, a JSON object (default: SRC's)");
  CLI::App* exp = leaf("export", "Write a session (state, files, metadata) as a snapshot file, to import elsewhere");
  id(exp);
  exp->add_option("file", opt->file, "Snapshot file to write, or - for stdout")->required();
  CLI::App* imp = leaf("import", "Make a new session from a snapshot file (brig sessions export)");
  id(imp);
  imp->add_option("file", opt->file, "Snapshot file to read, or - for stdin")->required();
  CLI::Option* import_expires = imp->add_option("--expires-days", opt->expires_days, "Days until it expires (default 180)");
  imp->add_option("--metadata", opt->metadata, "Its metadata, a JSON object (default: the snapshot's)");

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    opt->has_expires_days = expires->count() + fork_expires->count() + import_expires->count() > 0;
    StatusOr<std::unique_ptr<Store>> store = OpenConfiguredStore(opt->db);
    if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
    if (exp->parsed() || imp->parsed()) {
      // Snapshots need the guest (its build, and a sandbox to try an import in).
      auto sessions = Sessions::Open(*store.value(), Sessions::Options{});
      if (!sessions.ok()) return ReportFailure(sessions.status());
      return exp->parsed() ? RunExport(*sessions.value(), *opt) : RunImport(*sessions.value(), *opt);
    }
    SessionManager manager(*store.value());
    if (list->parsed()) return RunList(manager, *opt);
    if (show->parsed()) return Show(manager, *opt, manager.Get(opt->thread_id));
    if (create->parsed()) return RunCreate(manager, *opt);
    if (extend->parsed()) return RunExtend(manager, *opt);
    if (del->parsed()) return RunDelete(manager, *opt);
    if (reset->parsed()) return RunReset(manager, *opt);
    if (fork->parsed()) return RunFork(manager, *opt);
    return kExitUsage;
  };
}

}  // namespace brig::cli
