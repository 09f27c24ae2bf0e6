// `brig sessions`: list, inspect, create, extend, delete and reset sessions.
//
//   brig sessions list
//   brig sessions show ID
//   brig sessions create ID [--expires-days N] [--metadata JSON]
//   brig sessions extend ID DAYS
//   brig sessions delete ID
//   brig sessions reset ID          (clears the interpreter state, keeps the files)
//
// Every subcommand takes --db URL and --json. Exit status: 0 success; 1 the operation failed
// (no such session, expired, store unavailable); 2 bad command line or argument.
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"
#include "session/session_manager.h"
#include "store/store.h"

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
};

// Prints the error as one line; a malformed argument is a usage error.

nlohmann::json ToJson(const session::SessionManager& m, const store::SessionInfo& s) {
  return {{"thread_id", s.thread_id},
          {"created_at", session::FormatTimestamp(s.created_at)},
          {"last_accessed", session::FormatTimestamp(s.last_accessed)},
          {"expires_at", session::FormatTimestamp(s.expires_at)},
          {"expired", m.IsExpired(s)},
          {"metadata", s.metadata},
          {"file_count", s.file_count},
          {"total_bytes", s.total_bytes}};
}

// "expires 2026-05-21T10:00:00Z (in 179 days)" / "expired 2025-...".
std::string ExpiryText(const session::SessionManager& m, const store::SessionInfo& s) {
  if (m.IsExpired(s)) return "expired " + session::FormatTimestamp(s.expires_at);
  // Rounded: a session made with --expires-days 30 a moment ago shows "in 30 days".
  const int64_t days = (s.expires_at - m.Now() + session::kMicrosPerDay / 2) / session::kMicrosPerDay;
  return session::FormatTimestamp(s.expires_at) +
         (days >= 1 ? " (in " + std::to_string(days) + (days == 1 ? " day)" : " days)") : " (in less than a day)");
}

void PrintSession(const session::SessionManager& m, const store::SessionInfo& s) {
  std::cout << "thread_id:      " << s.thread_id << "\n"
            << "created:        " << session::FormatTimestamp(s.created_at) << "\n"
            << "last accessed:  " << session::FormatTimestamp(s.last_accessed) << "\n"
            << "expires:        " << ExpiryText(m, s) << "\n"
            << "files:          " << s.file_count << " (" << s.total_bytes << " bytes"
            << (s.total_bytes >= 1024 ? ", " + session::FormatBytes(s.total_bytes) : std::string()) << ")\n"
            << "metadata:       " << s.metadata.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
}

int RunList(session::SessionManager& m, const SessionsOptions& opt) {
  StatusOr<std::vector<store::SessionInfo>> list = m.List();
  if (!list.ok()) return ReportFailure(list.status());
  if (opt.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const store::SessionInfo& s : list.value()) out.push_back(ToJson(m, s));
    PrintJson(out);
    return kExitOk;
  }
  if (list.value().empty()) {
    std::cout << "no sessions\n";
    return kExitOk;
  }
  size_t width = std::string("THREAD_ID").size();
  for (const store::SessionInfo& s : list.value()) width = std::max(width, s.thread_id.size());
  std::cout << std::left << std::setw(static_cast<int>(width)) << "THREAD_ID" << "  " << std::right
            << std::setw(6) << "FILES" << "  " << std::setw(10) << "BYTES" << "  " << std::left << std::setw(20)
            << "LAST_ACCESSED" << "  EXPIRES\n";
  for (const store::SessionInfo& s : list.value()) {
    std::cout << std::left << std::setw(static_cast<int>(width)) << s.thread_id << "  " << std::right
              << std::setw(6) << s.file_count << "  " << std::setw(10) << s.total_bytes << "  " << std::left
              << std::setw(20) << session::FormatTimestamp(s.last_accessed) << "  " << ExpiryText(m, s) << "\n";
  }
  return kExitOk;
}

int Show(session::SessionManager& m, const SessionsOptions& opt, const StatusOr<store::SessionInfo>& s) {
  if (!s.ok()) return ReportFailure(s.status());
  if (opt.json) {
    PrintJson(ToJson(m, s.value()));
  } else {
    PrintSession(m, s.value());
  }
  return kExitOk;
}

int RunCreate(session::SessionManager& m, const SessionsOptions& opt) {
  nlohmann::json metadata = nlohmann::json::object();
  if (!opt.metadata.empty()) {
    metadata = nlohmann::json::parse(opt.metadata, nullptr, /*allow_exceptions=*/false);
    if (metadata.is_discarded() || !metadata.is_object()) {
      return ReportFailure(Status::InvalidArgument("--metadata must be a JSON object, e.g. '{\"owner\": \"me\"}'"));
    }
  }
  const std::optional<int64_t> days = opt.has_expires_days ? std::optional<int64_t>(opt.expires_days) : std::nullopt;
  return Show(m, opt, m.Create(opt.thread_id, days, metadata));
}

int RunExtend(session::SessionManager& m, const SessionsOptions& opt) {
  StatusOr<store::SessionInfo> s = m.Extend(opt.thread_id, opt.days);
  if (!s.ok()) return ReportFailure(s.status());
  if (opt.json) {
    PrintJson(ToJson(m, s.value()));
  } else {
    std::cout << "session '" << s.value().thread_id << "' expires " << ExpiryText(m, s.value()) << "\n";
  }
  return kExitOk;
}

int RunDelete(session::SessionManager& m, const SessionsOptions& opt) {
  if (Status s = m.Delete(opt.thread_id); !s.ok()) return ReportFailure(s);
  if (opt.json) {
    PrintJson({{"thread_id", opt.thread_id}, {"deleted", true}});
  } else {
    std::cout << "deleted session '" << opt.thread_id << "' with its state and files\n";
  }
  return kExitOk;
}

int RunReset(session::SessionManager& m, const SessionsOptions& opt) {
  if (Status s = m.Reset(opt.thread_id); !s.ok()) return ReportFailure(s);
  if (opt.json) {
    PrintJson({{"thread_id", opt.thread_id}, {"reset", true}});
  } else {
    std::cout << "reset session '" << opt.thread_id << "': interpreter state cleared, files kept\n";
  }
  return kExitOk;
}

}  // namespace

Runner AddSessionsCommand(CLI::App& app) {
  auto opt = std::make_shared<SessionsOptions>();
  CLI::App* cmd = app.add_subcommand("sessions", "List, inspect, extend, delete or reset sessions");
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
  CLI::App* extend = leaf("extend", "Push the expiry DAYS further: from now if already expired");
  id(extend);
  extend->add_option("days", opt->days, "Days to add")->required();
  CLI::App* del = leaf("delete", "Delete a session with its state and files");
  id(del);
  CLI::App* reset = leaf("reset", "Clear the session's interpreter state; keep its files");
  id(reset);

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    opt->has_expires_days = expires->count() > 0;
    StatusOr<std::unique_ptr<store::Store>> store = OpenConfiguredStore(opt->db);
    if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
    session::SessionManager manager(*store.value());
    if (list->parsed()) return RunList(manager, *opt);
    if (show->parsed()) return Show(manager, *opt, manager.Get(opt->thread_id));
    if (create->parsed()) return RunCreate(manager, *opt);
    if (extend->parsed()) return RunExtend(manager, *opt);
    if (del->parsed()) return RunDelete(manager, *opt);
    if (reset->parsed()) return RunReset(manager, *opt);
    return kExitUsage;
  };
}

}  // namespace brig::cli
