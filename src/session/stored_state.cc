#include "session/stored_state.h"

#include <vector>

#include "brig/sandbox.h"

namespace brig::session {

StatusOr<ReadState> ReadStoredState(std::string_view thread_id, const store::SessionState& stored) {
  auto unreadable = [&](const std::string& why) {
    return Status::Internal("the stored state of " + std::string(thread_id) + " is unreadable (" + why + ")");
  };
  if (stored.format != kStateFormat) return unreadable("format '" + stored.format + "'");
  std::optional<StoredState> base = DecodeState(stored.snapshot);
  if (!base) return unreadable("its snapshot does not decode");
  ReadState out;
  out.snapshot_bytes = stored.snapshot.size();
  if (stored.deltas.empty()) {
    // Saves since the snapshot without a delta kept the interpreter state as it was.
    out.portable_version = stored.version;
    out.state = std::move(*base);
    return out;
  }
  if (base->pages.empty() || base->fresh) return unreadable("deltas over a state without a page snapshot");
  std::vector<StoredState> deltas;
  std::vector<std::string_view> pages;
  deltas.reserve(stored.deltas.size());
  for (const auto& [version, bytes] : stored.deltas) {
    std::optional<StoredState> d = DecodeState(bytes);
    if (!d || d->pages.empty() || d->fresh) return unreadable("the delta of version " + std::to_string(version));
    out.delta_bytes += bytes.size();
    deltas.push_back(std::move(*d));
  }
  for (const StoredState& d : deltas) pages.push_back(d.pages);
  StatusOr<std::string> applied = Sandbox::ApplyPageDeltas(base->pages, pages);
  if (!applied.ok()) return unreadable(applied.status().message());
  out.delta_count = static_cast<int64_t>(deltas.size());
  out.portable_version = stored.snapshot_version;
  StoredState& latest = deltas.back();
  out.state.pages = std::move(applied.value());
  out.state.portable = std::move(base->portable);
  out.state.not_portable = std::move(base->not_portable);
  for (size_t i = 0; i < deltas.size(); i++) {
    if (deltas[i].portable.empty()) continue;
    out.state.portable = std::move(deltas[i].portable);
    out.state.not_portable = std::move(deltas[i].not_portable);
    out.portable_version = stored.deltas[i].first;
  }
  out.state.reseed = latest.reseed;
  out.state.nodes = std::move(latest.nodes);
  return out;
}

}  // namespace brig::session
