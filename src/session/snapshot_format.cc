#include "session/snapshot_format.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include "brig/file_info.h"
#include "names/utf8.h"
#include "session/state_format.h"
#include "store/validation.h"
#include "util/hmac_sha256.h"
#include "util/little_endian.h"

namespace brig::session {
namespace {

constexpr size_t kFixedBytes = 16;     // magic, version, header length
constexpr size_t kChecksumBytes = 32;  // SHA-256
constexpr size_t kMaxBuildIdBytes = 256;
constexpr size_t kMaxContentTypeBytes = 255;

Status Bad(const std::string& why) { return Status::InvalidArgument("damaged snapshot: " + why); }

// Printable ASCII, no spaces: what a guest build id or a digest is made of; shown in messages.
bool IsToken(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// A content type as the store takes it, and printable: UTF-8 without control characters.
bool IsContentType(std::string_view s) {
  if (s.empty() || s.size() > kMaxContentTypeBytes || !utf8::IsValid(s)) return false;
  for (size_t i = 0; i < s.size();) {
    const char32_t cp = utf8::Decode(s, &i);
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;
  }
  return true;
}

// The one field `key` of `h` if it has type `type` (a json value_t predicate), else null.
template <typename Pred>
const nlohmann::json* Field(const nlohmann::json& h, const char* key, Pred is_type) {
  auto it = h.find(key);
  if (it == h.end() || !is_type(*it)) return nullptr;
  return &*it;
}

}  // namespace

std::string EncodeSnapshot(const SessionSnapshot& s) {
  nlohmann::json files = nlohmann::json::array();
  for (const SnapshotFile& f : s.files) {
    files.push_back({{"path", f.path}, {"content_type", f.content_type}, {"size", f.content.size()}});
  }
  nlohmann::json header = {{"thread_id", s.thread_id},
                                 {"exported_at", s.exported_at},
                                 {"metadata", s.metadata.is_object() ? s.metadata : nlohmann::json::object()},
                                 {"has_state", s.has_state},
                                 {"guest_build_id", s.guest_build_id},
                                 {"image_digest", s.image_digest},
                                 {"pages_bytes", s.pages.size()},
                                 {"portable_bytes", s.portable.size()},
                                 {"not_portable", s.not_portable},
                                 {"files", std::move(files)}};
  nlohmann::json& nodes = header["nodes"] = nlohmann::json::array();
  for (const NodeExtras& n : s.nodes) nodes.push_back(NodeToJson(n));
  // Names the guest could not save portably are the guest's bytes, not always UTF-8.
  const std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(kSnapshotMagic);
  AppendLe32(&out, kSnapshotVersion);
  AppendLe32(&out, static_cast<uint32_t>(text.size()));
  out += text;
  out += s.pages;
  out += s.portable;
  for (const SnapshotFile& f : s.files) out += f.content;
  const util::Sha256Digest sum = util::Sha256(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

StatusOr<SessionSnapshot> DecodeSnapshot(std::string_view bytes, const SnapshotLimits& limits) {
  if (bytes.size() < kSnapshotMagic.size() || bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return Status::InvalidArgument("not a brig session snapshot (it does not start with \"BRIGSNAP\")");
  }
  if (bytes.size() < kFixedBytes + kChecksumBytes) return Bad("truncated (" + std::to_string(bytes.size()) + " bytes)");
  LeReader r(bytes.substr(kSnapshotMagic.size(), kFixedBytes - kSnapshotMagic.size()));
  uint32_t version = 0, header_len = 0;
  if (!r.U32(&version) || !r.U32(&header_len)) return Bad("truncated");
  if (version > kSnapshotVersion) {
    return Status::InvalidArgument("the snapshot has format version " + std::to_string(version) +
                                   ", newer than this brig reads (" + std::to_string(kSnapshotVersion) +
                                   "): import it with a newer brig");
  }
  if (version == 0) return Bad("format version 0");
  // The checksum first: every later message is about a snapshot that arrived whole.
  const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
  const util::Sha256Digest sum = util::Sha256(body);
  if (std::memcmp(sum.data(), bytes.data() + body.size(), kChecksumBytes) != 0) {
    return Bad("its SHA-256 checksum does not match: it was truncated or changed");
  }
  if (header_len == 0 || header_len > kMaxHeaderBytes || header_len > body.size() - kFixedBytes) {
    return Bad("header length " + std::to_string(header_len));
  }
  const std::string_view header_text = body.substr(kFixedBytes, header_len);
  if (!utf8::IsValid(header_text)) return Bad("the header is not UTF-8");
  const nlohmann::json h = nlohmann::json::parse(header_text, nullptr, /*allow_exceptions=*/false);
  if (!h.is_object()) return Bad("the header is not a JSON object");
  static const std::set<std::string> kKeys = {"thread_id",    "exported_at",    "metadata",     "has_state",
                                              "guest_build_id", "image_digest", "pages_bytes", "portable_bytes",
                                              "not_portable", "files"};
  for (const auto& [key, value] : h.items()) {
    if (!kKeys.count(key) && !(version >= 2 && key == "nodes")) return Bad("unknown header field '" + key + "'");
  }
  auto is_string = [](const nlohmann::json& j) { return j.is_string(); };
  auto is_count = [](const nlohmann::json& j) { return j.is_number_unsigned(); };
  const nlohmann::json* thread_id = Field(h, "thread_id", is_string);
  const nlohmann::json* exported_at = Field(h, "exported_at", [](const nlohmann::json& j) { return j.is_number_integer(); });
  const nlohmann::json* metadata = Field(h, "metadata", [](const nlohmann::json& j) { return j.is_object(); });
  const nlohmann::json* has_state = Field(h, "has_state", [](const nlohmann::json& j) { return j.is_boolean(); });
  const nlohmann::json* build = Field(h, "guest_build_id", is_string);
  const nlohmann::json* digest = Field(h, "image_digest", is_string);
  const nlohmann::json* pages_bytes = Field(h, "pages_bytes", is_count);
  const nlohmann::json* portable_bytes = Field(h, "portable_bytes", is_count);
  const nlohmann::json* not_portable = Field(h, "not_portable", [](const nlohmann::json& j) { return j.is_object(); });
  const nlohmann::json* files = Field(h, "files", [](const nlohmann::json& j) { return j.is_array(); });
  const std::pair<const char*, const nlohmann::json*> fields[] = {
      {"thread_id", thread_id},           {"exported_at", exported_at},   {"metadata", metadata},
      {"has_state", has_state},           {"guest_build_id", build},      {"image_digest", digest},
      {"pages_bytes", pages_bytes},       {"portable_bytes", portable_bytes}, {"not_portable", not_portable},
      {"files", files}};
  for (const auto& [name, field] : fields) {
    if (field == nullptr) return Bad("header field '" + std::string(name) + "' is missing or of the wrong type");
  }
  const nlohmann::json* nodes = Field(h, "nodes", [](const nlohmann::json& j) { return j.is_array(); });
  if (version >= 2 && nodes == nullptr) return Bad("header field 'nodes' is missing or of the wrong type");

  SessionSnapshot s;
  s.thread_id = thread_id->get<std::string>();
  if (Status v = store::ValidateThreadId(s.thread_id); !v.ok()) return Bad(v.message());
  if (exported_at->is_number_unsigned() && exported_at->get<uint64_t>() > uint64_t{INT64_MAX}) {
    return Bad("exported_at is out of range");
  }
  s.exported_at = exported_at->get<int64_t>();
  s.metadata = *metadata;
  s.has_state = has_state->get<bool>();
  s.guest_build_id = build->get<std::string>();
  s.image_digest = digest->get<std::string>();
  const uint64_t pages_len = pages_bytes->get<uint64_t>();
  const uint64_t portable_len = portable_bytes->get<uint64_t>();
  if (pages_len > kMaxStateBytes || portable_len > kMaxStateBytes || pages_len + portable_len > kMaxStateBytes) {
    return Bad("an interpreter state of more than " + std::to_string(kMaxStateBytes) + " bytes");
  }
  for (const std::string* id : {&s.guest_build_id, &s.image_digest}) {
    if (id->size() > kMaxBuildIdBytes || !IsToken(*id)) return Bad("guest_build_id or image_digest is malformed");
  }
  if ((pages_len > 0) != !s.guest_build_id.empty() || (pages_len > 0) != !s.image_digest.empty()) {
    return Bad("guest_build_id and image_digest must be given exactly when there is a page snapshot");
  }
  for (const auto& [name, why] : not_portable->items()) {
    if (!why.is_string()) return Bad("not_portable['" + name + "'] is not a string");
    s.not_portable[name] = why.get<std::string>();
  }
  if (!s.has_state && (pages_len > 0 || portable_len > 0 || !s.not_portable.empty())) {
    return Bad("a snapshot without interpreter state holds one");
  }
  if (s.has_state && pages_len == 0 && portable_len == 0) {
    return Bad("an interpreter state with neither a page nor a portable snapshot");
  }

  // The files: each checked by the rules the store and the guest apply, then all against
  // the quotas, then the tree they make (no file where a directory must be).
  struct Entry {
    std::string path, type;
    uint64_t size;
  };
  std::vector<Entry> entries;
  std::set<std::string> paths, regular;
  int64_t file_count = 0, dir_count = 0;
  uint64_t total = 0;
  for (const nlohmann::json& f : *files) {
    if (!f.is_object() || f.size() != 3) return Bad("a file entry is not {path, content_type, size}");
    const nlohmann::json* path = Field(f, "path", is_string);
    const nlohmann::json* type = Field(f, "content_type", is_string);
    const nlohmann::json* size = Field(f, "size", is_count);
    if (!path || !type || !size) return Bad("a file entry is not {path, content_type, size}");
    Entry e{path->get<std::string>(), type->get<std::string>(), size->get<uint64_t>()};
    if (Status v = store::ValidateFilePath(e.path); !v.ok()) return Bad(v.message());
    if (!IsContentType(e.type)) return Bad("the content type of " + e.path + " is malformed");
    if (!paths.insert(e.path).second) return Bad(e.path + " appears twice");
    if (e.type == kDirectoryType) {
      if (e.size != 0) return Bad("the directory " + e.path + " has content");
      ++dir_count;
    } else {
      if (e.size > static_cast<uint64_t>(kMaxFileBytes)) {
        return Status::ResourceExhausted("the snapshot's file " + e.path + " is " + std::to_string(e.size) +
                                         " bytes; the limit per file is " + std::to_string(kMaxFileBytes) +
                                         " bytes (20 MiB)");
      }
      ++file_count;
      total += e.size;  // at most (files in a 32 MiB header) x 20 MiB: no overflow
      regular.insert(e.path);
    }
    if (file_count > limits.max_files) {
      return Status::ResourceExhausted("the snapshot holds more than " + std::to_string(limits.max_files) +
                                       " files, the quota of a session here");
    }
    if (dir_count > limits.max_directories) {
      return Status::ResourceExhausted("the snapshot holds more than " + std::to_string(limits.max_directories) +
                                       " empty directories");
    }
    entries.push_back(std::move(e));
  }
  if (total > static_cast<uint64_t>(limits.max_bytes)) {
    return Status::ResourceExhausted("the snapshot's files hold " + std::to_string(total) + " bytes, over the quota of " +
                                     std::to_string(limits.max_bytes) + " bytes of a session here");
  }
  for (const Entry& e : entries) {
    for (size_t slash = e.path.find('/', 1); slash != std::string::npos; slash = e.path.find('/', slash + 1)) {
      if (regular.count(e.path.substr(0, slash))) {
        return Bad(e.path + " is beneath " + e.path.substr(0, slash) + ", which is a file");
      }
    }
  }
  // Everything after the header is accounted for by the sizes the header gives.
  const uint64_t after_header = body.size() - kFixedBytes - header_len;
  if (pages_len + portable_len + total != after_header) {
    return Bad("the header's sizes add up to " + std::to_string(pages_len + portable_len + total) +
               " bytes, but " + std::to_string(after_header) + " follow it");
  }
  std::string_view rest = body.substr(kFixedBytes + header_len);
  s.pages.assign(rest.substr(0, pages_len));
  rest.remove_prefix(pages_len);
  s.portable.assign(rest.substr(0, portable_len));
  rest.remove_prefix(portable_len);
  for (Entry& e : entries) {
    const bool dir = e.type == kDirectoryType;
    s.files.push_back({std::move(e.path), std::move(e.type), std::string(rest.substr(0, dir ? 0 : e.size))});
    rest.remove_prefix(dir ? 0 : e.size);
  }
  if (nodes != nullptr) {
    if (static_cast<int64_t>(nodes->size()) > limits.max_nodes) {
      return Status::ResourceExhausted("the snapshot gives attributes for more than " + std::to_string(limits.max_nodes) +
                                       " files");
    }
    std::set<std::string> seen;
    for (const nlohmann::json& j : *nodes) {
      std::optional<NodeExtras> n = NodeFromJson(j);
      if (!n) return Bad("a nodes entry is not {path, mode[, named_pipe][, xattrs]}");
      if (Status v = store::ValidateFilePath(n->path); !v.ok()) return Bad(v.message());
      if (!seen.insert(n->path).second) return Bad("the attributes of " + n->path + " appear twice");
      if (n->named_pipe && paths.count(n->path)) return Bad(n->path + " is both a file and a named pipe");
      s.nodes.push_back(std::move(*n));
    }
  }
  return s;
}

}  // namespace brig::session
