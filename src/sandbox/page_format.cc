#include "sandbox/page_format.h"

#include <zstd.h>

#include <memory>
#include <vector>

#include "brig/sandbox.h"
#include "engine/page_snapshot.h"
#include "sandbox/page_records.h"

namespace brig {
namespace page_format {
namespace {

// One compression context per thread, kept: making one per save (ZSTD_compress) allocated
// and cleared its tables every time.
ZSTD_CCtx* ThreadCompressor() {
  thread_local std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  return cctx.get();
}

// zstd level -3 (a fast level): measured on a small session's page data
// (bench/save_path_bench), ~2x faster than level 1 for a frame ~19% larger (25.4 KB vs 21.3
// KB): a durable save is bound by CPU, and the extra bytes cost the store far less than the
// compression they save. Any level decompresses the same way.
constexpr int kPagesZstdLevel = -3;

}  // namespace

Status Damaged(const std::string& why) { return Status::InvalidArgument("damaged page snapshot: " + why); }

// The header of a page snapshot (JSON) and the reader left at the body length; or why the
// snapshot is damaged. *whole_pages: the body is BRIGPG01's (whole XORed pages). A page
// delta is refused unless `delta` (then only a delta is accepted).
StatusOr<nlohmann::json> ReadPagesHeader(LeReader& r, bool* whole_pages, bool delta) {
  std::string_view magic, header_text;
  if (!r.Bytes(sizeof kPagesMagic, &magic)) return Damaged("not a page snapshot");
  const bool is_delta = magic == std::string_view(kDeltaMagic, sizeof kDeltaMagic);
  if (is_delta != delta) {
    return Damaged(is_delta ? "a page delta restores only over the snapshot it was saved against" : "not a page delta");
  }
  const bool whole = magic == std::string_view(kWholePagesMagic, sizeof kWholePagesMagic);
  if (!delta && !whole && magic != std::string_view(kPagesMagic, sizeof kPagesMagic)) return Damaged("not a page snapshot");
  if (whole_pages) *whole_pages = whole;
  uint32_t header_len = 0;
  if (!r.U32(&header_len) || header_len > kMaxHeaderBytes || !r.Bytes(header_len, &header_text)) {
    return Damaged("header");
  }
  nlohmann::json h = nlohmann::json::parse(header_text, nullptr, false);
  if (!h.is_object()) return Damaged("header is not JSON");
  return h;
}

// `magic`, the header and one zstd frame of `pieces` joined: a page snapshot or delta. The
// pieces are compressed as one frame without joining them first.
StatusOr<std::string> EncodePages(const char (&magic)[8], const nlohmann::json& header,
                                  std::initializer_list<std::string_view> pieces, std::string* scratch) {
  size_t total = 0;
  for (std::string_view piece : pieces) total += piece.size();
  ZSTD_CCtx* cctx = ThreadCompressor();
  if (!cctx) return Status::ResourceExhausted("zstd: out of memory");
  ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, kPagesZstdLevel);
  ZSTD_CCtx_setPledgedSrcSize(cctx, total);  // the frame records it
  // And a checksum of its content (xxh64, ~1 µs per 10 KB), checked by every decompression:
  // bytes damaged in a store are refused, not restored as different guest memory.
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  std::string& compressed = *scratch;
  const size_t bound = ZSTD_compressBound(total);
  if (compressed.size() < bound) compressed.resize(bound);
  ZSTD_outBuffer zout{compressed.data(), compressed.size(), 0};
  size_t index = 0;
  for (std::string_view piece : pieces) {
    ZSTD_inBuffer zin{piece.data(), piece.size(), 0};
    const ZSTD_EndDirective end = ++index == pieces.size() ? ZSTD_e_end : ZSTD_e_continue;
    size_t left;
    do {
      left = ZSTD_compressStream2(cctx, &zout, &zin, end);
      if (ZSTD_isError(left)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(left));
    } while (end == ZSTD_e_end ? left != 0 : zin.pos < zin.size);
  }
  // Descriptor paths are the guest's bytes, not always UTF-8: dump() would throw on them.
  std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out(magic, sizeof magic);
  AppendLe32(&out, static_cast<uint32_t>(text.size()));
  out += text;
  AppendLe64(&out, zout.pos);
  out.append(compressed.data(), zout.pos);
  return out;
}

// The body of a snapshot or delta whose header was read by `r`: decompressed, its size
// between `least` and `most` (checked against the frame's own record before allocating).
StatusOr<std::string> ReadBody(LeReader& r, uint64_t least, uint64_t most) {
  uint64_t body_len = 0;
  if (!r.U64(&body_len) || body_len != r.remaining()) return Damaged("body length");
  const std::string_view in = r.rest();
  unsigned long long framed = ZSTD_getFrameContentSize(in.data(), in.size());
  if (framed == ZSTD_CONTENTSIZE_UNKNOWN || framed == ZSTD_CONTENTSIZE_ERROR || framed > most || framed < least) {
    return Damaged("body size");
  }
  std::string body(framed, '\0');
  size_t got = ZSTD_decompress(body.data(), body.size(), in.data(), in.size());
  if (ZSTD_isError(got) || got != framed) return Damaged("body does not decompress");
  return body;
}

StatusOr<PagesHeader> ReadHeaderFields(const nlohmann::json& h, bool delta) {
  PagesHeader out;
  auto str = [&](const char* key, std::string* v) {
    auto it = h.find(key);
    if (it == h.end() || !it->is_string()) return false;
    *v = it->get<std::string>();
    return true;
  };
  auto num = [&](const char* key, uint64_t* v) {
    auto it = h.find(key);
    if (it == h.end() || !it->is_number_unsigned()) return false;
    *v = it->get<uint64_t>();
    return true;
  };
  if (!str("guest_build_id", &out.build) || !str("image_digest", &out.digest) ||
      !num("memory_pages", &out.memory_pages) || !num("page_count", &out.page_count) ||
      (delta && !num("dropped_count", &out.dropped_count))) {
    return Damaged("header fields");
  }
  if (out.memory_pages > 65536) return Damaged("memory size");
  return out;
}

}  // namespace page_format

using namespace page_format;

StatusOr<Sandbox::PagesOrigin> Sandbox::PageSnapshotOrigin(std::string_view snapshot) {
  LeReader r(snapshot);
  StatusOr<nlohmann::json> h = ReadPagesHeader(r);
  if (!h.ok()) return h.status();
  auto build = h.value().find("guest_build_id");
  auto digest = h.value().find("image_digest");
  if (build == h.value().end() || !build->is_string() || digest == h.value().end() || !digest->is_string()) {
    return Damaged("header fields");
  }
  return PagesOrigin{build->get<std::string>(), digest->get<std::string>()};
}

StatusOr<std::string> Sandbox::ApplyPageDeltas(std::string_view whole, const std::vector<std::string_view>& deltas) {
  LeReader r(whole);
  bool whole_pages = false;
  StatusOr<nlohmann::json> header = ReadPagesHeader(r, &whole_pages);
  if (!header.ok()) return header.status();
  if (whole_pages) return Damaged("a snapshot of the whole-page format has no deltas");
  StatusOr<PagesHeader> base = ReadHeaderFields(header.value(), false);
  if (!base.ok()) return base.status();
  const uint64_t max_pages = base.value().memory_pages * (kWasmPage / BRIG_HOST_PAGE);
  if (base.value().page_count > max_pages) return Damaged("page count");
  const uint64_t count = base.value().page_count;
  StatusOr<std::string> body = ReadBody(r, count * (4 + kRecordMaskBytes), count * (4 + kRecordMaskBytes + BRIG_HOST_PAGE));
  if (!body.ok()) return body.status();
  PageRecords records, next;
  if (!ParseWholeBody(body.value(), count, max_pages, &records)) return Damaged("page records");
  for (std::string_view delta : deltas) {
    LeReader d(delta);
    StatusOr<nlohmann::json> h = ReadPagesHeader(d, nullptr, /*delta=*/true);
    if (!h.ok()) return h.status();
    StatusOr<PagesHeader> fields = ReadHeaderFields(h.value(), true);
    if (!fields.ok()) return fields.status();
    const PagesHeader& f = fields.value();
    if (f.build != base.value().build || f.digest != base.value().digest) {
      return Damaged("a page delta of another guest build or image than its snapshot");
    }
    const uint64_t pages_now = f.memory_pages * (kWasmPage / BRIG_HOST_PAGE);
    // Counts bounded before they size anything (the sums below cannot overflow).
    if (f.page_count > pages_now || f.dropped_count > pages_now) return Damaged("page count");
    StatusOr<std::string> delta_body = ReadBody(d, f.page_count * 5 + f.dropped_count * 4,
                                                MaxDeltaBodyBytes(f.page_count, f.dropped_count));
    if (!delta_body.ok()) return delta_body.status();
    if (!ApplyDeltaBody(records, delta_body.value(), f.page_count, f.dropped_count, pages_now, &next)) {
      return Damaged("a page delta that does not fit its snapshot");
    }
    std::swap(records, next);
    header.value() = std::move(h.value());
  }
  nlohmann::json& out = header.value();
  out.erase("dropped_count");
  out["page_count"] = records.size();
  std::string indices;
  for (uint32_t page : records.pages) AppendLe32(&indices, page);
  std::string scratch;
  return EncodePages(kPagesMagic, out, {indices, records.data}, &scratch);
}

}  // namespace brig
