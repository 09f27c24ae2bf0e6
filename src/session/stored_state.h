// A session's interpreter state as the store holds it (store::SessionState: the state at
// snapshot_version, and a delta for each save since) read into the one state it describes.
// Each delta row holds an EncodeState (state_format.h) whose pages are a page delta
// (Sandbox::PagesSave::delta): the pages are applied in order (Sandbox::ApplyPageDeltas),
// and the delta's other fields (file attributes, reseed) replace the snapshot's. A delta
// carries no portable snapshot (Sessions writes deltas only when that comes after the save),
// so the state's portable snapshot stays the one of the version that held it.
//
// Host-only (fork and export read states without a guest). Stored bytes are untrusted: any
// part that does not decode or apply makes the whole state unreadable.
#ifndef BRIG_SESSION_STORED_STATE_H_
#define BRIG_SESSION_STORED_STATE_H_

#include <cstdint>
#include <string>

#include "brig/status.h"
#include "session/state_format.h"
#include "store/store.h"

namespace brig::session {

struct ReadState {
  StoredState state;
  // The version state.portable (and not_portable) is of: the state's version without
  // deltas; with deltas, the latest version that carried one (snapshot_version when none did).
  int64_t portable_version = 0;
  // What the store holds: the snapshot's bytes, and the deltas' count and bytes.
  size_t snapshot_bytes = 0;
  size_t delta_bytes = 0;
  int64_t delta_count = 0;
};

// REQUIRES: stored is not cleared(). Internal (naming the session) if the format is not
// kStateFormat or a part is unreadable.
StatusOr<ReadState> ReadStoredState(std::string_view thread_id, const store::SessionState& stored);

}  // namespace brig::session

#endif  // BRIG_SESSION_STORED_STATE_H_
