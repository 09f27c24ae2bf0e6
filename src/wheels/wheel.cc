#include "wheels/wheel.h"

#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "brig/text.h"
#include "util/hmac_sha256.h"

namespace brig::wheels {
namespace {

Status Refuse(std::string msg) { return Status::InvalidArgument("wheel refused: " + std::move(msg)); }

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t from = 0;
  for (;;) {
    const size_t at = s.find(sep, from);
    out.push_back(s.substr(from, at == std::string_view::npos ? std::string_view::npos : at - from));
    if (at == std::string_view::npos) return out;
    from = at + 1;
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// RFC 822-style "Key: value" lines up to the first empty line (continuation lines skipped).
std::vector<std::pair<std::string, std::string>> Headers(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view line : Split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line[0] == ' ' || line[0] == '\t') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.emplace_back(Lower(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
  }
  return out;
}

// A python tag part: py2, py3, py3N...
bool PyPart(std::string_view p) {
  if (p.size() < 3 || p.substr(0, 2) != "py") return false;
  for (char c : p.substr(2)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Why tag set `tags` ("py2.py3-none-any") is not pure Python, or "". Sets *py3 if one of its
// Python tags is Python 3 (a WHEEL may list py2-none-any and py3-none-any on two lines).
std::string TagFault(std::string_view tags, bool* py3) {
  const std::vector<std::string_view> parts = Split(tags, '-');
  if (parts.size() != 3) return "tag '" + std::string(tags) + "' is not PYTHON-ABI-PLATFORM";
  for (std::string_view p : Split(parts[0], '.')) {
    if (!PyPart(p)) {
      return "tag '" + std::string(tags) + "' is for a particular interpreter (" + std::string(p) +
             "), i.e. compiled code; only pure-Python wheels (py3-none-any) can be installed";
    }
    if (p[2] == '3') *py3 = true;
  }
  for (std::string_view abi : Split(parts[1], '.')) {
    if (abi != "none") {
      return "tag '" + std::string(tags) + "' names an ABI (" + std::string(abi) +
             "): the wheel holds compiled code, which the sandbox (WebAssembly) cannot load";
    }
  }
  for (std::string_view platform : Split(parts[2], '.')) {
    if (platform != "any") {
      return "tag '" + std::string(tags) + "' is for a platform (" + std::string(platform) +
             "): the wheel holds compiled code, which the sandbox (WebAssembly) cannot load";
    }
  }
  return "";
}

bool CompiledName(std::string_view path) {
  const std::string lower = Lower(path.substr(path.rfind('/') + 1));
  if (EndsWith(lower, ".so") || EndsWith(lower, ".pyd") || EndsWith(lower, ".dylib") || EndsWith(lower, ".dll")) {
    return true;
  }
  const size_t so = lower.find(".so.");  // libfoo.so.1
  if (so != std::string::npos) {
    std::string_view rest = std::string_view(lower).substr(so + 4);
    bool digits = !rest.empty();
    for (char c : rest) digits = digits && ((c >= '0' && c <= '9') || c == '.');
    if (digits) return true;
  }
  return false;
}

bool CompiledContent(std::string_view c) {
  if (c.size() < 4) return false;
  const std::string_view m = c.substr(0, 4);
  return m == std::string_view("\x7f" "ELF", 4) || m == std::string_view("\xcf\xfa\xed\xfe", 4) ||
         m == std::string_view("\xce\xfa\xed\xfe", 4) || m == std::string_view("\xfe\xed\xfa\xcf", 4) ||
         m == std::string_view("\0asm", 4);
}

// sha256 of `data` as RECORD writes it: urlsafe base64 without padding.
std::string RecordHash(std::string_view data) {
  const util::Sha256Digest d = util::Sha256(data);
  std::string b64 = Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return b64;
}

// One CSV row's fields (RFC 4180 quoting), or nullopt if malformed.
std::optional<std::vector<std::string>> CsvRow(std::string_view line) {
  std::vector<std::string> fields(1);
  size_t i = 0;
  bool quoted_field = false;
  while (i < line.size()) {
    const char c = line[i];
    if (c == '"' && fields.back().empty() && !quoted_field) {
      quoted_field = true;
      ++i;
      for (;;) {
        if (i >= line.size()) return std::nullopt;
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            fields.back() += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        fields.back() += line[i++];
      }
      if (i < line.size() && line[i] != ',') return std::nullopt;
    } else if (c == ',') {
      fields.emplace_back();
      quoted_field = false;
      ++i;
    } else {
      fields.back() += c;
      ++i;
    }
  }
  return fields;
}

struct RecordRow {
  std::string path, hash;
  std::string size;
};

StatusOr<std::vector<RecordRow>> ParseRecord(std::string_view record) {
  std::vector<RecordRow> rows;
  for (std::string_view line : Split(record, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    std::optional<std::vector<std::string>> f = CsvRow(line);
    if (!f || f->size() != 3) return Refuse("RECORD has a malformed row");
    rows.push_back({std::move((*f)[0]), std::move((*f)[1]), std::move((*f)[2])});
  }
  return rows;
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// A distribution name or version as the dist-info directory may spell it.
bool NamePart(std::string_view s, bool version) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '.' || (version && (c == '+' || c == '!'));
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string NormalizeName(std::string_view name) {
  std::string out;
  bool sep = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && !out.empty()) out += '-';
    sep = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

StatusOr<std::vector<std::string>> RecordPaths(std::string_view record) {
  StatusOr<std::vector<RecordRow>> rows = ParseRecord(record);
  if (!rows.ok()) return rows.status();
  std::vector<std::string> out;
  for (RecordRow& r : rows.value()) out.push_back(std::move(r.path));
  return out;
}

void MetadataNameVersion(std::string_view metadata, std::string* name, std::string* version) {
  name->clear();
  version->clear();
  for (auto& [key, value] : Headers(metadata)) {
    if (key == "name" && name->empty()) *name = value;
    if (key == "version" && version->empty()) *version = value;
  }
}

StatusOr<Wheel> ParseWheel(std::string_view archive, std::string_view filename, const ZipLimits& limits) {
  StatusOr<std::vector<ZipEntry>> entries = ReadZip(archive, limits);
  if (!entries.ok()) return entries.status().WithPrefix("wheel refused: ");

  // Compiled code first: the most likely refusal, and the one to name plainly.
  std::vector<std::string> compiled;
  for (const ZipEntry& e : entries.value()) {
    if (!e.is_directory() && (CompiledName(e.name) || CompiledContent(e.content))) compiled.push_back(e.name);
  }
  if (!compiled.empty()) {
    std::string list = compiled[0];
    for (size_t i = 1; i < compiled.size() && i < 5; ++i) list += ", " + compiled[i];
    if (compiled.size() > 5) list += " and " + std::to_string(compiled.size() - 5) + " more";
    return Refuse("it holds compiled code, which the sandbox (WebAssembly) cannot load: " + list +
                  "; only pure-Python wheels (py3-none-any) can be installed");
  }

  Wheel wheel;
  std::set<std::string> dist_infos;
  for (const ZipEntry& e : entries.value()) {
    const std::string top = e.name.substr(0, e.name.find('/'));
    if (e.name.find('/') != std::string::npos && EndsWith(top, ".dist-info")) dist_infos.insert(top);
  }
  if (dist_infos.size() != 1) {
    return Refuse(dist_infos.empty() ? "no NAME-VERSION.dist-info directory (is it a wheel?)"
                                     : "more than one .dist-info directory");
  }
  wheel.dist_info = *dist_infos.begin();
  {
    const std::string_view stem = std::string_view(wheel.dist_info).substr(0, wheel.dist_info.size() - 10);
    const size_t dash = stem.find('-');
    if (dash == std::string_view::npos || stem.find('-', dash + 1) != std::string_view::npos ||
        !NamePart(stem.substr(0, dash), false) || !NamePart(stem.substr(dash + 1), true)) {
      return Refuse("'" + wheel.dist_info + "' is not NAME-VERSION.dist-info");
    }
    wheel.name = std::string(stem.substr(0, dash));
    wheel.version = std::string(stem.substr(dash + 1));
  }
  std::unordered_map<std::string, const ZipEntry*> by_name;
  for (const ZipEntry& e : entries.value()) {
    if (!e.is_directory()) by_name[e.name] = &e;
  }
  auto find = [&](const std::string& leaf) -> const ZipEntry* {
    auto it = by_name.find(wheel.dist_info + "/" + leaf);
    return it == by_name.end() ? nullptr : it->second;
  };
  const ZipEntry* wheel_file = find("WHEEL");
  const ZipEntry* metadata = find("METADATA");
  const ZipEntry* record = find("RECORD");
  if (!wheel_file || !metadata || !record) {
    return Refuse(wheel.dist_info + " lacks " + (!wheel_file ? "WHEEL" : !metadata ? "METADATA" : "RECORD"));
  }

  // WHEEL.
  bool purelib = false, has_version = false;
  std::vector<std::string> tags;
  for (auto& [key, value] : Headers(wheel_file->content)) {
    if (key == "wheel-version") {
      has_version = true;
      if (value.substr(0, 2) != "1.") return Refuse("Wheel-Version " + value + " is not supported (1.x is)");
    } else if (key == "root-is-purelib") {
      purelib = Lower(value) == "true";
    } else if (key == "tag") {
      tags.push_back(value);
    }
  }
  if (!has_version) return Refuse("WHEEL has no Wheel-Version");
  if (!purelib) {
    return Refuse("WHEEL does not say Root-Is-Purelib: true (a platform wheel holds compiled code, which the "
                  "sandbox cannot load)");
  }
  if (tags.empty()) return Refuse("WHEEL has no Tag");
  bool py3 = false;
  for (const std::string& tag : tags) {
    if (std::string fault = TagFault(tag, &py3); !fault.empty()) return Refuse(fault);
  }
  if (!py3) return Refuse("WHEEL's tags are not for Python 3");
  if (!filename.empty()) {
    if (!EndsWith(filename, ".whl")) return Refuse("the file name '" + std::string(filename) + "' does not end in .whl");
    const std::vector<std::string_view> parts = Split(filename.substr(0, filename.size() - 4), '-');
    if (parts.size() != 5 && parts.size() != 6) {
      return Refuse("the file name '" + std::string(filename) + "' is not NAME-VERSION[-BUILD]-PY-ABI-PLATFORM.whl");
    }
    if (NormalizeName(parts[0]) != NormalizeName(wheel.name) || parts[1] != wheel.version) {
      return Refuse("the file name '" + std::string(filename) + "' does not match " + wheel.dist_info);
    }
    const size_t n = parts.size();
    const std::string tag = std::string(parts[n - 3]) + "-" + std::string(parts[n - 2]) + "-" + std::string(parts[n - 1]);
    bool name_py3 = false;
    if (std::string fault = TagFault(tag, &name_py3); !fault.empty()) return Refuse("file name: " + fault);
    if (!name_py3) return Refuse("file name: tag '" + tag + "' is not for Python 3");
  }
  std::string metadata_version;
  MetadataNameVersion(metadata->content, &wheel.metadata_name, &metadata_version);
  if (wheel.metadata_name.empty()) wheel.metadata_name = wheel.name;
  if (NormalizeName(wheel.metadata_name) != NormalizeName(wheel.name)) {
    return Refuse("METADATA names '" + wheel.metadata_name + "', the .dist-info '" + wheel.name + "'");
  }

  // RECORD: every file listed with a matching sha256, every row a file.
  StatusOr<std::vector<RecordRow>> rows = ParseRecord(record->content);
  if (!rows.ok()) return rows.status();
  std::set<std::string> recorded;
  const std::string record_name = wheel.dist_info + "/RECORD";
  for (const RecordRow& row : rows.value()) {
    if (!recorded.insert(row.path).second) return Refuse("RECORD lists '" + row.path + "' twice");
    if (row.path == record_name || row.path == record_name + ".jws" || row.path == record_name + ".p7s") continue;
    auto it = by_name.find(row.path);
    if (it == by_name.end()) return Refuse("RECORD lists '" + row.path + "', which the wheel does not hold");
    if (row.hash.compare(0, 7, "sha256=") != 0) {
      return Refuse("RECORD gives '" + row.path + "' no sha256 hash" + (row.hash.empty() ? "" : " (" + row.hash + ")"));
    }
    if (row.hash.substr(7) != RecordHash(it->second->content)) {
      return Refuse("'" + row.path + "' does not match its sha256 in RECORD (changed after the wheel was built?)");
    }
    if (!row.size.empty() && row.size != std::to_string(it->second->content.size())) {
      return Refuse("'" + row.path + "' is not the size RECORD gives");
    }
  }

  // Where each file goes.
  const std::string data_dir = wheel.name + "-" + wheel.version + ".data/";
  std::set<std::string> placed;
  std::map<std::string, int> left_out;  // .data/ subdirectory -> files
  for (const ZipEntry& e : entries.value()) {
    if (e.is_directory()) continue;
    if (e.name == record_name || e.name == record_name + ".jws" || e.name == record_name + ".p7s") continue;
    if (recorded.count(e.name) == 0) return Refuse("'" + e.name + "' is not listed in RECORD");
    std::string path = e.name;
    if (path.compare(0, data_dir.size(), data_dir) == 0) {
      const std::string rest = path.substr(data_dir.size());
      const size_t slash = rest.find('/');
      const std::string kind = rest.substr(0, slash);
      if (slash == std::string::npos) return Refuse("'" + e.name + "' is not in a .data/ subdirectory");
      if (kind == "purelib" || kind == "platlib") {
        path = rest.substr(slash + 1);
      } else if (kind == "scripts" || kind == "headers" || kind == "data") {
        left_out[kind]++;
        continue;
      } else {
        return Refuse("'" + e.name + "': unknown .data/ directory '" + kind + "'");
      }
    }
    if (!placed.insert(path).second) return Refuse("'" + path + "' would be installed twice");
    wheel.files.push_back({path, e.content});
  }
  for (auto& [kind, n] : left_out) {
    const std::string what = std::to_string(n) + (n == 1 ? " file" : " files") + " in " + data_dir + kind + "/";
    if (kind == "scripts") {
      wheel.notes.push_back(what + " not installed: the sandbox runs no commands");
    } else {
      wheel.notes.push_back(what + " not installed: only site-packages is installed in the sandbox");
    }
  }

  // RECORD as installed (pip rewrites it too), and INSTALLER.
  const std::string installer_name = wheel.dist_info + "/INSTALLER";
  if (placed.count(installer_name) > 0) {
    for (WheelFile& f : wheel.files) {
      if (f.path == installer_name) f.content = "brig\n";
    }
  } else {
    wheel.files.push_back({installer_name, "brig\n"});
  }
  std::string new_record;
  for (const WheelFile& f : wheel.files) {
    new_record += CsvField(f.path) + ",sha256=" + RecordHash(f.content) + "," + std::to_string(f.content.size()) + "\n";
  }
  new_record += CsvField(record_name) + ",,\n";
  wheel.files.push_back({record_name, std::move(new_record)});
  return wheel;
}

}  // namespace brig::wheels
