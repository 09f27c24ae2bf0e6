// brig::wheels::ParseWheel: what installing a wheel (a .whl: a zip archive, PEP 427 / the
// binary distribution format) into a session's site-packages would write, checked as input
// from an attacker. Only pure-Python wheels: the sandbox runs WebAssembly and cannot load
// native extension modules.
//
// Accepted: a zip (zip_reader.h, with its bounds) holding exactly one top-level
// NAME-VERSION.dist-info/ directory with WHEEL, METADATA and RECORD, where WHEEL says
// Wheel-Version 1.x, Root-Is-Purelib: true, and every Tag is PY-none-any with PY made of
// py2/py3/py3N parts, at least one of them Python 3 (py3-none-any, py2.py3-none-any,
// py311-none-any); the file name, when given, must be NAME-VERSION[-BUILD]-TAGS.whl with the
// same name, version and acceptable tags. Every file must be listed in RECORD with its
// sha256 (and size, if given) and every RECORD row must name a file of the archive (RECORD
// itself, RECORD.jws and RECORD.p7s excepted).
//
// Refused (InvalidArgument unless said; the message says what was found): compiled code:
// a file named *.so, *.so.N, *.pyd, *.dylib, *.dll or starting with an ELF / Mach-O header,
// or a tag with an ABI (cp311, abi3) or a platform (linux_x86_64, manylinux...); a missing or
// second .dist-info; a RECORD hash mismatch; a .data/ directory other than purelib, platlib,
// scripts, headers and data. NAME.data/purelib and platlib go to site-packages' root (a
// file there twice is refused); scripts, headers and data are left out, each with a note.
//
// Thread-safety: pure functions.
#ifndef BRIG_WHEELS_WHEEL_H_
#define BRIG_WHEELS_WHEEL_H_

#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"
#include "wheels/zip_reader.h"

namespace brig::wheels {

struct WheelFile {
  std::string path;  // relative to site-packages, '/' separated, checked (zip_reader.h)
  std::string content;
};

struct Wheel {
  std::string name;       // as the .dist-info directory spells it ("my_pkg")
  std::string version;    // "1.0"
  std::string dist_info;  // "my_pkg-1.0.dist-info"
  std::string metadata_name;  // METADATA's Name ("my-pkg"), or `name` if it has none
  // What to write: the archive's files (RECORD rewritten to list what is installed, plus an
  // INSTALLER file saying "brig"), ordered as in the archive.
  std::vector<WheelFile> files;
  // What was left out and why ("scripts/foo: not installed: the sandbox runs no commands").
  std::vector<std::string> notes;
};

// `filename`: the wheel's file name (its last path component) or "" when unknown.
StatusOr<Wheel> ParseWheel(std::string_view archive, std::string_view filename, const ZipLimits& limits = {});

// PEP 503's normal form of a distribution name: lower case, runs of '-', '_', '.' as one '-'.
std::string NormalizeName(std::string_view name);

// The paths RECORD lists (the first field of each row, CSV unquoted), or InvalidArgument for
// a RECORD that is not CSV.
StatusOr<std::vector<std::string>> RecordPaths(std::string_view record);

// "Name" and "Version" of a METADATA file (RFC 822 headers up to the first empty line);
// empty when missing.
void MetadataNameVersion(std::string_view metadata, std::string* name, std::string* version);

}  // namespace brig::wheels

#endif  // BRIG_WHEELS_WHEEL_H_
