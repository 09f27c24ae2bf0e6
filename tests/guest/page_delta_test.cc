// Page deltas (Sandbox::SavePages with `since`, Sandbox::ApplyPageDeltas, page_records.h):
// a chain of deltas restores exactly the state a whole snapshot would, and deltas that come
// back damaged from a store are refused without harm.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "brig/sandbox.h"
#include "sandbox/page_records.h"
#include "test_sandbox.h"
#include "util/little_endian.h"

namespace brig {
namespace {

using testing::Eval;

std::unique_ptr<Sandbox> NewSandbox() { return testing::New(); }

Sandbox::PagesSave Save(Sandbox& s, const Sandbox::PageRecords* since) {
  auto saved = s.SavePages(Sandbox::PagesSaveOptions{since, true});
  EXPECT_TRUE(saved.ok()) << saved.status().message();
  return saved.ok() ? std::move(saved.value()) : Sandbox::PagesSave{};
}

// A whole snapshot, then a delta per execution against the save before it.
struct Chain {
  std::string whole;
  std::vector<std::string> deltas;
  std::string last_whole;  // a whole snapshot of the last state, for comparison
};

Chain MakeChain(Sandbox& a, int executions) {
  Chain c;
  Eval(a, "import json\nitems = []\ndef grow(n):\n    items.extend(range(n))\n    return len(items)");
  Sandbox::PagesSave first = Save(a, nullptr);
  EXPECT_FALSE(first.delta);
  c.whole = first.snapshot;
  std::shared_ptr<const Sandbox::PageRecords> since = first.records;
  for (int i = 0; i < executions; i++) {
    // Small changes, a growing list (new pages) and a freed one (pages that may go back).
    Eval(a, "x = " + std::to_string(i) + "\ngrow(" + std::to_string(100 * (i + 1)) + ")\ntmp = [0] * " +
                std::to_string(5000 * (i % 3)) + "\ndel tmp");
    Sandbox::PagesSave d = Save(a, since.get());
    EXPECT_TRUE(d.delta);
    c.deltas.push_back(d.snapshot);
    since = d.records;
  }
  c.last_whole = Save(a, nullptr).snapshot;
  return c;
}

TEST(PageDelta, AChainOfDeltasRestoresTheLatestState) {
  auto a = NewSandbox();
  Chain c = MakeChain(*a, 6);
  for (const std::string& d : c.deltas) EXPECT_LT(d.size(), c.last_whole.size());
  std::vector<std::string_view> deltas(c.deltas.begin(), c.deltas.end());
  auto applied = Sandbox::ApplyPageDeltas(c.whole, deltas);
  ASSERT_TRUE(applied.ok()) << applied.status().message();
  // The same pages as a whole save of the same state, byte for byte once decoded: restore
  // both and compare what the guest sees.
  auto b = NewSandbox();
  std::shared_ptr<const Sandbox::PageRecords> restored;
  ASSERT_TRUE(b->RestorePages(applied.value(), &restored).ok());
  ASSERT_NE(restored, nullptr);
  EXPECT_EQ(Eval(*b, "(x, len(items), sum(items))"), Eval(*a, "(x, len(items), sum(items))"));
  auto w = NewSandbox();
  std::shared_ptr<const Sandbox::PageRecords> whole_records;
  ASSERT_TRUE(w->RestorePages(c.last_whole, &whole_records).ok());
  EXPECT_EQ(restored->pages, whole_records->pages);
  EXPECT_EQ(restored->data, whole_records->data);
  // The restored records are a base for further deltas.
  Eval(*b, "x = 'after'");
  Sandbox::PagesSave next = Save(*b, restored.get());
  auto again = Sandbox::ApplyPageDeltas(applied.value(), {next.snapshot});
  ASSERT_TRUE(again.ok()) << again.status().message();
  auto d = NewSandbox();
  ASSERT_TRUE(d->RestorePages(again.value()).ok());
  EXPECT_EQ(Eval(*d, "(x, len(items))"), Eval(*b, "(x, len(items))"));
  // No deltas: the snapshot itself.
  auto none = Sandbox::ApplyPageDeltas(c.whole, {});
  ASSERT_TRUE(none.ok());
  auto e = NewSandbox();
  ASSERT_TRUE(e->RestorePages(none.value()).ok());
  EXPECT_EQ(Eval(*e, "len(items)"), "0");
}

TEST(PageDelta, ADeltaDoesNotRestoreAloneNorStandInForASnapshot) {
  auto a = NewSandbox();
  Chain c = MakeChain(*a, 1);
  auto b = NewSandbox();
  Status alone = b->RestorePages(c.deltas[0]);
  EXPECT_TRUE(alone.IsInvalidArgument()) << alone.ToString();
  EXPECT_NE(alone.message().find("page delta"), std::string::npos) << alone.message();
  // A whole snapshot where a delta belongs, a delta where the snapshot belongs.
  EXPECT_TRUE(Sandbox::ApplyPageDeltas(c.whole, {c.whole}).status().IsInvalidArgument());
  EXPECT_TRUE(Sandbox::ApplyPageDeltas(c.deltas[0], {}).status().IsInvalidArgument());
  EXPECT_EQ(Eval(*b, "1 + 1"), "2");  // the refused restores changed nothing
}

// Deltas come back from a store: every damaged one is refused or yields a snapshot that
// RestorePages checks again; none crashes the host.
TEST(PageDelta, DamagedDeltasAreRefused) {
  auto a = NewSandbox();
  Chain c = MakeChain(*a, 2);
  std::mt19937 rng(7);
  int refused = 0;
  for (int round = 0; round < 400; round++) {
    std::string bad = c.deltas[round % 2];
    switch (round % 4) {
      case 0: bad.resize(rng() % bad.size()); break;
      case 1: bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255); break;
      case 2: bad.insert(rng() % bad.size(), 1, static_cast<char>(rng())); break;
      default:
        for (int k = 0; k < 8; k++) bad[rng() % bad.size()] = static_cast<char>(rng());
    }
    std::vector<std::string_view> deltas{c.deltas[0], c.deltas[1]};
    deltas[round % 2] = bad;
    auto applied = Sandbox::ApplyPageDeltas(c.whole, deltas);
    if (!applied.ok()) {
      EXPECT_TRUE(applied.status().IsInvalidArgument()) << applied.status().ToString();
      refused++;
      continue;
    }
    auto b = NewSandbox();
    (void)b->RestorePages(applied.value());  // checked again; the guest's memory is its own
  }
  // The body carries a checksum: only damage to the header (a number in "globals", a
  // descriptor's offset) can pass, and RestorePages checks the header again.
  EXPECT_GT(refused, 380) << refused;
}

// A delta's header comes from the store too: counts far past its memory are refused before
// they size anything.
TEST(PageDelta, HugeCountsInADeltasHeaderAreRefused) {
  auto a = NewSandbox();
  Chain c = MakeChain(*a, 1);
  const std::string& d = c.deltas[0];
  const uint32_t header_len = brig_le_load32(d.data() + 8);
  nlohmann::json header = nlohmann::json::parse(d.substr(12, header_len));
  for (const char* key : {"page_count", "dropped_count"}) {
    for (uint64_t count : {uint64_t{1} << 62, ~uint64_t{0}, uint64_t{1} << 40}) {
      nlohmann::json h = header;
      h[key] = count;
      const std::string text = h.dump();
      std::string bad = d.substr(0, 8);
      AppendLe32(&bad, static_cast<uint32_t>(text.size()));
      bad += text;
      bad += d.substr(12 + header_len);
      auto applied = Sandbox::ApplyPageDeltas(c.whole, {bad});
      EXPECT_TRUE(applied.status().IsInvalidArgument()) << key << " " << count << ": " << applied.status().ToString();
    }
  }
}

// The record-level codec on its own: any two sets of records, the delta between them turns
// the first into the second.
PageRecords RandomRecords(std::mt19937& rng, uint32_t pages) {
  PageRecords r;
  r.clear();
  for (uint32_t page = 0; page < pages; page++) {
    if (rng() % 3 == 0) continue;
    char mask[kRecordMaskBytes] = {};
    size_t words = 0;
    for (int k = 0; k < 3 + static_cast<int>(rng() % 20); k++) {
      const uint32_t word = (rng() % 8) * 64 + rng() % 64;  // clustered: masks repeat often
      const uint64_t m = brig_le_load64(mask + (word / 64) * 8);
      if (!(m & (uint64_t{1} << (word % 64)))) words++;
      brig_le_store64(mask + (word / 64) * 8, m | (uint64_t{1} << (word % 64)));
    }
    std::string record(mask, sizeof mask);
    for (size_t w = 0; w < words; w++) AppendLe64(&record, rng() % 4 == 0 ? rng() : 7);
    r.pages.push_back(page);
    r.data += record;
    r.offsets.push_back(r.data.size());
  }
  return r;
}

PageRecords Mutate(std::mt19937& rng, const PageRecords& from, uint32_t pages) {
  PageRecords fresh = RandomRecords(rng, pages);
  PageRecords out;
  out.clear();
  size_t j = 0;
  for (size_t i = 0; i < from.size(); i++) {
    const int what = static_cast<int>(rng() % 4);  // keep, drop, replace, same mask new words
    if (what == 1) continue;
    std::string record(from.record(i));
    if (what == 2 && j < fresh.size()) record = std::string(fresh.record(j++));
    if (what == 3) {
      for (size_t k = kRecordMaskBytes; k < record.size(); k += 8) brig_le_store64(record.data() + k, rng());
    }
    out.pages.push_back(from.pages[i]);
    out.data += record;
    out.offsets.push_back(out.data.size());
  }
  // New pages past the old ones.
  const uint32_t added = rng() % 5;
  for (uint32_t page = pages; page < pages + added; page++) {
    out.pages.push_back(page);
    out.data += std::string(from.size() ? from.record(0) : std::string(kRecordMaskBytes, '\0'));
    out.offsets.push_back(out.data.size());
  }
  return out;
}

TEST(PageRecordsCodec, ADeltaTurnsOneSetOfRecordsIntoAnother) {
  std::mt19937 rng(11);
  for (int round = 0; round < 300; round++) {
    const uint32_t pages = 1 + rng() % 80;
    PageRecords a = RandomRecords(rng, pages);
    PageRecords b = Mutate(rng, a, pages);
    std::string body;
    uint64_t changed = 0, dropped = 0;
    MakeDeltaBody(a, b, &body, &changed, &dropped);
    PageRecords out;
    ASSERT_TRUE(ApplyDeltaBody(a, body, changed, dropped, pages + 8, &out)) << round;
    EXPECT_EQ(out.pages, b.pages) << round;
    EXPECT_EQ(out.data, b.data) << round;
    EXPECT_EQ(out.offsets, b.offsets) << round;
    EXPECT_LE(body.size(), MaxDeltaBodyBytes(changed, dropped));
    // Applied to the wrong base (one it does not fit) or cut short: refused, never read past.
    if (body.size() > 1) {
      EXPECT_FALSE(ApplyDeltaBody(a, std::string_view(body).substr(0, body.size() - 1), changed, dropped, pages + 8, &out));
    }
    if (dropped > 0) {
      PageRecords empty;
      empty.clear();
      EXPECT_FALSE(ApplyDeltaBody(empty, body, changed, dropped, pages + 8, &out));
    }
    // An index past the memory: refused.
    if (changed > 0) {
      EXPECT_FALSE(ApplyDeltaBody(a, body, changed, dropped, 0, &out)) << round;
    }
  }
  // Identical records: an empty delta.
  std::mt19937 rng2(3);
  PageRecords same = RandomRecords(rng2, 40);
  std::string body;
  uint64_t changed = 9, dropped = 9;
  MakeDeltaBody(same, same, &body, &changed, &dropped);
  EXPECT_EQ(changed, 0u);
  EXPECT_EQ(dropped, 0u);
  EXPECT_TRUE(body.empty());
}

}  // namespace
}  // namespace brig
