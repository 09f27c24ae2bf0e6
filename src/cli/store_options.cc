// Which store the CLI uses: --db, then $BRIG_DB, then the embedded SQLite file in $BRIG_HOME.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "store/store.h"

namespace brig::cli {
namespace {

// mkdir -p; true if `dir` exists afterwards.
bool MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); i++) {
    if (i < dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return false;
  }
  struct stat st;
  return stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string BrigHome() {
  if (const char* home = std::getenv("BRIG_HOME"); home && *home) return home;
  const char* user_home = std::getenv("HOME");
  return std::string(user_home && *user_home ? user_home : ".") + "/.local/share/brig";
}

}  // namespace

std::string ResolveStoreUrl(const std::string& db_flag) {
  if (!db_flag.empty()) return db_flag;
  if (const char* db = std::getenv("BRIG_DB"); db && *db) return db;
  return "sqlite:" + BrigHome() + "/brig.db";
}

void AddStoreOption(CLI::App* cmd, std::string* url) {
  cmd->add_option("--db", *url,
                  "Store URL: sqlite:PATH or postgresql://... (default $BRIG_DB, else "
                  "sqlite:$BRIG_HOME/brig.db)");
}

StatusOr<std::unique_ptr<store::Store>> OpenConfiguredStore(const std::string& db_flag) {
  std::string url = ResolveStoreUrl(db_flag);
  if (db_flag.empty() && !std::getenv("BRIG_DB")) {
    std::string home = BrigHome();
    if (!MakeDirs(home)) {
      Status s = Status::Unavailable("cannot create " + home + ": " + std::strerror(errno));
      PrintError(s.message());
      return s;
    }
  }
  auto opened = store::OpenStore(url);
  if (!opened.ok()) PrintError(opened.status().message());
  return opened;
}

}  // namespace brig::cli
