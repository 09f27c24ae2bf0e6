#include "store/content_type.h"

#include <gtest/gtest.h>

namespace brig::store {
namespace {

using namespace std::string_literals;

TEST(DetectContentType, ByMagicBytes) {
  EXPECT_EQ(DetectContentType("/x", "\x89PNG\r\n\x1a\n\0\0"s), "image/png");
  EXPECT_EQ(DetectContentType("/x", "\xff\xd8\xff\xe0"s), "image/jpeg");
  EXPECT_EQ(DetectContentType("/x", "GIF89a..."), "image/gif");
  EXPECT_EQ(DetectContentType("/x", "%PDF-1.7\n"), "application/pdf");
  EXPECT_EQ(DetectContentType("/x", "PK\x03\x04rest"s), "application/zip");
  EXPECT_EQ(DetectContentType("/x", "\x1f\x8b\x08\0"s), "application/gzip");
  EXPECT_EQ(DetectContentType("/x", "RIFF\0\0\0\0WEBPVP8 "s), "image/webp");
  EXPECT_EQ(DetectContentType("/x", "SQLite format 3\0..."s), "application/vnd.sqlite3");
}

TEST(DetectContentType, MagicBeatsAMisleadingExtension) {
  EXPECT_EQ(DetectContentType("/notes.txt", "\x89PNG\r\n\x1a\n"s), "image/png");
  EXPECT_EQ(DetectContentType("/data.json", "%PDF-1.4"), "application/pdf");
}

TEST(DetectContentType, ZipBasedFormatsKeepTheirExtension) {
  EXPECT_EQ(DetectContentType("/r.xlsx", "PK\x03\x04"s),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(DetectContentType("/r.docx", "PK\x03\x04"s),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document");
  EXPECT_EQ(DetectContentType("/r.txt", "PK\x03\x04"s), "application/zip");
}

TEST(DetectContentType, ByExtensionCaseInsensitive) {
  EXPECT_EQ(DetectContentType("/d.json", "{\"a\": 1}"), "application/json");
  EXPECT_EQ(DetectContentType("/d.CSV", "a,b\n"), "text/csv");
  EXPECT_EQ(DetectContentType("/d.txt", "hi"), "text/plain");
  EXPECT_EQ(DetectContentType("/README.md", "# t"), "text/markdown");
  EXPECT_EQ(DetectContentType("/i.html", "<p>"), "text/html");
  EXPECT_EQ(DetectContentType("/s.py", "print(1)"), "text/x-python");
  EXPECT_EQ(DetectContentType("/p.svg", "<svg/>"), "image/svg+xml");
  EXPECT_EQ(DetectContentType("/dir.v2/photo.JPG", ""), "image/jpeg");
}

TEST(DetectContentType, SniffsWithoutExtension) {
  EXPECT_EQ(DetectContentType("/pic", "  <svg xmlns='http://www.w3.org/2000/svg'/>"), "image/svg+xml");
  EXPECT_EQ(DetectContentType("/pic", "<?xml version='1.0'?><svg/>"), "image/svg+xml");
  EXPECT_EQ(DetectContentType("/doc", "<?xml version='1.0'?><a/>"), "application/xml");
  EXPECT_EQ(DetectContentType("/.bashrc", "export A=1\n"), "text/plain");
  EXPECT_EQ(DetectContentType("/Makefile", "all:\n\techo \xc3\xa9\n"), "text/plain");
  EXPECT_EQ(DetectContentType("/blob", "\0\1\2\3"s), "application/octet-stream");
  EXPECT_EQ(DetectContentType("/blob.unknownext", "\xff\xfe\xfd"), "application/octet-stream");
}

TEST(DetectContentType, TextCutMidCharacterAt512BytesStaysText) {
  std::string text(511, 'a');
  text += "\xc3\xa9\xc3\xa9";  // byte 512 falls inside a two-byte character
  EXPECT_EQ(DetectContentType("/notes", text), "text/plain");
}

}  // namespace
}  // namespace brig::store
