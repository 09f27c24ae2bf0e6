// The zip reader and the wheel checks against an attacker's archives (wheel_builder.h makes
// them; each case breaks one thing and checks the refusal names it).
#include <gtest/gtest.h>

#include "wheel_builder.h"
#include "wheels/wheel.h"
#include "wheels/zip_reader.h"

namespace brig::wheels {
namespace {

using testing::DistInfo;
using testing::MakeWheel;
using testing::MakeZip;
using testing::Set16;
using testing::Set32;
using testing::WheelItems;
using testing::WheelSpec;
using testing::ZipItem;
using testing::ZipLayout;

// The message of a refusal, or "accepted".
std::string Refusal(const std::string& archive, const std::string& filename = "", const ZipLimits& limits = {}) {
  StatusOr<Wheel> w = ParseWheel(archive, filename, limits);
  return w.ok() ? "accepted" : w.status().message();
}

std::string ZipRefusal(const std::string& archive, const ZipLimits& limits = {}) {
  StatusOr<std::vector<ZipEntry>> e = ReadZip(archive, limits);
  return e.ok() ? "accepted" : e.status().message();
}

#define EXPECT_REFUSED(msg, needle)                                                   \
  do {                                                                                \
    const std::string m_ = (msg);                                                     \
    EXPECT_NE(m_, "accepted");                                                        \
    EXPECT_NE(m_.find(needle), std::string::npos) << "message: " << m_;               \
  } while (0)

TEST(Wheel, PurePythonWheelIsAccepted) {
  WheelSpec spec;
  StatusOr<Wheel> w = ParseWheel(MakeWheel(spec), "demo_pkg-1.0-py3-none-any.whl");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w.value().name, "demo_pkg");
  EXPECT_EQ(w.value().version, "1.0");
  EXPECT_EQ(w.value().dist_info, "demo_pkg-1.0.dist-info");
  std::map<std::string, std::string> files;
  for (const WheelFile& f : w.value().files) files[f.path] = f.content;
  EXPECT_EQ(files["demo_pkg/__init__.py"], "VALUE = 42\n");
  EXPECT_EQ(files["demo_pkg-1.0.dist-info/INSTALLER"], "brig\n");
  // RECORD lists what is installed, INSTALLER included.
  const std::string& record = files["demo_pkg-1.0.dist-info/RECORD"];
  EXPECT_NE(record.find("demo_pkg-1.0.dist-info/INSTALLER,sha256="), std::string::npos) << record;
  EXPECT_NE(record.find("demo_pkg/util.py,sha256=" + testing::RecordHashOf(files["demo_pkg/util.py"])),
            std::string::npos);
  EXPECT_EQ(files.size(), 6u);
  EXPECT_TRUE(w.value().notes.empty());
}

TEST(Wheel, AcceptsEveryPurePythonTag) {
  for (const char* tag : {"py3-none-any", "py2.py3-none-any", "py311-none-any", "py3.py311-none-any"}) {
    WheelSpec spec;
    spec.wheel = std::string("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: ") + tag + "\n";
    EXPECT_EQ(Refusal(MakeWheel(spec), std::string("demo_pkg-1.0-") + tag + ".whl"), "accepted") << tag;
  }
  WheelSpec spec;  // two Tag lines, a build tag in the name
  spec.wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n";
  EXPECT_EQ(Refusal(MakeWheel(spec), "demo_pkg-1.0-1-py2.py3-none-any.whl"), "accepted");
}

TEST(Wheel, RefusesTagsOfCompiledWheels) {
  const std::pair<const char*, const char*> cases[] = {
      {"cp311-cp311-manylinux_2_17_x86_64", "particular interpreter (cp311)"},
      {"cp37-abi3-manylinux2014_x86_64", "particular interpreter"},
      {"py3-abi3-any", "names an ABI (abi3)"},
      {"py3-none-linux_x86_64", "for a platform (linux_x86_64)"},
      {"py3-none-win_amd64", "for a platform"},
      {"py2-none-any", "not for Python 3"},
      {"py2-none-any\nTag: py2-none-macosx_10_9_x86_64", "for a platform"},
      {"py3-none", "not PYTHON-ABI-PLATFORM"},
  };
  for (auto& [tag, needle] : cases) {
    WheelSpec spec;
    spec.wheel = std::string("Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: ") + tag + "\n";
    EXPECT_REFUSED(Refusal(MakeWheel(spec)), needle);
  }
  WheelSpec ok;
  // The file name's tags are checked too.
  EXPECT_REFUSED(Refusal(MakeWheel(ok), "demo_pkg-1.0-cp311-cp311-linux_x86_64.whl"), "file name");
  EXPECT_REFUSED(Refusal(MakeWheel(ok), "other-1.0-py3-none-any.whl"), "does not match");
  EXPECT_REFUSED(Refusal(MakeWheel(ok), "demo_pkg-2.0-py3-none-any.whl"), "does not match");
  EXPECT_REFUSED(Refusal(MakeWheel(ok), "demo_pkg-1.0-py3-none-any.zip"), "does not end in .whl");
  EXPECT_REFUSED(Refusal(MakeWheel(ok), "demo_pkg.whl"), "is not NAME-VERSION");
}

TEST(Wheel, RefusesWheelMetadataThatIsNotPure) {
  WheelSpec spec;
  spec.wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: py3-none-any\n";
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "Root-Is-Purelib: true");
  spec.wheel = "Wheel-Version: 2.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "Wheel-Version 2.0");
  spec.wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n";
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "no Tag");
  spec.wheel = "Root-Is-Purelib: true\nTag: py3-none-any\n";
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "no Wheel-Version");
}

TEST(Wheel, RefusesCompiledCodeNamingTheFiles) {
  for (const char* name : {"demo_pkg/_speedups.cpython-311-x86_64-linux-gnu.so", "demo_pkg/_x.pyd",
                           "demo_pkg/libfoo.dylib", "demo_pkg/foo.DLL", "demo_pkg/.libs/libz.so.1.2.13"}) {
    WheelSpec spec;
    spec.files.emplace_back(name, "not really code");
    const std::string m = Refusal(MakeWheel(spec));
    EXPECT_REFUSED(m, "compiled code");
    EXPECT_REFUSED(m, name);
  }
  // By content too: an ELF object under an innocent name.
  WheelSpec spec;
  spec.files.emplace_back("demo_pkg/data.bin", std::string("\x7f" "ELF\x02\x01\x01", 7) + std::string(64, '\0'));
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "demo_pkg/data.bin");
  // Several: the first few are named, the rest counted.
  WheelSpec many;
  for (int i = 0; i < 8; ++i) many.files.emplace_back("demo_pkg/m" + std::to_string(i) + ".so", "x");
  EXPECT_REFUSED(Refusal(MakeWheel(many)), "and 3 more");
}

TEST(Wheel, RefusesNamesThatEscapeOrCannotBeNames) {
  const std::pair<std::string, const char*> cases[] = {
      {"../evil.py", "'..' component"},
      {"demo_pkg/../../evil.py", "'..' component"},
      {"/etc/passwd", "absolute path"},
      {"demo_pkg\\..\\evil.py", "backslash"},
      {"C:/evil.py", "drive letter"},
      {"c:evil.py", "drive letter"},
      {"demo_pkg/./x.py", "'.' component"},
      {"demo_pkg//x.py", "empty path component"},
      {std::string("demo_pkg/x\0.py", 14), "NUL"},
      {"demo_pkg/x\n.py", "control character"},
      {"demo_pkg/\xff.py", "not UTF-8"},
  };
  for (auto& [name, needle] : cases) {
    WheelSpec spec;
    spec.files.emplace_back(name, "x = 1\n");
    SCOPED_TRACE(name);
    EXPECT_REFUSED(Refusal(MakeWheel(spec)), needle);
  }
}

TEST(Wheel, RefusesSymlinksAndSpecialFiles) {
  WheelSpec spec;
  std::vector<ZipItem> items = WheelItems(spec);
  items.push_back({"demo_pkg/link.py", "/etc/passwd", false, 0x0314, 0120777u << 16});
  EXPECT_REFUSED(ZipRefusal(MakeZip(items)), "symbolic link");
  items.back().external = 0060644u << 16;  // a block device
  EXPECT_REFUSED(ZipRefusal(MakeZip(items)), "not a regular file");
  // Made on another system: the attributes mean nothing and are ignored.
  items.back().made_by = 0x0014;
  EXPECT_EQ(ZipRefusal(MakeZip(items)), "accepted");
}

TEST(Wheel, RefusesDuplicateNames) {
  WheelSpec spec;
  spec.files.emplace_back("demo_pkg/__init__.py", "VALUE = 666\n");
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "appears twice");
  // The same file twice through .data/purelib.
  WheelSpec data;
  data.files.emplace_back("demo_pkg-1.0.data/purelib/demo_pkg/util.py", "x = 1\n");
  EXPECT_REFUSED(Refusal(MakeWheel(data)), "installed twice");
}

TEST(Wheel, DataDirectories) {
  WheelSpec spec;
  spec.files.emplace_back("demo_pkg-1.0.data/purelib/extra_mod.py", "E = 1\n");
  spec.files.emplace_back("demo_pkg-1.0.data/platlib/plat_mod.py", "P = 1\n");
  spec.files.emplace_back("demo_pkg-1.0.data/scripts/demo", "#!python\n");
  spec.files.emplace_back("demo_pkg-1.0.data/data/share/x.txt", "x");
  StatusOr<Wheel> w = ParseWheel(MakeWheel(spec), "");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::set<std::string> paths;
  for (const WheelFile& f : w.value().files) paths.insert(f.path);
  EXPECT_TRUE(paths.count("extra_mod.py"));
  EXPECT_TRUE(paths.count("plat_mod.py"));
  for (const std::string& p : paths) EXPECT_EQ(p.find(".data/"), std::string::npos) << p;
  ASSERT_EQ(w.value().notes.size(), 2u);
  EXPECT_NE(w.value().notes[1].find("scripts/ not installed: the sandbox runs no commands"), std::string::npos)
      << w.value().notes[1];
  WheelSpec odd;
  odd.files.emplace_back("demo_pkg-1.0.data/etc/x.conf", "x");
  EXPECT_REFUSED(Refusal(MakeWheel(odd)), "unknown .data/ directory 'etc'");
}

TEST(Wheel, RefusesRecordMismatches) {
  WheelSpec spec;
  spec.record_hash_override["demo_pkg/util.py"] = testing::RecordHashOf("something else");
  EXPECT_REFUSED(Refusal(MakeWheel(spec)), "'demo_pkg/util.py' does not match its sha256");
  WheelSpec missing;
  missing.unrecorded.push_back("demo_pkg/util.py");
  EXPECT_REFUSED(Refusal(MakeWheel(missing)), "'demo_pkg/util.py' is not listed in RECORD");
  WheelSpec ghost;
  ghost.extra_record_rows = "demo_pkg/ghost.py,sha256=" + testing::RecordHashOf("") + ",0\n";
  EXPECT_REFUSED(Refusal(MakeWheel(ghost)), "which the wheel does not hold");
  WheelSpec md5;
  md5.record_hash_override["demo_pkg/util.py"] = "x";
  md5.extra_record_rows = "";
  std::vector<ZipItem> items = WheelItems(md5);
  std::string& record = items.back().content;
  record.replace(record.find("demo_pkg/util.py,sha256=x"), 25, "demo_pkg/util.py,md5=abc");
  EXPECT_REFUSED(Refusal(MakeZip(items)), "no sha256 hash (md5=abc)");
  WheelSpec quoted;
  quoted.extra_record_rows = "\"unterminated,sha256=,0\n";
  EXPECT_REFUSED(Refusal(MakeWheel(quoted)), "malformed row");
}

TEST(Wheel, RefusesWhatIsNotAWheel) {
  WheelSpec spec;
  std::vector<ZipItem> items = WheelItems(spec);
  std::vector<ZipItem> no_dist_info(items.begin(), items.begin() + 2);
  EXPECT_REFUSED(Refusal(MakeZip(no_dist_info)), "no NAME-VERSION.dist-info");
  std::vector<ZipItem> two = items;
  two.push_back({"other-2.0.dist-info/METADATA", "Name: other\n"});
  EXPECT_REFUSED(Refusal(MakeZip(two)), "more than one .dist-info");
  std::vector<ZipItem> no_record(items.begin(), items.end() - 1);
  EXPECT_REFUSED(Refusal(MakeZip(no_record)), "lacks RECORD");
  WheelSpec bad_name;
  bad_name.name = "demo pkg";
  EXPECT_REFUSED(Refusal(MakeWheel(bad_name)), "is not NAME-VERSION.dist-info");
  WheelSpec meta;
  meta.metadata = "Metadata-Version: 2.1\nName: requests\nVersion: 1.0\n";
  EXPECT_REFUSED(Refusal(MakeWheel(meta)), "METADATA names 'requests'");
  EXPECT_REFUSED(Refusal("PK\x03\x04 this is not a zip archive at all"), "no end-of-central-directory");
}

// ---- The zip reader against broken and hostile archives.

TEST(ZipReader, TruncatedArchives) {
  const std::string zip = MakeWheel(WheelSpec());
  for (size_t cut : {zip.size() - 1, zip.size() - 22, zip.size() / 2, size_t{10}, size_t{0}}) {
    EXPECT_NE(ZipRefusal(zip.substr(0, cut)), "accepted") << cut;
  }
  // Garbage after the end record: it no longer ends the file.
  EXPECT_REFUSED(ZipRefusal(zip + "trailing"), "no end-of-central-directory");
}

TEST(ZipReader, BadCentralDirectory) {
  ZipLayout l;
  const std::string zip = MakeWheel(WheelSpec(), &l);
  std::string z = zip;
  Set32(&z, l.end + 16, static_cast<uint32_t>(zip.size()));  // directory offset past the end
  EXPECT_REFUSED(ZipRefusal(z), "outside the archive");
  z = zip;
  Set16(&z, l.end + 8, 3);  // entry counts that disagree
  EXPECT_REFUSED(ZipRefusal(z), "multi-disk");
  z = zip;
  Set16(&z, l.end + 8, 99);
  Set16(&z, l.end + 10, 99);  // more entries than the directory holds
  EXPECT_REFUSED(ZipRefusal(z), "malformed");
  z = zip;
  Set16(&z, l.end + 8, 2);
  Set16(&z, l.end + 10, 2);  // fewer: the directory's size no longer adds up
  EXPECT_REFUSED(ZipRefusal(z), "size is wrong");
  z = zip;
  Set32(&z, l.central[1], 0xdeadbeef);  // a signature
  EXPECT_REFUSED(ZipRefusal(z), "malformed");
  z = zip;
  Set16(&z, l.central[1] + 28, 60000);  // a name that runs past the directory
  EXPECT_REFUSED(ZipRefusal(z), "runs past the directory");
  z = zip;
  Set32(&z, l.central[1] + 42, static_cast<uint32_t>(l.local[0]));  // points at another entry's header
  EXPECT_REFUSED(ZipRefusal(z), "local header names another file");
  z = zip;
  Set32(&z, l.central[1] + 42, static_cast<uint32_t>(l.local[1] + 3));  // points at no header
  EXPECT_REFUSED(ZipRefusal(z), "no local header");
  z = zip;
  Set16(&z, l.end + 10, 0xffff);
  Set16(&z, l.end + 8, 0xffff);
  EXPECT_REFUSED(ZipRefusal(z), "zip64");
  z = zip;
  Set32(&z, l.local[1] + 22, 12345);  // local header's size disagrees
  EXPECT_REFUSED(ZipRefusal(z), "other sizes");
  z = zip;
  Set16(&z, l.central[1] + 8, 0x0801);  // encrypted
  EXPECT_REFUSED(ZipRefusal(z), "encrypted");
  z = zip;
  Set16(&z, l.central[1] + 10, 12);  // bzip2
  EXPECT_REFUSED(ZipRefusal(z), "compression method 12");
}

TEST(ZipReader, OverlappingEntries) {
  // Two stored entries; the first claims to run on into the second.
  ZipLayout l;
  std::string z = MakeZip({{"a.txt", "aaaa", false}, {"b.txt", "bbbb", false}}, &l);
  const uint32_t longer = static_cast<uint32_t>(l.local[1] - l.local[0]);  // to past b's header
  for (size_t at : {l.local[0] + 18, l.local[0] + 22, l.central[0] + 20, l.central[0] + 24}) Set32(&z, at, longer);
  EXPECT_REFUSED(ZipRefusal(z), "overlap");
  // Two directory entries sharing one local header (and so its data) under different names
  // cannot agree with it; under the same name they are duplicates.
  ZipLayout l2;
  std::string dup = MakeZip({{"a.txt", "aaaa"}, {"a.txt", "aaaa"}}, &l2);
  EXPECT_REFUSED(ZipRefusal(dup), "appears twice");
}

TEST(ZipReader, ZipBombs) {
  // 10 MiB of zeros deflate to ~10 KiB: a ratio of ~1000.
  const std::string zeros(10 << 20, '\0');
  EXPECT_REFUSED(ZipRefusal(MakeZip({{"bomb.txt", zeros}})), "zip bomb");
  // Many entries each under the ratio, together over the total.
  ZipLimits small;
  small.max_total_bytes = 1 << 20;
  std::vector<ZipItem> many;
  for (int i = 0; i < 20; ++i) many.push_back({"f" + std::to_string(i), std::string(64 << 10, 'x'), false});
  EXPECT_REFUSED(ZipRefusal(MakeZip(many), small), "more than 1048576 bytes uncompressed");
  ZipLimits entry;
  entry.max_entry_bytes = 1000;
  EXPECT_REFUSED(ZipRefusal(MakeZip({{"big", std::string(2000, 'y'), false}}), entry), "more than 1000");
  ZipLimits few;
  few.max_entries = 3;
  EXPECT_REFUSED(ZipRefusal(MakeZip(WheelItems(WheelSpec())), few), "more than 3");
  // A declared size smaller than the data: inflation stops at it.
  ZipLayout l;
  std::string z = MakeZip({{"x.txt", std::string(5000, 'z')}}, &l);
  Set32(&z, l.local[0] + 22, 100);
  Set32(&z, l.central[0] + 24, 100);
  EXPECT_REFUSED(ZipRefusal(z), "more data than its declared size");
  // Larger than the data.
  z = MakeZip({{"x.txt", std::string(5000, 'z')}}, &l);
  Set32(&z, l.local[0] + 22, 6000);
  Set32(&z, l.central[0] + 24, 6000);
  EXPECT_NE(ZipRefusal(z), "accepted");
}

TEST(ZipReader, CorruptData) {
  ZipLayout l;
  std::string z = MakeZip({{"a.txt", "hello world", false}}, &l);
  z[l.local[0] + 30 + 5 + 2] ^= 1;  // a byte of the stored data
  EXPECT_REFUSED(ZipRefusal(z), "CRC-32");
  z = MakeZip({{"a.txt", std::string(1000, 'q') + "end"}}, &l);
  z[l.local[0] + 30 + 5] ^= 0x55;  // the deflate stream
  EXPECT_NE(ZipRefusal(z), "accepted");
}

TEST(ZipReader, ReadsStoredAndDeflated) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += std::to_string(i * 7919 % 10007) + (i % 13 ? " " : "\n");
  StatusOr<std::vector<ZipEntry>> e = ReadZip(MakeZip({{"a/", "", false, 0x0314, 0040755u << 16},
                                                       {"a/s.txt", "stored", false},
                                                       {"a/d.txt", text}}));
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  ASSERT_EQ(e.value().size(), 3u);
  EXPECT_TRUE(e.value()[0].is_directory());
  EXPECT_EQ(e.value()[1].content, "stored");
  EXPECT_EQ(e.value()[2].content, text);
}

TEST(ZipReader, EmptyFilesAndDataDescriptors) {
  // An empty file deflated (every wheel's empty __init__.py), and an entry written as a stream:
  // flag 3, sizes and CRC only in the central directory (and a descriptor after the data).
  ZipLayout l;
  std::string z = MakeZip({{"empty.py", ""}, {"streamed.py", "x = 1\n"}}, &l);
  Set16(&z, l.local[1] + 6, 0x0808);
  Set16(&z, l.central[1] + 8, 0x0808);
  for (size_t at : {l.local[1] + 14, l.local[1] + 18, l.local[1] + 22}) Set32(&z, at, 0);
  StatusOr<std::vector<ZipEntry>> e = ReadZip(z);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e.value()[0].content, "");
  EXPECT_EQ(e.value()[1].content, "x = 1\n");
  // Without the flag, the local header's zero sizes disagree.
  Set16(&z, l.local[1] + 6, 0x0800);
  EXPECT_REFUSED(ZipRefusal(z), "other sizes");
}

TEST(Wheel, NormalizeName) {
  EXPECT_EQ(NormalizeName("Demo_Pkg"), "demo-pkg");
  EXPECT_EQ(NormalizeName("demo.-_pkg"), "demo-pkg");
  EXPECT_EQ(NormalizeName("a"), "a");
}

}  // namespace
}  // namespace brig::wheels
