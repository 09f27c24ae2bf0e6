#include "sandbox/page_records.h"

#include <bit>
#include <cstring>

#include "engine/page_snapshot.h"
#include "util/little_endian.h"

namespace brig {
namespace {

// How many words a record's mask says differ. REQUIRES: `mask` holds kRecordMaskBytes.
size_t MaskWords(const char* mask) {
  size_t words = 0;
  for (size_t k = 0; k < kRecordMaskBytes / 8; k++) words += std::popcount(brig_le_load64(mask + k * 8));
  return words;
}


void AppendRecord(PageRecords* r, uint32_t page, std::string_view record) {
  r->pages.push_back(page);
  r->data.append(record);
  r->offsets.push_back(r->data.size());
}

}  // namespace

bool ReadPageIndices(std::string_view body, size_t at, uint64_t n, uint64_t max_pages, std::vector<uint32_t>* out) {
  out->resize(n);
  for (size_t i = 0; i < n; i++) {
    const uint32_t page = brig_le_load32(body.data() + at + i * 4);
    if (page >= max_pages || (i > 0 && page <= (*out)[i - 1])) return false;
    (*out)[i] = page;
  }
  return true;
}

uint64_t MaxDeltaBodyBytes(uint64_t changed, uint64_t dropped) {
  return changed * (4 + 1 + kRecordMaskBytes + BRIG_HOST_PAGE) + dropped * 4;
}

bool ParseWholeBody(std::string_view body, uint64_t page_count, uint64_t max_pages, PageRecords* out) {
  out->clear();
  if (page_count > max_pages || body.size() / 4 < page_count) return false;
  if (!ReadPageIndices(body, 0, page_count, max_pages, &out->pages)) return false;
  size_t at = page_count * 4;
  out->offsets.reserve(page_count + 1);
  for (uint64_t i = 0; i < page_count; i++) {
    if (body.size() - at < kRecordMaskBytes) return false;
    const size_t words = MaskWords(body.data() + at);
    if ((body.size() - at - kRecordMaskBytes) / 8 < words) return false;
    at += kRecordMaskBytes + words * 8;
    out->offsets.push_back(at - page_count * 4);
  }
  if (at != body.size()) return false;
  out->data.assign(body.substr(page_count * 4));
  return true;
}

void MakeDeltaBody(const PageRecords& since, const PageRecords& now, std::string* body, uint64_t* changed,
                   uint64_t* dropped) {
  std::vector<uint32_t> changed_pages, dropped_pages;
  std::string kinds, entries;
  size_t i = 0, j = 0;  // since, now
  while (i < since.size() || j < now.size()) {
    if (j == now.size() || (i < since.size() && since.pages[i] < now.pages[j])) {
      dropped_pages.push_back(since.pages[i++]);
      continue;
    }
    const std::string_view record = now.record(j);
    if (i == since.size() || now.pages[j] < since.pages[i]) {
      changed_pages.push_back(now.pages[j++]);
      kinds.push_back(0);
      entries.append(record);
      continue;
    }
    const std::string_view before = since.record(i);
    const uint32_t page = now.pages[j];
    i++, j++;
    if (record == before) continue;
    changed_pages.push_back(page);
    if (record.size() == before.size() && record.substr(0, kRecordMaskBytes) == before.substr(0, kRecordMaskBytes)) {
      kinds.push_back(1);
      for (size_t k = kRecordMaskBytes; k < record.size(); k += 8) {
        const uint64_t x = brig_le_load64(record.data() + k) ^ brig_le_load64(before.data() + k);
        AppendLe64(&entries, x);
      }
    } else {
      kinds.push_back(0);
      entries.append(record);
    }
  }
  for (uint32_t page : changed_pages) AppendLe32(body, page);
  for (uint32_t page : dropped_pages) AppendLe32(body, page);
  body->append(kinds);
  body->append(entries);
  *changed = changed_pages.size();
  *dropped = dropped_pages.size();
}

bool ApplyDeltaBody(const PageRecords& base, std::string_view body, uint64_t changed, uint64_t dropped,
                    uint64_t max_pages, PageRecords* out) {
  out->clear();
  if (changed > max_pages || dropped > max_pages || body.size() / 5 < changed || (body.size() - changed * 5) / 4 < dropped) {
    return false;
  }
  std::vector<uint32_t> changed_pages, dropped_pages;
  if (!ReadPageIndices(body, 0, changed, max_pages, &changed_pages)) return false;
  if (!ReadPageIndices(body, changed * 4, dropped, max_pages, &dropped_pages)) return false;
  const char* kinds = body.data() + (changed + dropped) * 4;
  size_t at = (changed + dropped) * 4 + changed;
  out->data.reserve(base.data.size() + body.size());
  size_t i = 0, c = 0, d = 0;  // base, changed, dropped
  while (i < base.size() || c < changed_pages.size()) {
    const bool from_base = c == changed_pages.size() || (i < base.size() && base.pages[i] < changed_pages[c]);
    const uint32_t page = from_base ? base.pages[i] : changed_pages[c];
    if (d < dropped_pages.size() && dropped_pages[d] < page) return false;  // drops a page base lacks
    if (d < dropped_pages.size() && dropped_pages[d] == page) {
      if (!from_base || (c < changed_pages.size() && changed_pages[c] == page)) return false;
      d++, i++;
      continue;
    }
    if (from_base) {
      AppendRecord(out, page, base.record(i++));
      continue;
    }
    const bool in_base = i < base.size() && base.pages[i] == page;
    const uint8_t kind = static_cast<uint8_t>(kinds[c]);
    if (kind == 0) {
      if (body.size() - at < kRecordMaskBytes) return false;
      const size_t n = MaskWords(body.data() + at);
      if ((body.size() - at - kRecordMaskBytes) / 8 < n) return false;
      AppendRecord(out, page, body.substr(at, kRecordMaskBytes + n * 8));
      at += kRecordMaskBytes + n * 8;
    } else if (kind == 1 && in_base) {
      const std::string_view before = base.record(i);
      const size_t n = (before.size() - kRecordMaskBytes) / 8;
      if ((body.size() - at) / 8 < n) return false;
      out->pages.push_back(page);
      out->data.append(before.substr(0, kRecordMaskBytes));
      for (size_t k = 0; k < n; k++) {
        AppendLe64(&out->data, brig_le_load64(before.data() + kRecordMaskBytes + k * 8) ^
                                   brig_le_load64(body.data() + at + k * 8));
      }
      out->offsets.push_back(out->data.size());
      at += n * 8;
    } else {
      return false;
    }
    if (in_base) i++;
    c++;
  }
  return d == dropped_pages.size() && at == body.size();
}

}  // namespace brig
