// The -v HOST_DIR:GUEST_DIR[:ro|rw] option of the commands that run code (brig exec): a
// volume mount (brig::Mount, include/brig/sandbox.h). Read-only unless ":rw".
#ifndef BRIG_CLI_MOUNT_OPTION_H_
#define BRIG_CLI_MOUNT_OPTION_H_

#include <string>
#include <string_view>

#include "brig/sandbox.h"

namespace brig::cli {

// Parses one -v value. The guest directory is the part after the last ':' (after dropping a
// final ":ro" or ":rw"), so the host path may hold ':'. Relative host paths are made absolute
// (the process's working directory). False with a sentence in *error: no ':', an empty part.
// The mount point's own rules are checked when the sandbox is made (brig::ValidateLimits).
bool ParseMountOption(std::string_view value, Mount* out, std::string* error);

}  // namespace brig::cli

#endif
