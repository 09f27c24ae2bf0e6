#include "store/store.h"

#include "store/relayed_saves.h"

#include <limits>

#include <set>

#include "names/utf8.h"
#include "store/content_type.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store_internal.h"

namespace brig {

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace brig

namespace brig::store {

uint64_t ThreadIdHash(std::string_view thread_id) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : thread_id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

StatusOr<std::unique_ptr<Store>> OpenBackend(std::string_view url, const StoreOptions& options) {
  auto starts = [&](std::string_view p) { return url.substr(0, p.size()) == p; };
  if (starts("sqlite://")) return OpenSqliteStore(url.substr(9), options);
  if (starts("sqlite:")) return OpenSqliteStore(url.substr(7), options);
  if (starts("postgresql://") || starts("postgres://")) return OpenPostgresStore(url, options);
  const size_t colon = url.find(':');
  return Status::InvalidArgument(
      "unknown store URL scheme '" + std::string(url.substr(0, colon == std::string_view::npos ? url.size() : colon)) +
      "': use sqlite:PATH or postgresql://...");
}

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url, const StoreOptions& options) {
  StatusOr<std::unique_ptr<Store>> opened = OpenBackend(url, options);
  if (!opened.ok() || !options.save_relay) return opened;
  return RelaySaves(std::move(opened.value()), options.save_relay);
}

namespace internal {

Status CheckMetadata(const nlohmann::json& metadata) {
  if (!metadata.is_object() && !metadata.is_null()) {
    return Status::InvalidArgument("session metadata must be a JSON object");
  }
  return Status::Ok();
}

std::string MetadataText(const nlohmann::json& metadata) {
  return metadata.is_null() ? "{}" : metadata.dump();
}

Status CheckFileWrite(const FileWrite& file) {
  if (Status s = ValidateFilePath(file.path); !s.ok()) return s;
  if (Status s = ValidateFileSize(file.path, static_cast<int64_t>(file.content.size())); !s.ok()) return s;
  if (file.content_type.size() > 255 || !utf8::IsValid(file.content_type) ||
      file.content_type.find('\0') != std::string::npos) {
    return Status::InvalidArgument("content type of '" + file.path + "' is not a short UTF-8 string");
  }
  if (file.content_type == kDirectoryType && !file.content.empty()) {
    return Status::InvalidArgument("'" + file.path + "' has content but the directory type " +
                                   std::string(kDirectoryType));
  }
  return Status::Ok();
}

StatusOr<std::vector<std::string>> CheckSave(std::string_view thread_id, int64_t expected_version,
                                             const std::vector<FileWrite>& files_upserted,
                                             const std::vector<std::string>& files_deleted) {
  if (Status s = ValidateThreadId(thread_id); !s.ok()) return s;
  if (expected_version < 0) return Status::InvalidArgument("expected_version is negative");
  std::set<std::string_view> seen;
  for (const FileWrite& f : files_upserted) {
    if (Status s = CheckFileWrite(f); !s.ok()) return s;
    if (!seen.insert(f.path).second) {
      return Status::InvalidArgument("file '" + f.path + "' appears twice in one save");
    }
  }
  for (const std::string& p : files_deleted) {
    if (Status s = ValidateFilePath(p); !s.ok()) return s;
    if (!seen.insert(p).second) {
      return Status::InvalidArgument("file '" + p + "' appears twice in one save");
    }
  }
  std::vector<std::string> types;
  types.reserve(files_upserted.size());
  for (const FileWrite& f : files_upserted) types.push_back(ContentTypeOf(f));
  return types;
}

std::string ContentTypeOf(const FileWrite& file) {
  return file.content_type.empty() ? DetectContentType(file.path, file.content) : file.content_type;
}

Status VersionConflict(std::string_view thread_id, int64_t stored, int64_t expected) {
  return Status::Conflict("session '" + std::string(thread_id) + "' is at state version " +
                          std::to_string(stored) + ", not " + std::to_string(expected) +
                          ": another execution saved first; nothing was saved");
}

Status SessionChanged(std::string_view thread_id) {
  return Status::Conflict("session '" + std::string(thread_id) +
                          "' was deleted, made again or given an earlier expiry since this copy of it was loaded;"
                          " nothing was saved");
}

Status DeltaWithoutState(std::string_view thread_id) {
  return Status::FailedPrecondition("session '" + std::string(thread_id) +
                                    "' has no stored state for a state delta to apply to; nothing was saved");
}

Status SessionNotFound(std::string_view thread_id) {
  return Status::NotFound("session '" + std::string(thread_id) + "' does not exist");
}

Status FileNotFound(std::string_view thread_id, std::string_view path) {
  return Status::NotFound("file '" + std::string(path) + "' does not exist in session '" +
                          std::string(thread_id) + "'");
}

nlohmann::json ParseMetadata(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : nlohmann::json::object();
}

Status CheckQuotas(const SessionQuotas& q) {
  auto check = [](const char* name, const std::optional<int64_t>& v, int64_t max) -> Status {
    if (v && (*v < 1 || *v > max)) {
      return Status::InvalidArgument(std::string("quota ") + name + " must be 1.." + std::to_string(max) + ", not " +
                                     std::to_string(*v));
    }
    return Status::Ok();
  };
  constexpr int64_t kAny = std::numeric_limits<int64_t>::max();
  if (Status s = check("max_files", q.max_files, kAny); !s.ok()) return s;
  if (Status s = check("max_total_bytes", q.max_total_bytes, kAny); !s.ok()) return s;
  return check("max_file_bytes", q.max_file_bytes, kMaxFileBytes);
}

std::string QuotasText(const SessionQuotas& q) {
  nlohmann::json j = nlohmann::json::object();
  if (q.max_files) j["max_files"] = *q.max_files;
  if (q.max_total_bytes) j["max_total_bytes"] = *q.max_total_bytes;
  if (q.max_file_bytes) j["max_file_bytes"] = *q.max_file_bytes;
  return j.dump();
}

SessionQuotas ParseQuotas(std::string_view text) {
  SessionQuotas q;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return q;
  auto get = [&](const char* name, std::optional<int64_t>* out) {
    auto it = j.find(name);
    if (it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 1) *out = it->get<int64_t>();
  };
  get("max_files", &q.max_files);
  get("max_total_bytes", &q.max_total_bytes);
  get("max_file_bytes", &q.max_file_bytes);
  if (q.max_file_bytes && *q.max_file_bytes > kMaxFileBytes) q.max_file_bytes.reset();
  return q;
}

std::function<int64_t()> ClockOf(const StoreOptions& options) {
  return options.clock ? options.clock : std::function<int64_t()>(NowMicros);
}

}  // namespace internal
}  // namespace brig::store
