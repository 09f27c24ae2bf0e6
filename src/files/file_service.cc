#include "files/file_service.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <unordered_set>

#include "files/glob.h"
#include "names/utf8.h"
#include "store/validation.h"

namespace brig::files {
namespace {

// `text` for an error message: at most ~40 bytes, line breaks shown as \n.
std::string Abbrev(std::string_view text) {
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < 40; ++i) {
    if (text[i] == '\n') {
      out += "\\n";
    } else if (text[i] == '\r') {
      out += "\\r";
    } else if (text[i] == '\t') {
      out += "\\t";
    } else {
      out += text[i];
    }
  }
  // Do not end inside a UTF-8 sequence.
  while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) out += text[i++];
  if (i < text.size()) out += "...";
  return "'" + out + "'";
}

// `text` safe to print in one line of an error: control bytes as \xNN, at most ~200 bytes.
std::string Printable(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size() && out.size() < 200; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= 200) out += "...";
  return out;
}

Status CheckIds(std::string_view thread_id, std::string_view path) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  return store::ValidateFilePath(path).WithPrefix("bad path '" + Printable(path) + "': ");
}

// Non-overlapping occurrences of `needle` in `hay`, left to right. REQUIRES: !needle.empty().
int64_t CountOccurrences(std::string_view hay, std::string_view needle) {
  int64_t n = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, at + needle.size())) ++n;
  return n;
}

std::string ReplaceAll(std::string_view hay, std::string_view needle, std::string_view with, bool only_first) {
  std::string out;
  size_t from = 0;
  for (size_t at = hay.find(needle); at != std::string_view::npos; at = hay.find(needle, from)) {
    out.append(hay.substr(from, at - from));
    out.append(with);
    from = at + needle.size();
    if (only_first) break;
  }
  out.append(hay.substr(from));
  return out;
}

}  // namespace

Status FileService::SaveUnderLock(std::string_view thread_id, const store::SessionQuotas& quotas,
                                  const store::FileWrite* file, std::string_view deleted) {
  StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, "");
  if (!listed.ok()) return listed.status();
  const std::vector<store::FileInfo>& files = listed.value();
  store::FileUsage before;
  for (const store::FileInfo& f : files) {
    if (f.is_directory()) continue;  // an empty directory of the guest, not a file
    before.file_count++;
    before.total_bytes += f.size;
  }
  std::vector<store::FileWrite> upserts;
  std::vector<std::string> deletes;
  if (file != nullptr) {
    const std::string& path = file->path;
    std::unordered_set<std::string_view> paths, dirs;
    int64_t old_size = -1;
    const std::string as_dir = path + "/";
    int64_t beneath = 0;
    for (const store::FileInfo& f : files) {
      (f.is_directory() ? dirs : paths).insert(f.path);
      if (f.path == path && !f.is_directory()) old_size = f.size;
      if (f.path.compare(0, as_dir.size(), as_dir) == 0) ++beneath;
    }
    if (beneath > 0 || dirs.count(path) > 0) {
      return Status::FailedPrecondition("cannot write " + path + ": it is a directory" +
                                        (beneath > 0 ? " holding " + std::to_string(beneath) + " entries" : ""));
    }
    for (size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      const std::string_view parent = std::string_view(path).substr(0, slash);
      if (paths.count(parent) > 0) {
        return Status::FailedPrecondition("cannot write " + path + ": " + std::string(parent) +
                                          " is a file, not a directory");
      }
      // An empty directory that now holds this file: its row goes.
      if (dirs.count(parent) > 0) deletes.emplace_back(parent);
    }
    store::FileUsage after = before;
    if (old_size < 0) {
      after.file_count++;
    } else {
      after.total_bytes -= old_size;
    }
    after.total_bytes += static_cast<int64_t>(file->content.size());
    if (Status s = sessions_.CheckFileSize(thread_id, quotas, path, static_cast<int64_t>(file->content.size()));
        !s.ok()) {
      return s.WithPrefix("cannot write " + path + ": ");
    }
    if (Status s = sessions_.CheckQuota(thread_id, quotas, before, after); !s.ok()) {
      return s.WithPrefix("cannot write " + path + ": ");
    }
    upserts.push_back(*file);
  } else {
    deletes.emplace_back(deleted);
  }
  StatusOr<int64_t> stored = store_.GetStateVersion(thread_id);  // not the state's bytes
  if (!stored.ok()) return stored.status();
  const int64_t version = stored.value();
  StatusOr<int64_t> saved = store_.SaveExecution(thread_id, version, std::nullopt, upserts, deletes);
  return saved.status();
}

StatusOr<store::FileData> FileService::Read(std::string_view thread_id, std::string_view path, int64_t offset,
                                            int64_t limit) {
  if (Status s = CheckIds(thread_id, path); !s.ok()) return s;
  if (offset < 0) return Status::InvalidArgument("offset must not be negative");
  if (StatusOr<store::SessionInfo> s = sessions_.Use(thread_id); !s.ok()) return s.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  StatusOr<store::FileData> data = store_.GetFile(thread_id, path, offset, limit);
  if (data.ok() && data.value().info.is_directory()) {
    return Status::FailedPrecondition(std::string(path) + " is a directory");
  }
  return data;
}

StatusOr<store::FileInfo> FileService::Write(std::string_view thread_id, std::string_view path, std::string content,
                                             std::string content_type) {
  if (Status s = CheckIds(thread_id, path); !s.ok()) return s;
  if (Status s = store::ValidateFileSize(path, static_cast<int64_t>(content.size())); !s.ok()) return s;
  StatusOr<store::SessionInfo> session = sessions_.GetOrCreate(thread_id);
  if (!session.ok()) return session.status();
  const store::SessionQuotas& quotas = session.value().quotas;
  StatusOr<std::unique_ptr<store::SessionLock>> lock =
      store_.LockSession(thread_id, sessions_.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kChange, /*lock_held=*/true);
  const store::FileWrite file{std::string(path), std::move(content), std::move(content_type)};
  // Under the lock only a writer that skips it can save in between: then check again, once.
  Status saved = SaveUnderLock(thread_id, quotas, &file, "");
  if (saved.IsConflict()) saved = SaveUnderLock(thread_id, quotas, &file, "");
  if (!saved.ok()) return saved;
  StatusOr<store::FileData> stored = store_.GetFile(thread_id, path, 0, 0);
  if (!stored.ok()) return stored.status();
  return stored.value().info;
}

StatusOr<int64_t> FileService::Edit(std::string_view thread_id, std::string_view path, std::string_view old_text,
                                    std::string_view new_text, bool replace_all) {
  if (Status s = CheckIds(thread_id, path); !s.ok()) return s;
  if (old_text.empty()) return Status::InvalidArgument("the text to replace is empty");
  if (old_text == new_text) return Status::InvalidArgument("the replacement is the same as the text to replace");
  StatusOr<store::SessionInfo> session = sessions_.Use(thread_id);
  if (!session.ok()) return session.status();
  StatusOr<std::unique_ptr<store::SessionLock>> lock =
      store_.LockSession(thread_id, sessions_.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kChange, /*lock_held=*/true);
  for (int attempt = 0;; ++attempt) {
    StatusOr<store::FileData> current = store_.GetFile(thread_id, path);
    if (!current.ok()) return current.status();
    const std::string& content = current.value().content;
    const int64_t count = CountOccurrences(content, old_text);
    if (count == 0) return Status::NotFound(Abbrev(old_text) + " does not occur in " + std::string(path));
    if (count > 1 && !replace_all) {
      return Status::FailedPrecondition(Abbrev(old_text) + " occurs " + std::to_string(count) + " times in " +
                                        std::string(path) +
                                        "; give more surrounding text to make it unique, or replace all");
    }
    store::FileWrite file{std::string(path), ReplaceAll(content, old_text, new_text, !replace_all), ""};
    if (Status s = store::ValidateFileSize(path, static_cast<int64_t>(file.content.size())); !s.ok()) return s;
    Status saved = SaveUnderLock(thread_id, session.value().quotas, &file, "");
    if (saved.ok()) return count;
    if (!saved.IsConflict() || attempt > 0) return saved;
  }
}

Status FileService::Delete(std::string_view thread_id, std::string_view path) {
  if (Status s = CheckIds(thread_id, path); !s.ok()) return s;
  StatusOr<store::SessionInfo> session = sessions_.Use(thread_id);
  if (!session.ok()) return session.status();
  StatusOr<std::unique_ptr<store::SessionLock>> lock =
      store_.LockSession(thread_id, sessions_.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kChange, /*lock_held=*/true);
  for (int attempt = 0;; ++attempt) {
    // SaveExecution ignores a missing file; the caller is told.
    if (StatusOr<store::FileData> f = store_.GetFile(thread_id, path, 0, 0); !f.ok()) return f.status();
    Status saved = SaveUnderLock(thread_id, session.value().quotas, nullptr, path);
    if (saved.ok() || !saved.IsConflict() || attempt > 0) return saved;
  }
}

StatusOr<std::vector<store::FileInfo>> FileService::List(std::string_view thread_id, std::string_view prefix) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  if (!prefix.empty() && prefix[0] != '/') {
    return Status::InvalidArgument("a path prefix must start with '/' (got '" + Printable(prefix) + "')");
  }
  if (prefix.size() > store::kMaxPathBytes || !utf8::IsValid(prefix)) {
    return Status::InvalidArgument("a path prefix must be valid UTF-8 of at most " +
                                   std::to_string(store::kMaxPathBytes) + " bytes");
  }
  if (StatusOr<store::SessionInfo> s = sessions_.Use(thread_id); !s.ok()) return s.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  return store_.ListFiles(thread_id, prefix);
}

StatusOr<std::vector<store::FileInfo>> FileService::Glob(std::string_view thread_id, std::string_view pattern) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  StatusOr<GlobPattern> glob = GlobPattern::Compile(pattern);
  if (!glob.ok()) return glob.status();
  if (StatusOr<store::SessionInfo> s = sessions_.Use(thread_id); !s.ok()) return s.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, glob.value().literal_prefix());
  if (!listed.ok()) return listed;
  std::vector<store::FileInfo> out;
  for (store::FileInfo& f : listed.value()) {
    if (glob.value().Matches(f.path)) out.push_back(std::move(f));
  }
  return out;
}

StatusOr<GrepResult> FileService::Grep(std::string_view thread_id, std::string_view pattern,
                                       const GrepOptions& options) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  StatusOr<GrepPattern> re = GrepPattern::Compile(pattern, options.case_insensitive);
  if (!re.ok()) return re.status();
  std::optional<GlobPattern> glob;
  if (!options.path_glob.empty()) {
    StatusOr<GlobPattern> g = GlobPattern::Compile(options.path_glob);
    if (!g.ok()) return g.status();
    glob = std::move(g.value());
  }
  if (StatusOr<store::SessionInfo> s = sessions_.Use(thread_id); !s.ok()) return s.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, glob ? glob->literal_prefix() : "");
  if (!listed.ok()) return listed.status();
  GrepResult result;
  GrepBudget budget(options);
  for (const store::FileInfo& f : listed.value()) {
    if (f.is_directory() || (glob && !glob->Matches(f.path))) continue;
    StatusOr<store::FileData> data = store_.GetFile(thread_id, f.path);
    if (data.status().IsNotFound()) continue;  // deleted since the listing
    if (!data.ok()) return data.status();
    ++result.files_searched;
    if (!GrepContent(re.value(), f.path, data.value().content, options, &budget, &result)) break;
  }
  return result;
}

}  // namespace brig::files
