// The records of a page snapshot (sandbox_state.cc, format BRIGPG02), decoded, and page
// deltas: what turns one snapshot's records into a later one's.
//
// A record describes one 4 KiB page that differs from the process image: a mask of 512 bits
// (8 u64, little-endian; bit i = 8-byte word i differs), then the differing words XORed with
// the image's. Records depend only on the page and the image, so two saves of a session
// share the records of every page the executions between them left alone: a small
// execution changes ~70 of a small session's ~160 differing pages, and a delta stores those
// alone. Where a changed page's mask is the earlier record's (the same words differ from the
// image, with other values), the delta stores only the words, XORed with the earlier ones:
// mostly zeros.
//
// Uncompressed bodies (the snapshot formats compress them):
//   whole: u32 page[n] (ascending) | record[n]
//   delta: u32 page[n] (ascending, the pages whose record changed or is new)
//          | u32 dropped[m] (ascending, pages that no longer differ from the image)
//          | u8 kind[n] | entry[n]: kind 0: a whole record; kind 1: the words of the
//          earlier record's mask, XORed with the earlier record's words
// Bodies come back from a store: parsing checks every index and length.
//
// Thread-safety: plain values and functions.
#ifndef BRIG_SANDBOX_PAGE_RECORDS_H_
#define BRIG_SANDBOX_PAGE_RECORDS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "brig/sandbox.h"

namespace brig {

inline constexpr size_t kRecordMaskBytes = 64;  // 512 words of 8 bytes per 4 KiB page

struct Sandbox::PageRecords {
  std::vector<uint32_t> pages;    // ascending
  std::vector<size_t> offsets;    // where each page's record starts in `data`; one more at the end
  std::string data;               // the records, back to back

  size_t size() const { return pages.size(); }
  std::string_view record(size_t i) const {
    return std::string_view(data).substr(offsets[i], offsets[i + 1] - offsets[i]);
  }
  void clear() {
    pages.clear();
    offsets.assign(1, 0);
    data.clear();
  }
};
using PageRecords = Sandbox::PageRecords;

// Reads `n` u32 page indices from `body` at `at` into *out. False unless they ascend and are
// below `max_pages`. REQUIRES: `body` holds n * 4 bytes from `at`.
bool ReadPageIndices(std::string_view body, size_t at, uint64_t n, uint64_t max_pages, std::vector<uint32_t>* out);

// Parses a whole body of `page_count` records, every index below `max_pages`. False if it is
// malformed (indices not ascending or out of range, a record cut short, bytes left over).
bool ParseWholeBody(std::string_view body, uint64_t page_count, uint64_t max_pages, PageRecords* out);

// The delta body that turns `since` into `now`: appended to *body; *changed and *dropped
// get the counts it holds (0 and 0: nothing changed).
void MakeDeltaBody(const PageRecords& since, const PageRecords& now, std::string* body, uint64_t* changed,
                   uint64_t* dropped);

// `base` with the delta body of `changed` and `dropped` pages applied, into *out (not
// `base`). False if the body is malformed or does not fit `base` (a dropped page it lacks, a
// kind-1 entry for a page it lacks), or names a page at or past `max_pages`.
bool ApplyDeltaBody(const PageRecords& base, std::string_view body, uint64_t changed, uint64_t dropped,
                    uint64_t max_pages, PageRecords* out);

// The most bytes a delta body of `changed` and `dropped` pages can take.
uint64_t MaxDeltaBodyBytes(uint64_t changed, uint64_t dropped);

}  // namespace brig

#endif  // BRIG_SANDBOX_PAGE_RECORDS_H_
