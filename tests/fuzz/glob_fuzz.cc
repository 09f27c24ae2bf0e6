// Fuzz target: glob patterns (files::GlobPattern), pattern and paths from the input.
// Checks: matching ends (no blow-up is the timeout's job), and every path a pattern matches
// starts with the pattern's literal_prefix() (callers list the store by that prefix).
#include <fuzzer/FuzzedDataProvider.h>

#include <string>

#include "files/glob.h"
#include "fuzz_vfs_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string pattern = in.ConsumeRandomLengthString(512);
  brig::StatusOr<brig::files::GlobPattern> g = brig::files::GlobPattern::Compile(pattern);
  if (!g.ok()) return 0;
  const brig::files::GlobPattern& glob = g.value();
  FUZZ_CHECK(glob.literal_prefix().starts_with("/"), "prefix '%s'", glob.literal_prefix().c_str());
  // A pattern with no wildcard matches itself.
  if (pattern.find_first_of("*?[\\") == std::string::npos) {
    FUZZ_CHECK(glob.Matches(pattern), "'%s' does not match itself", pattern.c_str());
  }
  while (in.remaining_bytes() > 0) {
    const std::string path = in.ConsumeRandomLengthString(512);
    if (glob.Matches(path)) {
      FUZZ_CHECK(path.starts_with(glob.literal_prefix()), "'%s' matches '%s' but not its prefix '%s'",
                 pattern.c_str(), path.c_str(), glob.literal_prefix().c_str());
    }
  }
  return 0;
}
