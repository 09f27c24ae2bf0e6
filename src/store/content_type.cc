#include "store/content_type.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "names/utf8.h"
#include "store/validation.h"

namespace brig::store {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Unambiguous signatures only: text formats are decided by extension.
const char* FromMagic(std::string_view c) {
  using namespace std::string_view_literals;
  if (StartsWith(c, "\x89PNG\r\n\x1a\n"sv)) return "image/png";
  if (StartsWith(c, "\xff\xd8\xff"sv)) return "image/jpeg";
  if (StartsWith(c, "GIF87a"sv) || StartsWith(c, "GIF89a"sv)) return "image/gif";
  if (c.size() >= 12 && StartsWith(c, "RIFF"sv) && c.substr(8, 4) == "WEBP"sv) return "image/webp";
  if (StartsWith(c, "BM"sv) && c.size() >= 14) return "image/bmp";
  if (StartsWith(c, "%PDF-"sv)) return "application/pdf";
  if (StartsWith(c, "PK\x03\x04"sv) || StartsWith(c, "PK\x05\x06"sv)) return "application/zip";
  if (StartsWith(c, "\x1f\x8b"sv)) return "application/gzip";
  if (StartsWith(c, "BZh"sv) && c.size() >= 4 && c[3] >= '1' && c[3] <= '9') return "application/x-bzip2";
  if (StartsWith(c, "\xfd" "7zXZ\x00"sv)) return "application/x-xz";
  if (StartsWith(c, "\x28\xb5\x2f\xfd"sv)) return "application/zstd";
  if (StartsWith(c, "\0asm"sv)) return "application/wasm";
  if (StartsWith(c, "SQLite format 3\0"sv)) return "application/vnd.sqlite3";
  return nullptr;
}

const std::pair<const char*, const char*> kByExtension[] = {
    {"png", "image/png"},        {"jpg", "image/jpeg"},         {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},        {"webp", "image/webp"},        {"bmp", "image/bmp"},
    {"svg", "image/svg+xml"},    {"ico", "image/x-icon"},       {"pdf", "application/pdf"},
    {"zip", "application/zip"},  {"gz", "application/gzip"},    {"tgz", "application/gzip"},
    {"bz2", "application/x-bzip2"}, {"xz", "application/x-xz"}, {"zst", "application/zstd"},
    {"tar", "application/x-tar"}, {"wasm", "application/wasm"},
    {"json", "application/json"}, {"jsonl", "application/jsonl"}, {"ndjson", "application/jsonl"},
    {"csv", "text/csv"},         {"tsv", "text/tab-separated-values"},
    {"txt", "text/plain"},       {"log", "text/plain"},         {"md", "text/markdown"},
    {"markdown", "text/markdown"}, {"html", "text/html"},       {"htm", "text/html"},
    {"css", "text/css"},         {"js", "text/javascript"},     {"mjs", "text/javascript"},
    {"py", "text/x-python"},     {"pyi", "text/x-python"},      {"ipynb", "application/x-ipynb+json"},
    {"xml", "application/xml"},  {"yaml", "application/yaml"},  {"yml", "application/yaml"},
    {"toml", "application/toml"}, {"ini", "text/plain"},        {"cfg", "text/plain"},
    {"sh", "text/x-shellscript"}, {"c", "text/x-c"},            {"h", "text/x-c"},
    {"cc", "text/x-c++"},        {"cpp", "text/x-c++"},         {"rs", "text/x-rust"},
    {"sql", "application/sql"},  {"db", "application/vnd.sqlite3"}, {"sqlite", "application/vnd.sqlite3"},
    {"pkl", "application/octet-stream"}, {"pickle", "application/octet-stream"},
    {"npy", "application/octet-stream"}, {"parquet", "application/vnd.apache.parquet"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"ods", "application/vnd.oasis.opendocument.spreadsheet"},
    {"jar", "application/java-archive"}, {"whl", "application/zip"}, {"epub", "application/epub+zip"},
};

// Extensions whose files are zip containers: the extension is the more precise answer.
bool IsZipBased(std::string_view ext) {
  for (std::string_view e : {"docx", "xlsx", "pptx", "odt", "ods", "jar", "whl", "epub"}) {
    if (ext == e) return true;
  }
  return false;
}

std::string Extension(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return "";  // ".bashrc" has no extension
  std::string ext(name.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return ext;
}

const char* FromExtension(std::string_view ext) {
  for (const auto& [e, type] : kByExtension) {
    if (ext == e) return type;
  }
  return nullptr;
}

std::string_view SkipSpace(std::string_view s) {
  size_t i = 0;
  if (StartsWith(s, "\xef\xbb\xbf")) i = 3;  // UTF-8 BOM
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

std::string DetectContentType(std::string_view path, std::string_view content) {
  const std::string_view head = content.substr(0, 512);
  const std::string ext = Extension(path);
  if (const char* magic = FromMagic(head)) {
    if (std::string_view(magic) == "application/zip" && IsZipBased(ext)) return FromExtension(ext);
    return magic;
  }
  if (const char* by_ext = FromExtension(ext)) return by_ext;
  const std::string_view text = SkipSpace(head);
  if (StartsWith(text, "<svg")) return "image/svg+xml";
  if (StartsWith(text, "<?xml")) {
    return text.find("<svg") != std::string_view::npos ? "image/svg+xml" : "application/xml";
  }
  // A cut in the middle of a multi-byte character at byte 512 must not make text binary.
  std::string_view sample = head;
  if (content.size() > head.size()) {
    while (!sample.empty() && (static_cast<unsigned char>(sample.back()) & 0xC0) == 0x80) {
      sample.remove_suffix(1);
    }
    if (!sample.empty() && static_cast<unsigned char>(sample.back()) >= 0xC0) sample.remove_suffix(1);
  }
  if (sample.find('\0') == std::string_view::npos && utf8::IsValid(sample)) return "text/plain";
  return "application/octet-stream";
}

}  // namespace brig::store
