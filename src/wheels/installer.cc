#include "wheels/installer.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "store/validation.h"

namespace brig::wheels {
namespace {

const std::string kSite = std::string(kSitePackages) + "/";

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The .dist-info directories under site-packages that hold METADATA or RECORD: dist_info ->
// the listed files' names under it.
std::map<std::string, std::set<std::string>> DistInfos(const std::vector<store::FileInfo>& files) {
  std::map<std::string, std::set<std::string>> out;
  for (const store::FileInfo& f : files) {
    if (f.is_directory() || f.path.compare(0, kSite.size(), kSite) != 0) continue;
    const std::string rest = f.path.substr(kSite.size());
    const size_t slash = rest.find('/');
    if (slash == std::string::npos || rest.find('/', slash + 1) != std::string::npos) continue;
    const std::string dir = rest.substr(0, slash);
    const std::string leaf = rest.substr(slash + 1);
    if (EndsWith(dir, ".dist-info") && (leaf == "METADATA" || leaf == "RECORD")) out[dir].insert(leaf);
  }
  return out;
}

// Regular files -> their sizes.
std::unordered_map<std::string, int64_t> RegularFileSizes(const std::vector<store::FileInfo>& files) {
  std::unordered_map<std::string, int64_t> sizes;
  for (const store::FileInfo& f : files) {
    if (!f.is_directory()) sizes[f.path] = f.size;
  }
  return sizes;
}

// The distribution name a dist-info directory is for ("my_pkg-1.0.dist-info" -> "my_pkg").
std::string DirName(std::string_view dist_info) {
  std::string_view stem = dist_info.substr(0, dist_info.size() - 10);
  return std::string(stem.substr(0, stem.find('-')));
}

}  // namespace

ZipLimits Installer::LimitsFor(const store::SessionQuotas& own) const {
  const store::SessionQuotas q = sessions_.EffectiveQuotas(own);
  ZipLimits limits;
  // The quota check under the lock has the last word; these stop a wheel that could never
  // fit before it is inflated.
  limits.max_entries = std::min<int64_t>(limits.max_entries, *q.max_files + 1000);
  limits.max_entry_bytes = *q.max_file_bytes;
  limits.max_total_bytes = *q.max_total_bytes;
  return limits;
}

StatusOr<InstallResult> Installer::Install(std::string_view thread_id, std::string_view bytes,
                                           std::string_view filename) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  if (static_cast<int64_t>(bytes.size()) > kMaxWheelBytes) {
    return Status::ResourceExhausted("the wheel is " + std::to_string(bytes.size()) + " bytes, more than " +
                                     std::to_string(kMaxWheelBytes));
  }
  // The wheel is checked before the session is made: a refused one leaves no empty session.
  store::SessionQuotas quotas;  // a new session's: the options' own
  StatusOr<store::SessionInfo> existing = sessions_.Get(thread_id);
  if (existing.ok()) {
    quotas = existing.value().quotas;
  } else if (!existing.status().IsNotFound()) {
    return existing.status();
  }
  StatusOr<Wheel> wheel = ParseWheel(bytes, filename, LimitsFor(quotas));
  if (!wheel.ok()) return wheel.status();
  StatusOr<store::SessionInfo> session = sessions_.GetOrCreate(thread_id);
  if (!session.ok()) return session.status();
  return InstallParsed(thread_id, session.value(), wheel.value());
}

StatusOr<InstallResult> Installer::InstallFile(std::string_view thread_id, std::string_view path) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  if (Status s = store::ValidateFilePath(path); !s.ok()) return s;
  StatusOr<store::SessionInfo> session = sessions_.Use(thread_id);
  if (!session.ok()) return session.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  StatusOr<store::FileData> data = store_.GetFile(thread_id, path);
  if (!data.ok()) return data.status();
  if (data.value().info.is_directory()) return Status::FailedPrecondition(std::string(path) + " is a directory");
  const std::string_view name = path.substr(path.rfind('/') + 1);
  StatusOr<Wheel> wheel = ParseWheel(data.value().content, name, LimitsFor(session.value().quotas));
  if (!wheel.ok()) return wheel.status();
  return InstallParsed(thread_id, session.value(), wheel.value());
}

StatusOr<InstallResult> Installer::InstallParsed(std::string_view thread_id, const store::SessionInfo& session,
                                                 const Wheel& wheel) {
  StatusOr<std::unique_ptr<store::SessionLock>> lock =
      store_.LockSession(thread_id, sessions_.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kChange, /*lock_held=*/true);
  // Under the lock only a writer that skips it can save in between: then check again, once.
  StatusOr<InstallResult> r = SaveUnderLock(thread_id, session.quotas, wheel);
  if (!r.ok() && r.status().IsConflict()) r = SaveUnderLock(thread_id, session.quotas, wheel);
  return r;
}

StatusOr<InstallResult> Installer::SaveUnderLock(std::string_view thread_id, const store::SessionQuotas& quotas,
                                                 const Wheel& wheel) {
  StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, "");
  if (!listed.ok()) return listed.status();
  const std::vector<store::FileInfo>& files = listed.value();
  std::unordered_map<std::string, int64_t> sizes;  // regular files -> size
  std::set<std::string> dirs;                      // empty-directory rows
  store::FileUsage before;
  for (const store::FileInfo& f : files) {
    if (f.is_directory()) {
      dirs.insert(f.path);
      continue;
    }
    sizes[f.path] = f.size;
    before.file_count++;
    before.total_bytes += f.size;
  }

  InstallResult result;
  std::set<std::string> deletes;
  // The same distribution already installed (any version): its files go.
  const std::string normal = NormalizeName(wheel.name);
  for (auto& [dist_info, leaves] : DistInfos(files)) {
    if (NormalizeName(DirName(dist_info)) != normal) continue;
    StatusOr<InstalledPackage> old = Describe(thread_id, dist_info);
    if (!old.ok()) return old.status();
    if (result.replaced_version.empty()) result.replaced_version = old.value().version;
    deletes.merge(OwnedFiles(thread_id, dist_info, sizes));
  }

  std::vector<store::FileWrite> upserts;
  std::set<std::string> new_paths;
  for (const WheelFile& f : wheel.files) {
    const std::string full = kSite + f.path;
    if (Status s = store::ValidateFilePath(full); !s.ok()) {
      return Status::InvalidArgument("wheel refused: '" + f.path + "' cannot be a file of the session: " + s.message());
    }
    if (Status s = sessions_.CheckFileSize(thread_id, quotas, full, static_cast<int64_t>(f.content.size())); !s.ok()) {
      return s.WithPrefix("cannot install " + wheel.dist_info + ": ");
    }
    new_paths.insert(full);
    deletes.erase(full);
    upserts.push_back({full, f.content, ""});
  }
  // The tree: no new file where a directory is, none beneath a file (of the wheel or the
  // session's), and an empty-directory row that now holds a file goes.
  std::set<std::string> remaining;  // regular files after the install
  for (auto& [path, size] : sizes) {
    if (deletes.count(path) == 0) remaining.insert(path);
  }
  for (const std::string& p : new_paths) remaining.insert(p);
  std::set<std::string> dir_rows_gone;
  for (const std::string& full : new_paths) {
    auto under = remaining.lower_bound(full + "/");
    if (dirs.count(full) > 0 || (under != remaining.end() && under->compare(0, full.size() + 1, full + "/") == 0)) {
      return Status::FailedPrecondition("cannot install " + wheel.dist_info + ": " + full + " is a directory");
    }
    for (size_t slash = full.find('/', 1); slash != std::string::npos; slash = full.find('/', slash + 1)) {
      const std::string parent = full.substr(0, slash);
      if (remaining.count(parent) > 0) {
        return Status::FailedPrecondition("cannot install " + wheel.dist_info + ": " + parent +
                                          " is a file, not a directory");
      }
      if (dirs.count(parent) > 0) dir_rows_gone.insert(parent);
    }
  }
  for (const std::string& d : dir_rows_gone) deletes.insert(d);

  store::FileUsage after = before;
  for (const std::string& d : deletes) {
    auto it = sizes.find(d);
    if (it == sizes.end()) continue;
    after.file_count--;
    after.total_bytes -= it->second;
  }
  for (const store::FileWrite& w : upserts) {
    auto it = sizes.find(w.path);
    if (it == sizes.end()) {
      after.file_count++;
    } else {
      after.total_bytes -= it->second;
    }
    after.total_bytes += static_cast<int64_t>(w.content.size());
  }
  if (Status s = sessions_.CheckQuota(thread_id, quotas, before, after); !s.ok()) {
    return s.WithPrefix("cannot install " + wheel.dist_info + ": ");
  }

  StatusOr<int64_t> stored = store_.GetStateVersion(thread_id);  // not the state's bytes
  if (!stored.ok()) return stored.status();
  const int64_t version = stored.value();
  const std::vector<std::string> delete_list(deletes.begin(), deletes.end());
  StatusOr<int64_t> saved = store_.SaveExecution(thread_id, version, std::nullopt, upserts, delete_list);
  if (!saved.ok()) return saved.status();

  result.package.name = wheel.metadata_name;
  result.package.version = wheel.version;
  result.package.dist_info = wheel.dist_info;
  result.package.files = static_cast<int64_t>(upserts.size());
  for (const store::FileWrite& w : upserts) result.package.bytes += static_cast<int64_t>(w.content.size());
  result.notes = wheel.notes;
  return result;
}

StatusOr<InstalledPackage> Installer::Describe(std::string_view thread_id, std::string_view dist_info) {
  InstalledPackage p;
  p.dist_info = std::string(dist_info);
  const std::string dir = kSite + p.dist_info + "/";
  StatusOr<store::FileData> metadata = store_.GetFile(thread_id, dir + "METADATA");
  if (metadata.ok()) MetadataNameVersion(metadata.value().content, &p.name, &p.version);
  if (p.name.empty()) p.name = DirName(dist_info);
  if (p.version.empty()) {
    const std::string_view stem = dist_info.substr(0, dist_info.size() - 10);
    const size_t dash = stem.find('-');
    if (dash != std::string_view::npos) p.version = std::string(stem.substr(dash + 1));
  }
  StatusOr<std::vector<store::FileInfo>> present = store_.ListFiles(thread_id, kSite);
  if (!present.ok()) return present.status();
  const std::unordered_map<std::string, int64_t> sizes = RegularFileSizes(present.value());
  for (const std::string& path : RecordedFiles(thread_id, dist_info, sizes)) {
    p.files++;
    p.bytes += sizes.at(path);
  }
  return p;
}

std::set<std::string> Installer::RecordedFiles(std::string_view thread_id, std::string_view dist_info,
                                               const std::unordered_map<std::string, int64_t>& files) {
  std::set<std::string> out;
  StatusOr<store::FileData> record = store_.GetFile(thread_id, kSite + std::string(dist_info) + "/RECORD");
  if (!record.ok()) return out;
  StatusOr<std::vector<std::string>> paths = RecordPaths(record.value().content);
  if (!paths.ok()) return out;
  for (const std::string& rel : paths.value()) {
    std::string full = kSite + rel;
    if (rel.find("..") == std::string::npos && files.count(full) > 0) out.insert(std::move(full));
  }
  return out;
}

std::set<std::string> Installer::OwnedFiles(std::string_view thread_id, std::string_view dist_info,
                                            const std::unordered_map<std::string, int64_t>& files) {
  std::set<std::string> out = RecordedFiles(thread_id, dist_info, files);
  const std::string prefix = kSite + std::string(dist_info) + "/";
  for (const auto& [path, size] : files) {
    if (path.compare(0, prefix.size(), prefix) == 0) out.insert(path);
  }
  return out;
}

StatusOr<std::vector<InstalledPackage>> Installer::List(std::string_view thread_id) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  if (StatusOr<store::SessionInfo> s = sessions_.Use(thread_id); !s.ok()) return s.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kRead, /*lock_held=*/false);
  StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, kSite);
  if (!listed.ok()) return listed.status();
  std::vector<InstalledPackage> out;
  for (auto& [dist_info, leaves] : DistInfos(listed.value())) {
    if (leaves.count("METADATA") == 0) continue;
    StatusOr<InstalledPackage> p = Describe(thread_id, dist_info);
    if (!p.ok()) return p.status();
    out.push_back(std::move(p).value());
  }
  std::sort(out.begin(), out.end(), [](const InstalledPackage& a, const InstalledPackage& b) {
    return NormalizeName(a.name) < NormalizeName(b.name);
  });
  return out;
}

StatusOr<InstalledPackage> Installer::Uninstall(std::string_view thread_id, std::string_view name) {
  if (Status s = store::ValidateThreadId(thread_id); !s.ok()) return s;
  StatusOr<store::SessionInfo> session = sessions_.Use(thread_id);
  if (!session.ok()) return session.status();
  StatusOr<std::unique_ptr<store::SessionLock>> lock =
      store_.LockSession(thread_id, sessions_.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  sessions_.BeforeStoreUse(thread_id, session::SessionManager::StoreUse::kChange, /*lock_held=*/true);
  for (int attempt = 0;; ++attempt) {
    StatusOr<std::vector<store::FileInfo>> listed = store_.ListFiles(thread_id, kSite);
    if (!listed.ok()) return listed.status();
    std::string found;
    for (auto& [dist_info, leaves] : DistInfos(listed.value())) {
      if (NormalizeName(DirName(dist_info)) == NormalizeName(name)) found = dist_info;
    }
    if (found.empty()) {
      return Status::NotFound("'" + std::string(name) + "' is not installed in session " + std::string(thread_id));
    }
    StatusOr<InstalledPackage> p = Describe(thread_id, found);
    if (!p.ok()) return p.status();
    const std::set<std::string> deletes = OwnedFiles(thread_id, found, RegularFileSizes(listed.value()));
    StatusOr<int64_t> stored = store_.GetStateVersion(thread_id);  // not the state's bytes
    if (!stored.ok()) return stored.status();
    const int64_t version = stored.value();
    StatusOr<int64_t> saved = store_.SaveExecution(thread_id, version, std::nullopt, {},
                                                   std::vector<std::string>(deletes.begin(), deletes.end()));
    if (saved.ok()) return p;
    if (!saved.status().IsConflict() || attempt > 0) return saved.status();
  }
}

}  // namespace brig::wheels
