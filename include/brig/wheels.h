// brig::Wheels: pure-Python wheels (.whl) installed into a session's own site-packages,
// without a network and without executing code. What `brig pip install|list|uninstall` runs.
//
//   brig::Wheels wheels(manager);                              // a brig::SessionManager
//   auto r = wheels.InstallFile("agent-7", "/home/user/tabulate-0.9.0-py3-none-any.whl");
//   // the next execution of agent-7 can `import tabulate`
//
// Where. Into kSitePackages (/home/user/.local/lib/python3.11/site-packages), which is on
// the guest's sys.path after the standard library and before the packages brig ships (so a
// wheel can bring a newer version of one of those, and cannot shadow the stdlib). Installed
// files are ordinary session files: they count against the session's quotas, persist with
// it (restarts, other processes, other nodes), are copied by fork and carried by export, and
// the code in the session can read or change them. A session whose interpreter has already
// imported an older version keeps using it until the session is reset.
//
// What. The wheel is untrusted input, checked in full before anything is written (see
// src/wheels/wheel.h): a zip with bounded entries, sizes and compression ratio, names that
// stay inside site-packages, WHEEL saying Root-Is-Purelib with py3-none-any style tags,
// every file matching its sha256 in RECORD. A wheel with compiled code (*.so, *.pyd, an ABI
// or platform tag) is refused, InvalidArgument naming what was found: the sandbox is
// WebAssembly and cannot load native code. Only site-packages is installed: .data/scripts,
// headers and data are left out (InstallResult::notes says so). No dependencies are
// resolved: install each wheel a package needs.
//
// Atomic. An install is one store transaction: on any error nothing is written. Installing
// a distribution that is already installed (any version) replaces it: the old version's
// files (per its RECORD) go in the same transaction. Installs are serialised with
// executions and file writes (the session's lock; DeadlineExceeded after
// SessionOptions::lock_timeout), and a process that holds the session live sees them at its
// next execution. ResourceExhausted if the files would put the session over a quota.
// REQUIRES (Install*, Uninstall): the calling thread does not hold the session's lock.
//
// Sessions. Install creates a missing session (as FileService::Write does); the other calls
// need an existing one (NotFound). Any call on an expired session is FailedPrecondition.
//
// Thread-safety: safe for concurrent use from multiple threads. Borrows the SessionManager,
// which must outlive it. Errors: every call returns a Status; none throws.
#ifndef BRIG_WHEELS_H_
#define BRIG_WHEELS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "brig/session_manager.h"
#include "brig/status.h"

namespace brig {

namespace wheels {
class Installer;
}

inline constexpr char kSitePackages[] = "/home/user/.local/lib/python3.11/site-packages";
// The largest wheel Install takes (a wheel stored in the session is at most 20 MiB).
inline constexpr int64_t kMaxWheelBytes = int64_t{64} << 20;

struct InstalledPackage {
  std::string name;       // as its METADATA gives it ("my-pkg")
  std::string version;    // "1.0"
  std::string dist_info;  // its directory under kSitePackages ("my_pkg-1.0.dist-info")
  int64_t files = 0;      // its files present (per RECORD)
  int64_t bytes = 0;
};

struct InstallResult {
  InstalledPackage package;
  std::string replaced_version;    // the version this install replaced, or ""
  std::vector<std::string> notes;  // what the wheel held that was not installed, and why
};

class Wheels {
 public:
  explicit Wheels(SessionManager& sessions);
  ~Wheels();
  Wheels(const Wheels&) = delete;
  Wheels& operator=(const Wheels&) = delete;

  // Installs the wheel `wheel` (its bytes). `filename`: its file name, checked against its
  // contents when given (NAME-VERSION-TAGS.whl). InvalidArgument for a wheel refused (the
  // message says why), ResourceExhausted over kMaxWheelBytes or a quota.
  StatusOr<InstallResult> Install(std::string_view thread_id, std::string_view wheel, std::string_view filename = "");
  // Installs the wheel stored in the session at `path` (e.g. uploaded by FileService::Write).
  // NotFound if the session or the file is missing.
  StatusOr<InstallResult> InstallFile(std::string_view thread_id, std::string_view path);
  // The distributions installed in the session's site-packages (a .dist-info with METADATA),
  // by name.
  StatusOr<std::vector<InstalledPackage>> List(std::string_view thread_id);
  // Removes the distribution `name` (compared in PEP 503 normal form) and the files its
  // RECORD lists under kSitePackages. NotFound if it is not installed. Returns what it was.
  StatusOr<InstalledPackage> Uninstall(std::string_view thread_id, std::string_view name);

 private:
  std::unique_ptr<wheels::Installer> impl_;  // never null
};

}  // namespace brig

#endif  // BRIG_WHEELS_H_
