// The bytes of an exported session (Sessions::ExportSnapshot / ImportSnapshot): what one
// brig writes and another, on any machine, reads back. Integers little-endian:
//
//   offset 0   magic "BRIGSNAP"
//          8   u32 format version (kSnapshotVersion)
//         12   u32 header length H (1..kMaxHeaderBytes)
//         16   header: a JSON object (UTF-8) with exactly these fields:
//                "thread_id"       the session exported (a thread_id)
//                "exported_at"     microseconds since the Unix epoch
//                "metadata"        the session's metadata (an object)
//                "has_state"       whether it has an interpreter state (false: never ran,
//                                  or reset); without one the next three are 0, "", ""
//                "guest_build_id", "image_digest"
//                                  what the page snapshot is tied to ("" without one)
//                "pages_bytes", "portable_bytes"
//                                  lengths of the page and portable snapshots (either may be 0)
//                "not_portable"    {name: why} the portable snapshot could not hold
//                "files"           [{"path", "content_type", "size"}...] in path order; an
//                                  empty directory is an entry of type inode/directory, size 0
//                "nodes"           (version 2) file modes, extended attributes and named
//                                  pipes (brig/node_extras.h), as state_format.h's "nodes"; at
//                                  most one per path, each under /home/user or /tmp; also
//                                  without an interpreter state (a reset session's files)
//      16+H    page snapshot | portable snapshot | each file's content, in "files" order
//   end - 32   SHA-256 of every byte before it
//
// The bytes come from anywhere: decoding checks every field before anything is used, and
// says what is wrong. A newer format version is refused by name (upgrade brig); an older
// one is read as it was written. Host-only (no guest).
#ifndef BRIG_SESSION_SNAPSHOT_FORMAT_H_
#define BRIG_SESSION_SNAPSHOT_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/node_extras.h"
#include "brig/status.h"

namespace brig::session {

inline constexpr std::string_view kSnapshotMagic = "BRIGSNAP";
// 2: "nodes" (version 1, without it, is still read).
inline constexpr uint32_t kSnapshotVersion = 2;
// The header (file list, metadata, names): bounded so that parsing a hostile one costs a
// bounded amount of memory.
inline constexpr uint32_t kMaxHeaderBytes = 32u << 20;
// The page and the portable snapshot together: far above what a session's memory limit
// (at most 4 GiB of guest memory, compressed) yields in practice.
inline constexpr uint64_t kMaxStateBytes = uint64_t{1} << 30;

struct SnapshotFile {
  std::string path;
  std::string content_type;  // kDirectoryType: an empty directory, no content
  std::string content;
};

struct SessionSnapshot {
  std::string thread_id;
  int64_t exported_at = 0;
  nlohmann::json metadata = nlohmann::json::object();
  bool has_state = false;
  std::string guest_build_id;  // of the page snapshot; empty without one
  std::string image_digest;
  std::string pages;     // Sandbox::SavePages bytes, or empty
  std::string portable;  // Sandbox::SavePortable bytes, or empty
  std::map<std::string, std::string> not_portable;
  std::vector<SnapshotFile> files;  // ordered by path
  std::vector<NodeExtras> nodes;    // ordered by path
};

// What a decoded snapshot may hold at most (the importing side's quotas).
struct SnapshotLimits {
  int64_t max_files = 1000;                    // regular files
  int64_t max_bytes = int64_t{200} << 20;      // their sizes summed
  int64_t max_directories = 1000;              // empty-directory entries
  int64_t max_nodes = 2000;                    // "nodes" entries
};

// REQUIRES: `snapshot` holds what DecodeSnapshot accepts (paths valid and unique, ...).
std::string EncodeSnapshot(const SessionSnapshot& snapshot);

// The snapshot `bytes` hold. InvalidArgument (the message says what is wrong: not a brig
// snapshot, a newer format version, checksum mismatch (damaged or truncated), a bad field,
// lengths that do not add up); ResourceExhausted when its files exceed `limits` (the
// message names the quota).
StatusOr<SessionSnapshot> DecodeSnapshot(std::string_view bytes, const SnapshotLimits& limits);

}  // namespace brig::session

#endif  // BRIG_SESSION_SNAPSHOT_FORMAT_H_
