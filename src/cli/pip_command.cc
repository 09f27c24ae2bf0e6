// `brig pip`: pure-Python wheels in a session's site-packages, without a network
// (brig/wheels.h).
//
//   brig pip install   --session ID WHEEL [--from-session]
//   brig pip list      --session ID
//   brig pip uninstall --session ID NAME
//
// WHEEL is a file on this machine if one exists at that path, else a file already in the
// session (uploaded with `brig files put`; relative: under /home/user); --from-session
// always takes the session's. `install` creates the session if it does not exist (from a
// local file). Every subcommand takes --db URL and --json. Exit status: 0 success; 1 the
// operation failed (a wheel refused, no such session, file or package, quota, store
// unavailable); 2 bad command line.
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/stat.h>

#include "brig/result_json.h"
#include "brig/session_manager.h"
#include "brig/store.h"
#include "brig/wheels.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace brig::cli {
namespace {

struct PipOptions {
  std::string db;
  bool json = false;
  std::string session;
  std::string wheel;  // install: WHEEL; uninstall: NAME
  bool from_session = false;
};

bool IsLocalFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

int RunInstall(Wheels& wheels, const PipOptions& opt) {
  StatusOr<InstallResult> r = Status::Internal("unreachable");
  if (!opt.from_session && IsLocalFile(opt.wheel)) {
    std::ifstream in(opt.wheel, std::ios::binary);
    if (!in) return ReportFailure(Status::InvalidArgument("cannot open " + opt.wheel));
    std::string bytes;
    char buf[1 << 16];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      bytes.append(buf, static_cast<size_t>(in.gcount()));
      if (static_cast<int64_t>(bytes.size()) > kMaxWheelBytes) {
        return ReportFailure(Status::ResourceExhausted(opt.wheel + " is larger than a wheel may be (" +
                                                       std::to_string(kMaxWheelBytes) + " bytes)"));
      }
    }
    if (in.bad()) return ReportFailure(Status::InvalidArgument("cannot read " + opt.wheel));
    r = wheels.Install(opt.session, bytes, opt.wheel.substr(opt.wheel.rfind('/') + 1));
  } else {
    const std::string path = !opt.wheel.empty() && opt.wheel[0] == '/' ? opt.wheel : "/home/user/" + opt.wheel;
    r = wheels.InstallFile(opt.session, path);
  }
  if (!r.ok()) {
    PrintError(r.status().message());  // a refused wheel too: the operation failed (1), not the command line
    return kExitFailure;
  }
  const InstallResult& res = r.value();
  if (opt.json) {
    PrintJson(ToJson(res));
  } else {
    std::cout << "Installed " << res.package.name << " " << res.package.version;
    if (!res.replaced_version.empty()) std::cout << " (replacing " << res.replaced_version << ")";
    std::cout << " in " << kSitePackages << "\n";
    for (const std::string& note : res.notes) std::cout << "note: " << note << "\n";
  }
  return kExitOk;
}

int RunList(Wheels& wheels, const PipOptions& opt) {
  StatusOr<std::vector<InstalledPackage>> list = wheels.List(opt.session);
  if (!list.ok()) return ReportFailure(list.status());
  if (opt.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const InstalledPackage& p : list.value()) out.push_back(ToJson(p));
    PrintJson(out);
  } else {
    for (const InstalledPackage& p : list.value()) std::cout << p.name << " " << p.version << "\n";
  }
  return kExitOk;
}

int RunUninstall(Wheels& wheels, const PipOptions& opt) {
  StatusOr<InstalledPackage> p = wheels.Uninstall(opt.session, opt.wheel);
  if (!p.ok()) return ReportFailure(p.status());
  if (opt.json) {
    PrintJson(ToJson(p.value()));
  } else {
    std::cout << "Uninstalled " << p.value().name << " " << p.value().version << "\n";
  }
  return kExitOk;
}

}  // namespace

Runner AddPipCommand(CLI::App& app) {
  auto opt = std::make_shared<PipOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pip", "Install pure-Python wheels into a session's site-packages (no network; compiled code is refused)");
  cmd->require_subcommand(1);
  auto leaf = [&](const char* name, const char* help) {
    CLI::App* sub = cmd->add_subcommand(name, help);
    sub->add_option("-s,--session", opt->session, "Session id")->required();
    AddStoreOption(sub, &opt->db);
    sub->add_flag("--json", opt->json, "Print JSON");
    return sub;
  };
  CLI::App* install = leaf("install", "Install a pure-Python wheel (py3-none-any) into the session");
  install->add_option("wheel", opt->wheel,
                      "The .whl: a file on this machine if one exists at this path, else a file in the session "
                      "(relative: under /home/user), e.g. put there with `brig files put`")
      ->required();
  install->add_flag("--from-session", opt->from_session, "Take WHEEL from the session's files, never from this machine");
  CLI::App* list = leaf("list", "List the packages installed in the session");
  CLI::App* uninstall = leaf("uninstall", "Remove an installed package (its files, as its RECORD lists them)");
  uninstall->add_option("name", opt->wheel, "The package's name")->required();

  return [=]() -> int {
    if (!cmd->parsed()) return -1;
    StatusOr<std::unique_ptr<Store>> store = OpenConfiguredStore(opt->db);
    if (!store.ok()) return store.status().IsInvalidArgument() ? kExitUsage : kExitFailure;
    SessionManager sessions(*store.value());
    Wheels wheels(sessions);
    if (install->parsed()) return RunInstall(wheels, *opt);
    if (list->parsed()) return RunList(wheels, *opt);
    if (uninstall->parsed()) return RunUninstall(wheels, *opt);
    return kExitUsage;
  };
}

}  // namespace brig::cli
