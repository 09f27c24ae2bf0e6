// Pieces both backends share: argument checks run before any database work, so that both
// refuse the same inputs with the same words. Internal to src/store.
#ifndef BRIG_STORE_STORE_INTERNAL_H_
#define BRIG_STORE_STORE_INTERNAL_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace brig::store::internal {

// "metadata must be a JSON object" (null is taken as {}).
Status CheckMetadata(const nlohmann::json& metadata);
// The metadata as stored: its JSON text, "{}" for null.
std::string MetadataText(const nlohmann::json& metadata);
// Path, size and content_type checks of one file to write.
Status CheckFileWrite(const FileWrite& file);
// Everything SaveExecution refuses before touching the database. On success, the content
// type of each upserted file (ContentTypeOf), in order.
StatusOr<std::vector<std::string>> CheckSave(std::string_view thread_id, int64_t expected_version,
                                             const std::vector<FileWrite>& files_upserted,
                                             const std::vector<std::string>& files_deleted);
// file.content_type, or the detected type when it is empty.
std::string ContentTypeOf(const FileWrite& file);
// The message for a version mismatch.
Status VersionConflict(std::string_view thread_id, int64_t stored, int64_t expected);
// Conflict: a save's expected_session did not hold (SaveExecution).
Status SessionChanged(std::string_view thread_id);
// FailedPrecondition: a StateWrite::delta over a cleared or missing state.
Status DeltaWithoutState(std::string_view thread_id);
Status SessionNotFound(std::string_view thread_id);
Status FileNotFound(std::string_view thread_id, std::string_view path);
// Parses a metadata column; a damaged value becomes an empty object rather than a failure.
nlohmann::json ParseMetadata(std::string_view text);
// InvalidArgument unless every quota set is >= 1 (and max_file_bytes <= kMaxFileBytes).
Status CheckQuotas(const SessionQuotas& quotas);
// The quotas column: a JSON object of the quotas set ({} for none), and back (a damaged or
// out-of-range value reads as no quota: the process's own then apply).
std::string QuotasText(const SessionQuotas& quotas);
SessionQuotas ParseQuotas(std::string_view text);
// The clock from options, or NowMicros.
std::function<int64_t()> ClockOf(const StoreOptions& options);

}  // namespace brig::store::internal

#endif  // BRIG_STORE_STORE_INTERNAL_H_
