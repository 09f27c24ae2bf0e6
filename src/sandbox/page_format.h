// The page snapshot and page delta formats (described in sandbox_state.cc): their headers,
// their compressed bodies, and applying deltas. Host-only: nothing here needs the guest or
// the engine, so that fork and export (brig_session_manager) can read stored states.
//
// Thread-safety: plain functions (each thread keeps its own compression context).
#ifndef BRIG_SANDBOX_PAGE_FORMAT_H_
#define BRIG_SANDBOX_PAGE_FORMAT_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "brig/status.h"
#include "util/little_endian.h"

namespace brig::page_format {

inline constexpr char kPagesMagic[8] = {'B', 'R', 'I', 'G', 'P', 'G', '0', '2'};
inline constexpr char kWholePagesMagic[8] = {'B', 'R', 'I', 'G', 'P', 'G', '0', '1'};  // read only
inline constexpr char kDeltaMagic[8] = {'B', 'R', 'I', 'G', 'P', 'D', '0', '1'};
inline constexpr uint64_t kWasmPage = 65536;
inline constexpr uint32_t kMaxHeaderBytes = 16u << 20;

// InvalidArgument "damaged page snapshot: <why>".
Status Damaged(const std::string& why);

// The header of a page snapshot (JSON) and the reader left at the body length; or why the
// snapshot is damaged. *whole_pages: the body is BRIGPG01's (whole XORed pages). A page
// delta is refused unless `delta` (then only a delta is accepted).
StatusOr<nlohmann::json> ReadPagesHeader(LeReader& r, bool* whole_pages = nullptr, bool delta = false);

// `magic`, the header and one zstd frame of `pieces` joined: a page snapshot or delta.
// `scratch` holds the compressed frame on the way (kept by callers that save often).
StatusOr<std::string> EncodePages(const char (&magic)[8], const nlohmann::json& header,
                                  std::initializer_list<std::string_view> pieces, std::string* scratch);

// The body of a snapshot or delta whose header `r` read: decompressed, its size between
// `least` and `most` (checked against the frame's own record before allocating).
StatusOr<std::string> ReadBody(LeReader& r, uint64_t least, uint64_t most);

// The fields of a header that a delta is checked and applied with.
struct PagesHeader {
  std::string build, digest;
  uint64_t memory_pages = 0, page_count = 0, dropped_count = 0;
};
// The fields above from a header, each checked (memory_pages at most 65536).
StatusOr<PagesHeader> ReadHeaderFields(const nlohmann::json& h, bool delta);

}  // namespace brig::page_format

#endif  // BRIG_SANDBOX_PAGE_FORMAT_H_
