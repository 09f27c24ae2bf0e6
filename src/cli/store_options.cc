// Which store the CLI uses: --db, then $BRIG_DB, then the embedded SQLite file in $BRIG_HOME.
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "brig/store.h"
#include "cli/commands.h"
#include "cli/output.h"

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

// The number in environment variable `name`, if set: InvalidArgument unless all of it is a
// number within [min, max].
StatusOr<std::optional<double>> EnvNumber(const char* name, double min, double max) {
  const char* text = std::getenv(name);
  if (!text || !*text) return std::optional<double>();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v) || v < min || v > max) {
    char range[96];
    std::snprintf(range, sizeof range, "a number from %g to %g", min, max);
    return Status::InvalidArgument(std::string(name) + "='" + text + "' is not " + range);
  }
  return std::optional<double>(v);
}

}  // namespace

Status StoreTuningFromEnv(StoreOptions* options) {
  auto pool = EnvNumber("BRIG_DB_POOL_SIZE", 1, 256);
  if (!pool.ok()) return pool.status();
  if (pool.value()) {
    if (*pool.value() != std::floor(*pool.value())) {
      return Status::InvalidArgument("BRIG_DB_POOL_SIZE must be a whole number of connections");
    }
    options->pool_size = static_cast<int>(*pool.value());
  }
  auto timeout = EnvNumber("BRIG_DB_STATEMENT_TIMEOUT", 0, 86400);
  if (!timeout.ok()) return timeout.status();
  if (timeout.value()) {
    options->statement_timeout = std::chrono::milliseconds(std::llround(*timeout.value() * 1000));
  }
  return Status::Ok();
}

StatusOr<std::string> BrigHomeDir() {
  std::string home = BrigHome();
  if (!MakeDirs(home)) return Status::Unavailable("cannot create " + home + ": " + std::strerror(errno));
  return home;
}

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

StatusOr<std::unique_ptr<Store>> OpenConfiguredStore(const std::string& db_flag) {
  std::string url = ResolveStoreUrl(db_flag);
  if (db_flag.empty() && !std::getenv("BRIG_DB")) {
    std::string home = BrigHome();
    if (!MakeDirs(home)) {
      Status s = Status::Unavailable("cannot create " + home + ": " + std::strerror(errno));
      PrintError(s.message());
      return s;
    }
  }
  StoreOptions options;
  if (Status tuned = StoreTuningFromEnv(&options); !tuned.ok()) {
    PrintError(tuned.message());
    return tuned;
  }
  auto opened = Store::Open(url, options);
  if (!opened.ok()) PrintError(opened.status().message());
  return opened;
}

}  // namespace brig::cli
