// Zip archives and wheels made in the tests, byte by byte, so that each can be broken in one
// chosen place (a field of a header, a name, a hash).
#ifndef BRIG_TESTS_WHEELS_WHEEL_BUILDER_H_
#define BRIG_TESTS_WHEELS_WHEEL_BUILDER_H_

#include <zlib.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "brig/text.h"
#include "util/hmac_sha256.h"
#include "util/little_endian.h"

namespace brig::wheels::testing {

struct ZipItem {
  std::string name;
  std::string content;
  bool deflate = true;
  uint16_t made_by = 0x0314;         // Unix, zip 2.0
  uint32_t external = 0100644u << 16;  // -rw-r--r--
};

// Where each entry's headers landed in the archive.
struct ZipLayout {
  std::vector<size_t> local;    // offset of each local header
  std::vector<size_t> central;  // offset of each central directory entry
  size_t end = 0;               // offset of the end record
};

inline std::string Deflate(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline void Put16(std::string* s, uint16_t v) {
  char b[2];
  brig_le_store16(b, v);
  s->append(b, 2);
}
inline void Put32(std::string* s, uint32_t v) {
  char b[4];
  brig_le_store32(b, v);
  s->append(b, 4);
}
inline void Set16(std::string* s, size_t at, uint16_t v) { brig_le_store16(s->data() + at, v); }
inline void Set32(std::string* s, size_t at, uint32_t v) { brig_le_store32(s->data() + at, v); }

inline std::string MakeZip(const std::vector<ZipItem>& items, ZipLayout* layout = nullptr) {
  ZipLayout l;
  std::string out, central;
  for (const ZipItem& it : items) {
    const std::string data = it.deflate ? Deflate(it.content) : it.content;
    const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(it.content.data()), it.content.size());
    const uint16_t method = it.deflate ? 8 : 0;
    l.local.push_back(out.size());
    const uint32_t offset = out.size();
    Put32(&out, 0x04034b50);
    Put16(&out, 20);
    Put16(&out, 0x0800);
    Put16(&out, method);
    Put16(&out, 0);
    Put16(&out, 0x21);
    Put32(&out, crc);
    Put32(&out, data.size());
    Put32(&out, it.content.size());
    Put16(&out, it.name.size());
    Put16(&out, 0);
    out += it.name;
    out += data;
    std::string c;
    Put32(&c, 0x02014b50);
    Put16(&c, it.made_by);
    Put16(&c, 20);
    Put16(&c, 0x0800);
    Put16(&c, method);
    Put16(&c, 0);
    Put16(&c, 0x21);
    Put32(&c, crc);
    Put32(&c, data.size());
    Put32(&c, it.content.size());
    Put16(&c, it.name.size());
    Put16(&c, 0);
    Put16(&c, 0);
    Put16(&c, 0);
    Put16(&c, 0);
    Put32(&c, it.external);
    Put32(&c, offset);
    c += it.name;
    l.central.push_back(central.size());
    central += c;
  }
  const size_t cd_offset = out.size();
  for (size_t& c : l.central) c += cd_offset;
  out += central;
  l.end = out.size();
  Put32(&out, 0x06054b50);
  Put16(&out, 0);
  Put16(&out, 0);
  Put16(&out, items.size());
  Put16(&out, items.size());
  Put32(&out, central.size());
  Put32(&out, cd_offset);
  Put16(&out, 0);
  if (layout) *layout = l;
  return out;
}

inline std::string RecordHashOf(const std::string& data) {
  const util::Sha256Digest d = util::Sha256(data);
  std::string b64 = Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  for (char& c : b64) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return b64;
}

struct WheelSpec {
  std::string name = "demo_pkg";
  std::string version = "1.0";
  std::vector<std::pair<std::string, std::string>> files = {
      {"demo_pkg/__init__.py", "VALUE = 42\n"}, {"demo_pkg/util.py", "def double(x):\n    return 2 * x\n"}};
  std::string wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
  std::string metadata;  // empty: "Metadata-Version: 2.1\nName: <name>\nVersion: <version>\n"
  bool record_all = true;  // list every file in RECORD with its hash
  std::vector<std::string> unrecorded;  // files left out of RECORD
  std::map<std::string, std::string> record_hash_override;  // path -> the hash RECORD gives
  std::string extra_record_rows;
};

inline std::string DistInfo(const WheelSpec& s) { return s.name + "-" + s.version + ".dist-info"; }

inline std::vector<ZipItem> WheelItems(const WheelSpec& s) {
  std::vector<ZipItem> items;
  const std::string di = DistInfo(s);
  std::vector<std::pair<std::string, std::string>> files = s.files;
  files.emplace_back(di + "/METADATA", s.metadata.empty() ? "Metadata-Version: 2.1\nName: " + s.name +
                                                                "\nVersion: " + s.version + "\n\nA test package.\n"
                                                          : s.metadata);
  files.emplace_back(di + "/WHEEL", s.wheel);
  std::string record;
  for (auto& [path, content] : files) {
    items.push_back({path, content});
    bool skip = false;
    for (const std::string& u : s.unrecorded) skip = skip || u == path;
    if (skip) continue;
    auto o = s.record_hash_override.find(path);
    record += path + ",sha256=" + (o != s.record_hash_override.end() ? o->second : RecordHashOf(content)) + "," +
              std::to_string(content.size()) + "\n";
  }
  record += s.extra_record_rows;
  record += di + "/RECORD,,\n";
  items.push_back({di + "/RECORD", record});
  return items;
}

inline std::string MakeWheel(const WheelSpec& s, ZipLayout* layout = nullptr) { return MakeZip(WheelItems(s), layout); }

}  // namespace brig::wheels::testing

#endif  // BRIG_TESTS_WHEELS_WHEEL_BUILDER_H_
