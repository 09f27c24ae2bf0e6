// How brig::Sessions stores a session's interpreter state in the store's state row (format
// "brig-session/1"), integers little-endian:
//   u64 page snapshot length | page snapshot (Sandbox::SavePages; may be empty)
//   | u64 portable length | portable snapshot (Sandbox::SavePortable; may be empty)
//   | JSON {"not_portable": {name: why}, "reseed": true (optional),
//           "nodes": [{"path": P, "mode": M, "named_pipe": true (optional),
//                      "xattrs": [[base64 name, base64 value], ...]}] (optional:
//           Sandbox::ListNodeExtras, what the file rows cannot hold)}
// Host-only (fork and snapshot export read it without a sandbox). Stored bytes are
// untrusted: decoding checks every length.
#ifndef BRIG_SESSION_STATE_FORMAT_H_
#define BRIG_SESSION_STATE_FORMAT_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/node_extras.h"

namespace brig::session {

inline constexpr std::string_view kStateFormat = "brig-session/1";

struct StoredState {
  std::string pages;
  std::string portable;
  // Names the portable snapshot could not hold, with why.
  std::map<std::string, std::string> not_portable;
  // A fork's state: the interpreter that restores it draws a new `random` stream before its
  // first execution, as Sandbox::Fork does (the fork must not repeat its source's numbers).
  bool reseed = false;
  // File modes, extended attributes and named pipes under /home/user and /tmp.
  std::vector<NodeExtras> nodes;
  // A reset's state: a new interpreter (no pages, no portable snapshot), the files keeping
  // `nodes`. A state with neither snapshot that does not say so is damaged.
  bool fresh = false;
};

// A reset's state (`fresh`) keeping `nodes`.
StoredState FreshState(std::vector<NodeExtras> nodes);

std::string EncodeState(const StoredState& state);
// One NodeExtras as the JSON of "nodes" above (also the snapshot format's, snapshot_format.h),
// and back: nullopt for JSON that NodeToJson could not have made (the path is not checked).
nlohmann::json NodeToJson(const NodeExtras& node);
std::optional<NodeExtras> NodeFromJson(const nlohmann::json& j);
// nullopt if `bytes` is not a well-formed state. Unknown JSON keys are ignored, and so is
// a malformed entry of "nodes" (the stored bytes are untrusted).
std::optional<StoredState> DecodeState(std::string_view bytes);

}  // namespace brig::session

#endif  // BRIG_SESSION_STATE_FORMAT_H_
