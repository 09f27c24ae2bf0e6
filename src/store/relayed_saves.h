// Relayed saves: one process commits the executions' saves of several (StoreOptions::
// save_relay, brig/store.h).
//
// Why: processes writing one SQLite file take turns on its write lock, each holding it
// through its own flush, so their group commits never merge, and each commit by one process
// drops the page caches of the others. `brig serve` with two workers on SQLite did 3,012 /
// 3,404 durable executions/s at 475 / 425 µs of CPU each; the same load in one worker
// process 3,709 / 3,941/s at 365 / 348 µs (bench/RESULTS.md, stop 24). Handing every save
// to one process (the supervisor) gives that one writer while executions stay in several
// processes: ahead of two writing workers in 15 of 21 alternating pairs, p99 lower in 13 of
// 14 at 32 connections.
//
// A save travels as bytes (EncodeSave); the applying process runs Store::SaveExecutions with
// those it has (ApplyRelayedSaves: one group commit for all of them) and answers each with
// the new version or the error (EncodeSaveAnswer), which the relaying process returns as its
// own SaveExecution's outcome. Everything the relaying store does besides SaveExecution stays
// on its own connections.
//
// The bytes come from another process: DecodeSave checks every length against what is there
// (a malformed save is InvalidArgument, nothing is written); the values (thread_id, paths,
// sizes) are checked by SaveExecution as for any caller.
#ifndef BRIG_STORE_RELAYED_SAVES_H_
#define BRIG_STORE_RELAYED_SAVES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"
#include "store/store.h"

namespace brig::store {

// Saves larger than this are written by the relaying process itself (a second writer for a
// moment: correct, only not grouped), so that a relay never carries more than this.
inline constexpr size_t kMaxRelayedSave = size_t{32} << 20;

// The bytes of a save: u8 format (2) | u32 n, thread_id | u64 expected_version |
// u8 has_expected_session [| u64 created_at | u64 expires_at] | u8 has_state
// [| u32 n, format | u32 n, guest_build_id | u8 flags (1 delta, 2 fallback) | u64 n, fallback
// if flagged | u64 n, snapshot] | u32 count, files (u32 n, path | u32 n, content_type | u64 n,
// content) | u32 count, deleted (u32 n, path). Little-endian; nothing after the last field.
std::string EncodeSave(std::string_view thread_id, int64_t expected_version, const std::optional<StateWrite>& state,
                       const std::vector<FileWrite>& files_upserted, const std::vector<std::string>& files_deleted,
                       const std::optional<ExpectedSession>& expected_session = std::nullopt);
// InvalidArgument for bytes that are not one whole save of this format.
StatusOr<ExecutionSave> DecodeSave(std::string_view bytes);

// A save's outcome: u8 0 | u64 version, or u8 StatusCodeByte | message.
std::string EncodeSaveAnswer(const StatusOr<int64_t>& outcome);
// Internal for bytes that are not an answer.
StatusOr<int64_t> DecodeSaveAnswer(std::string_view bytes);

// Applies saves' bytes to `store` (SaveExecutions: they commit together) and returns each
// one's answer bytes, in order; InvalidArgument (and nothing written, no answer) for bytes
// that are not a save.
std::vector<StatusOr<std::string>> ApplyRelayedSaves(Store& store, const std::vector<std::string_view>& saves);

// The store `inner` with its SaveExecution handed to `relay` (up to kMaxRelayedSave bytes):
// everything else goes to `inner`. `relay` takes a save's bytes and returns its answer's
// bytes (ApplyRelayedSaves', in the process that applies it); it is called on the saving
// thread, from several threads at once.
std::unique_ptr<Store> RelaySaves(std::unique_ptr<Store> inner,
                                  std::function<std::string(std::string_view)> relay);

}  // namespace brig::store

#endif  // BRIG_STORE_RELAYED_SAVES_H_
