// Content type (MIME) of a stored file, from its magic bytes and its extension.
#ifndef BRIG_STORE_CONTENT_TYPE_H_
#define BRIG_STORE_CONTENT_TYPE_H_

#include <string>
#include <string_view>

namespace brig::store {

// Returns a MIME type for a file at `path` holding `content`. Order of evidence:
//  1. magic bytes of unambiguous binary formats (png, jpeg, gif, webp, bmp, pdf, zip, gzip,
//     bzip2, xz, zstd, wasm, sqlite), so a PNG named "x.txt" is image/png; a zip container
//     whose extension names a zip-based format (docx, xlsx, pptx, jar, odt, ...) keeps the
//     extension's type;
//  2. the extension (case-insensitive): json, csv, txt, md, html, py, svg, xml, js, css, ...;
//  3. content sniffing: "<svg" / "<?xml" → svg / xml; valid UTF-8 without NUL → text/plain;
//  4. application/octet-stream.
// Never fails; looks at most at the first 512 bytes of `content`.
std::string DetectContentType(std::string_view path, std::string_view content);

}  // namespace brig::store

#endif  // BRIG_STORE_CONTENT_TYPE_H_
