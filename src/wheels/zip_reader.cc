#include "wheels/zip_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <unordered_set>

#include "names/utf8.h"
#include "util/little_endian.h"

namespace brig::wheels {
namespace {

constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr size_t kEndBytes = 22;
constexpr size_t kCentralBytes = 46;
constexpr size_t kLocalBytes = 30;

uint16_t U16(std::string_view s, size_t at) { return brig_le_load16(s.data() + at); }
uint32_t U32(std::string_view s, size_t at) { return brig_le_load32(s.data() + at); }

// `name` printable in one line of an error: control bytes as \xNN, at most ~120 bytes.
std::string Shown(std::string_view name) {
  std::string out = "'";
  for (size_t i = 0; i < name.size() && out.size() < 120; ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7f || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (out.size() >= 120) out += "...";
  return out + "'";
}

Status Bad(std::string msg) { return Status::InvalidArgument("not a usable zip archive: " + std::move(msg)); }

// Why `name` cannot name an entry, or "" if it can.
std::string NameFault(std::string_view name) {
  if (name.empty()) return "an empty name";
  if (!utf8::IsValid(name)) return "a name that is not UTF-8";
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) return "a NUL byte in the name";
    if (c < 0x20 || c == 0x7f) return "a control character in the name";
    if (c == '\\') return "a backslash in the name";
  }
  if (name[0] == '/') return "an absolute path";
  if (name.size() >= 2 && name[1] == ':' && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'))) {
    return "a drive letter";
  }
  std::string_view rest = name;
  if (rest.back() == '/') rest.remove_suffix(1);  // a directory entry
  size_t from = 0;
  while (from <= rest.size()) {
    size_t slash = rest.find('/', from);
    if (slash == std::string_view::npos) slash = rest.size();
    const std::string_view part = rest.substr(from, slash - from);
    if (part.empty()) return "an empty path component";
    if (part == "." || part == "..") return "a '" + std::string(part) + "' component";
    from = slash + 1;
  }
  return "";
}

// Inflates raw deflate `in` into exactly `size` bytes, or an error.
Status Inflate(std::string_view in, int64_t size, std::string* out) {
  out->assign(static_cast<size_t>(size), '\0');
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return Status::Internal("zlib: inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  int rc = inflate(&z, Z_FINISH);
  // An empty output buffer with more to come is Z_BUF_ERROR: more data than declared.
  const bool ended = rc == Z_STREAM_END;
  const uLong produced = z.total_out;
  inflateEnd(&z);
  if (!ended) return Status::InvalidArgument(rc == Z_BUF_ERROR ? "more data than its declared size, or truncated"
                                                                : "bad deflate data");
  if (static_cast<int64_t>(produced) != size) return Status::InvalidArgument("less data than its declared size");
  return Status::Ok();
}

struct Central {
  std::string name;
  uint16_t flags, method;
  uint32_t crc, csize, usize, local_offset;
  uint64_t data_begin = 0, data_end = 0, header_begin = 0;
};

}  // namespace

StatusOr<std::vector<ZipEntry>> ReadZip(std::string_view zip, const ZipLimits& limits) {
  if (zip.size() > std::numeric_limits<uint32_t>::max()) return Bad("larger than 4 GiB");
  if (zip.size() < kEndBytes) return Bad("too short (truncated?)");
  // The end record ends the file (after its comment); search back over at most a comment.
  size_t end = std::string_view::npos;
  const size_t lowest = zip.size() > kEndBytes + 0xffff ? zip.size() - kEndBytes - 0xffff : 0;
  for (size_t at = zip.size() - kEndBytes;; --at) {
    if (U32(zip, at) == kEndSignature && at + kEndBytes + U16(zip, at + 20) == zip.size()) {
      end = at;
      break;
    }
    if (at == lowest) break;
  }
  if (end == std::string_view::npos) return Bad("no end-of-central-directory record at its end (truncated?)");
  const uint16_t disk = U16(zip, end + 4), cd_disk = U16(zip, end + 6);
  const uint16_t on_disk = U16(zip, end + 8), count = U16(zip, end + 10);
  const uint32_t cd_size = U32(zip, end + 12), cd_offset = U32(zip, end + 16);
  if (disk != 0 || cd_disk != 0 || on_disk != count) return Bad("a multi-disk archive");
  if (count == 0xffff || cd_size == 0xffffffff || cd_offset == 0xffffffff) return Bad("zip64 is not supported");
  if (count > limits.max_entries) {
    return Bad(std::to_string(count) + " entries, more than " + std::to_string(limits.max_entries));
  }
  if (uint64_t{cd_offset} + cd_size > end) return Bad("the central directory runs outside the archive");

  std::vector<Central> entries;
  entries.reserve(count);
  std::unordered_set<std::string> names;
  size_t at = cd_offset;
  const size_t cd_end = size_t{cd_offset} + cd_size;
  int64_t total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (at + kCentralBytes > cd_end || U32(zip, at) != kCentralSignature) {
      return Bad("central directory entry " + std::to_string(i) + " is malformed");
    }
    Central c;
    const uint16_t made_by = U16(zip, at + 4);
    c.flags = U16(zip, at + 8);
    c.method = U16(zip, at + 10);
    c.crc = U32(zip, at + 16);
    c.csize = U32(zip, at + 20);
    c.usize = U32(zip, at + 24);
    const size_t name_len = U16(zip, at + 28), extra_len = U16(zip, at + 30), comment_len = U16(zip, at + 32);
    const uint32_t external = U32(zip, at + 38);
    c.local_offset = U32(zip, at + 42);
    const size_t next = at + kCentralBytes + name_len + extra_len + comment_len;
    if (next > cd_end) return Bad("central directory entry " + std::to_string(i) + " runs past the directory");
    c.name.assign(zip.substr(at + kCentralBytes, name_len));
    at = next;

    if (std::string fault = NameFault(c.name); !fault.empty()) return Bad("entry " + Shown(c.name) + ": " + fault);
    if (!names.insert(c.name).second) return Bad("entry " + Shown(c.name) + " appears twice");
    if (c.flags & 0x0001) return Bad("entry " + Shown(c.name) + " is encrypted");
    if (c.method != 0 && c.method != 8) {
      return Bad("entry " + Shown(c.name) + " uses compression method " + std::to_string(c.method) +
                 " (only stored and deflate)");
    }
    if (c.csize == 0xffffffff || c.usize == 0xffffffff) return Bad("zip64 is not supported");
    // The Unix mode, when the archive was made on Unix: only regular files and directories.
    if ((made_by >> 8) == 3) {
      const uint32_t type = (external >> 16) & 0170000;
      if (type == 0120000) return Bad("entry " + Shown(c.name) + " is a symbolic link");
      if (type != 0 && type != 0100000 && type != 0040000) {
        return Bad("entry " + Shown(c.name) + " is not a regular file");
      }
    }
    const bool dir = c.name.back() == '/';
    if (dir && c.usize != 0) return Bad("directory entry " + Shown(c.name) + " has content");
    if (c.usize > limits.max_entry_bytes) {
      return Status::ResourceExhausted("entry " + Shown(c.name) + " is " + std::to_string(c.usize) +
                                       " bytes, more than " + std::to_string(limits.max_entry_bytes));
    }
    total += c.usize;
    if (total > limits.max_total_bytes) {
      return Status::ResourceExhausted("the archive's entries hold more than " +
                                       std::to_string(limits.max_total_bytes) + " bytes uncompressed");
    }
    if (c.usize > 65536 && c.usize > static_cast<int64_t>(c.csize) * limits.max_ratio) {
      return Bad("entry " + Shown(c.name) + " expands " + std::to_string(c.usize / std::max<uint32_t>(c.csize, 1)) +
                 " times (a zip bomb?)");
    }
    if (c.method == 0 && c.csize != c.usize) return Bad("stored entry " + Shown(c.name) + " has two sizes");

    // Its local header, which must agree.
    const size_t lh = c.local_offset;
    if (uint64_t{lh} + kLocalBytes > cd_offset || U32(zip, lh) != kLocalSignature) {
      return Bad("entry " + Shown(c.name) + " has no local header where the directory says");
    }
    const size_t lname = U16(zip, lh + 26), lextra = U16(zip, lh + 28);
    const uint16_t lflags = U16(zip, lh + 6), lmethod = U16(zip, lh + 8);
    if (lh + kLocalBytes + lname > cd_offset || zip.substr(lh + kLocalBytes, lname) != c.name) {
      return Bad("entry " + Shown(c.name) + ": its local header names another file");
    }
    if (lmethod != c.method || (lflags & 0x0001)) {
      return Bad("entry " + Shown(c.name) + ": its local header disagrees with the directory");
    }
    if (!(lflags & 0x0008) && (U32(zip, lh + 18) != c.csize || U32(zip, lh + 22) != c.usize)) {
      return Bad("entry " + Shown(c.name) + ": its local header gives other sizes");
    }
    c.header_begin = lh;
    c.data_begin = uint64_t{lh} + kLocalBytes + lname + lextra;
    c.data_end = c.data_begin + c.csize;
    if (c.data_end > cd_offset) return Bad("entry " + Shown(c.name) + " runs into the central directory");
    entries.push_back(std::move(c));
  }
  if (at != cd_end) return Bad("the central directory's size is wrong");

  // No two entries may share bytes (overlapping entries make a small file inflate to much).
  std::vector<const Central*> by_offset;
  for (const Central& c : entries) by_offset.push_back(&c);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Central* a, const Central* b) { return a->header_begin < b->header_begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->header_begin < by_offset[i - 1]->data_end) {
      return Bad("entries " + Shown(by_offset[i - 1]->name) + " and " + Shown(by_offset[i]->name) + " overlap");
    }
  }

  std::vector<ZipEntry> out;
  out.reserve(entries.size());
  for (const Central& c : entries) {
    ZipEntry e;
    e.name = c.name;
    const std::string_view data = zip.substr(c.data_begin, c.csize);
    if (c.method == 0) {
      e.content.assign(data);
    } else if (Status s = Inflate(data, c.usize, &e.content); !s.ok()) {
      return Bad("entry " + Shown(c.name) + ": " + s.message());
    }
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(e.content.data()), static_cast<uInt>(e.content.size()));
    if (crc != c.crc) return Bad("entry " + Shown(c.name) + " fails its CRC-32 check");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace brig::wheels
