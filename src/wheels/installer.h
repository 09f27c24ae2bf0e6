// brig::wheels::Installer: the store side of brig::Wheels (include/brig/wheels.h, whose
// contract this keeps): parses a wheel (wheel.h), then under the session's lock checks the
// tree shape and quotas against the session's files as stored and writes the files (and
// removes a replaced version's) with one store.SaveExecution, which bumps the state version
// so live sessions reload. The RECORD of an installed distribution is a session file the
// guest can rewrite: uninstall deletes only listed paths that exist under site-packages.
//
// Thread-safety: safe for concurrent use. Borrows `sessions` (and its store).
#ifndef BRIG_WHEELS_INSTALLER_H_
#define BRIG_WHEELS_INSTALLER_H_

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "brig/status.h"
#include "brig/wheels.h"
#include "session/session_manager.h"
#include "store/store.h"
#include "wheels/wheel.h"

namespace brig::wheels {

class Installer {
 public:
  explicit Installer(session::SessionManager& sessions) : sessions_(sessions), store_(sessions.store()) {}

  StatusOr<InstallResult> Install(std::string_view thread_id, std::string_view wheel, std::string_view filename = "");
  StatusOr<InstallResult> InstallFile(std::string_view thread_id, std::string_view path);
  StatusOr<std::vector<InstalledPackage>> List(std::string_view thread_id);
  StatusOr<InstalledPackage> Uninstall(std::string_view thread_id, std::string_view name);

 private:
  // REQUIRES: the caller holds the session's lock.
  StatusOr<InstallResult> SaveUnderLock(std::string_view thread_id, const store::SessionQuotas& quotas,
                                        const Wheel& wheel);
  // What is installed as `dist_info` (its METADATA, the files its RECORD lists that exist).
  StatusOr<InstalledPackage> Describe(std::string_view thread_id, std::string_view dist_info);
  // The files (full paths, keys of `files`: the session's regular files under site-packages
  // and their sizes) that `dist_info`'s RECORD lists; none if it has no readable RECORD.
  // A listed path with ".." is never followed: the guest can rewrite RECORD.
  std::set<std::string> RecordedFiles(std::string_view thread_id, std::string_view dist_info,
                                      const std::unordered_map<std::string, int64_t>& files);
  // RecordedFiles plus every file under the dist-info directory: what replacing or
  // uninstalling the distribution deletes.
  std::set<std::string> OwnedFiles(std::string_view thread_id, std::string_view dist_info,
                                   const std::unordered_map<std::string, int64_t>& files);
  StatusOr<InstallResult> InstallParsed(std::string_view thread_id, const store::SessionInfo& session,
                                        const Wheel& wheel);
  ZipLimits LimitsFor(const store::SessionQuotas& quotas) const;

  session::SessionManager& sessions_;
  store::Store& store_;
};

}  // namespace brig::wheels

#endif  // BRIG_WHEELS_INSTALLER_H_
