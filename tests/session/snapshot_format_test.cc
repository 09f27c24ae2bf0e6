// The snapshot bytes of export/import (session/snapshot_format.h) as untrusted input: a
// round trip, then every field damaged in turn, each with a valid checksum (so that the
// field's own check is what refuses it), truncations, flipped bytes and random mutations.
#include "session/snapshot_format.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "brig/file_info.h"
#include "util/hmac_sha256.h"
#include "util/little_endian.h"

namespace brig::session {
namespace {

SessionSnapshot Sample() {
  SessionSnapshot s;
  s.thread_id = "agent-7 ✓";
  s.exported_at = 1'780'000'000'000'000;
  s.metadata = {{"owner", "me"}, {"n", 3}};
  s.has_state = true;
  s.guest_build_id = "cpython-3.11.2-6+deb12u8-0123456789abcdef";
  s.image_digest = "00ff00ff00ff00ff";
  s.pages = std::string("BRIGPG01\0\1\2", 11) + std::string(3000, 'p');
  s.portable = std::string(500, 'q');
  s.not_portable = {{"gen", "generator"}, {"f", "open file"}};
  s.files = {{"/data/raw.bin", "application/octet-stream", std::string("\0\xff\x01zz", 5)},
             {"/home/user/a.txt", "text/plain", "hello\n"},
             {"/home/user/empty", std::string(kDirectoryType), ""},
             {"/tmp/x/y z:1.csv", "text/csv", "a,b\n"}};
  s.nodes = {{"/home/user/a.txt", false, 0600, {{"user.k", std::string("v\0\xff", 3)}}},
             {"/tmp/p", true, 0640, {}}};
  return s;
}

// The parts of encoded bytes, to rebuild them with one part changed and a valid checksum.
struct Parts {
  uint32_t version;
  nlohmann::json header;
  std::string rest;  // everything between the header and the checksum
};

Parts Split(const std::string& bytes) {
  Parts p;
  LeReader r(std::string_view(bytes).substr(8));
  uint32_t len = 0;
  EXPECT_TRUE(r.U32(&p.version) && r.U32(&len));
  p.header = nlohmann::json::parse(bytes.substr(16, len));
  p.rest = bytes.substr(16 + len, bytes.size() - 16 - len - 32);
  return p;
}

// magic | version | header length | header text | rest | SHA-256 of it all.
std::string Seal(uint32_t version, const std::string& header_text, const std::string& rest) {
  std::string out = "BRIGSNAP";
  AppendLe32(&out, version);
  AppendLe32(&out, static_cast<uint32_t>(header_text.size()));
  out += header_text;
  out += rest;
  const util::Sha256Digest sum = util::Sha256(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

std::string Seal(const Parts& p) { return Seal(p.version, p.header.dump(), p.rest); }

SnapshotLimits Limits() { return SnapshotLimits{}; }

// Decoding `bytes` fails with InvalidArgument whose message holds `says`.
void ExpectRefused(const std::string& bytes, const std::string& says, const SnapshotLimits& limits = Limits()) {
  StatusOr<SessionSnapshot> r = DecodeSnapshot(bytes, limits);
  ASSERT_FALSE(r.ok()) << "accepted; expected: " << says;
  EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
}

// As ExpectRefused, for a quota: ResourceExhausted.
void ExpectOverQuota(const std::string& bytes, const std::string& says, const SnapshotLimits& limits = Limits()) {
  StatusOr<SessionSnapshot> r = DecodeSnapshot(bytes, limits);
  ASSERT_FALSE(r.ok()) << "accepted; expected: " << says;
  EXPECT_TRUE(r.status().IsResourceExhausted()) << r.status().ToString();
  EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
}

TEST(SnapshotFormat, RoundTripKeepsEveryField) {
  const SessionSnapshot s = Sample();
  const std::string bytes = EncodeSnapshot(s);
  EXPECT_EQ(bytes.substr(0, 8), "BRIGSNAP");
  StatusOr<SessionSnapshot> back = DecodeSnapshot(bytes, Limits());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const SessionSnapshot& b = back.value();
  EXPECT_EQ(b.thread_id, s.thread_id);
  EXPECT_EQ(b.exported_at, s.exported_at);
  EXPECT_EQ(b.metadata, s.metadata);
  EXPECT_TRUE(b.has_state);
  EXPECT_EQ(b.guest_build_id, s.guest_build_id);
  EXPECT_EQ(b.image_digest, s.image_digest);
  EXPECT_EQ(b.pages, s.pages);
  EXPECT_EQ(b.portable, s.portable);
  EXPECT_EQ(b.not_portable, s.not_portable);
  ASSERT_EQ(b.files.size(), s.files.size());
  for (size_t i = 0; i < s.files.size(); ++i) {
    EXPECT_EQ(b.files[i].path, s.files[i].path);
    EXPECT_EQ(b.files[i].content_type, s.files[i].content_type);
    EXPECT_EQ(b.files[i].content, s.files[i].content);
  }
}

TEST(SnapshotFormat, WithoutStateOrFilesOrPages) {
  SessionSnapshot s;
  s.thread_id = "t";
  StatusOr<SessionSnapshot> back = DecodeSnapshot(EncodeSnapshot(s), Limits());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FALSE(back.value().has_state);
  EXPECT_TRUE(back.value().files.empty());
  // Portable only: no build or digest.
  s.has_state = true;
  s.portable = "p";
  back = DecodeSnapshot(EncodeSnapshot(s), Limits());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back.value().portable, "p");
  EXPECT_TRUE(back.value().pages.empty());
}

TEST(SnapshotFormat, NotASnapshotOrANewerFormat) {
  ExpectRefused("", "not a brig session snapshot");
  ExpectRefused("PK\3\4 a zip file", "not a brig session snapshot");
  ExpectRefused("BRIGSNA", "not a brig session snapshot");
  ExpectRefused("BRIGSNAP", "truncated");
  const Parts p = Split(EncodeSnapshot(Sample()));
  StatusOr<SessionSnapshot> newer = DecodeSnapshot(Seal(3, p.header.dump(), p.rest), Limits());
  ASSERT_FALSE(newer.ok());
  EXPECT_TRUE(newer.status().IsInvalidArgument());
  EXPECT_NE(newer.status().message().find("format version 3, newer than this brig reads (2)"), std::string::npos)
      << newer.status().message();
  // A newer version is named even when the rest would not pass: it is checked first.
  std::string future = EncodeSnapshot(Sample());
  future[8] = 9;
  ExpectRefused(future, "format version 9");
  ExpectRefused(Seal(0, p.header.dump(), p.rest), "format version 0");
}

TEST(SnapshotFormat, EveryTruncationAndEveryFlippedByteIsRefused) {
  const std::string bytes = EncodeSnapshot(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    StatusOr<SessionSnapshot> r = DecodeSnapshot(std::string_view(bytes).substr(0, n), Limits());
    ASSERT_FALSE(r.ok()) << "a snapshot cut to " << n << " bytes was accepted";
    ASSERT_TRUE(r.status().IsInvalidArgument()) << n << ": " << r.status().ToString();
  }
  for (size_t at = 0; at < bytes.size(); at += 7) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x20);
    StatusOr<SessionSnapshot> r = DecodeSnapshot(damaged, Limits());
    ASSERT_FALSE(r.ok()) << "a flipped byte at " << at << " was accepted";
    ASSERT_TRUE(r.status().IsInvalidArgument()) << at << ": " << r.status().ToString();
  }
  std::string tail = bytes;
  tail[tail.size() - 40] ^= 1;  // file content, before the checksum
  ExpectRefused(tail, "checksum does not match");
  ExpectRefused(bytes + "x", "checksum does not match");
}

TEST(SnapshotFormat, HeaderFramingIsChecked) {
  const Parts p = Split(EncodeSnapshot(Sample()));
  const std::string text = p.header.dump();
  // A header length past the end, or 0.
  std::string longer = Seal(p);
  longer[12] = '\xff';
  longer[13] = '\xff';
  longer[14] = '\xff';
  {
    // Reseal with the broken length: the checksum passes, the length check must refuse.
    std::string body = longer.substr(0, longer.size() - 32);
    const util::Sha256Digest sum = util::Sha256(body);
    body.append(reinterpret_cast<const char*>(sum.data()), sum.size());
    ExpectRefused(body, "header length");
  }
  ExpectRefused(Seal(kSnapshotVersion, "", text + p.rest), "header length");
  ExpectRefused(Seal(kSnapshotVersion, "{\"thread_id\": \"\xff\"}", p.rest), "not UTF-8");
  ExpectRefused(Seal(kSnapshotVersion, "[1, 2]", p.rest), "not a JSON object");
  ExpectRefused(Seal(kSnapshotVersion, text.substr(0, text.size() - 1), "}" + p.rest), "not a JSON object");
  // The sizes after the header must account for every byte.
  ExpectRefused(Seal(kSnapshotVersion, text, p.rest + "extra"), "add up");
  ExpectRefused(Seal(kSnapshotVersion, text, p.rest.substr(1)), "add up");
}

TEST(SnapshotFormat, VersionOneWithoutNodesIsStillRead) {
  Parts p = Split(EncodeSnapshot(Sample()));
  p.header.erase("nodes");
  StatusOr<SessionSnapshot> old = DecodeSnapshot(Seal(1, p.header.dump(), p.rest), Limits());
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(old.value().nodes.empty());
  EXPECT_EQ(old.value().files.size(), 4u);
  // Version 1 never had nodes: a header with them is not one.
  ExpectRefused(Seal(1, Split(EncodeSnapshot(Sample())).header.dump(), p.rest), "unknown header field 'nodes'");
}

TEST(SnapshotFormat, NodesAreChecked) {
  const SessionSnapshot sample = Sample();
  StatusOr<SessionSnapshot> back = DecodeSnapshot(EncodeSnapshot(sample), Limits());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back.value().nodes.size(), 2u);
  EXPECT_EQ(back.value().nodes[0].path, "/home/user/a.txt");
  EXPECT_EQ(back.value().nodes[0].mode, 0600);
  EXPECT_EQ(back.value().nodes[0].xattrs.at("user.k"), std::string("v\0\xff", 3));
  EXPECT_TRUE(back.value().nodes[1].named_pipe);
  const Parts good = Split(EncodeSnapshot(sample));
  auto with_nodes = [&](nlohmann::json nodes) {
    Parts p = good;
    p.header["nodes"] = std::move(nodes);
    return Seal(p);
  };
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 010000}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", -1}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 0644}, {"extra", 1}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 0644}, {"named_pipe", 1}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 0644}, {"xattrs", {{"!!", "AA=="}}}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 0644}, {"xattrs", {{"AA=="}}}}}), "a nodes entry");
  ExpectRefused(with_nodes({{{"path", "relative"}, {"mode", 0644}}}), "");
  ExpectRefused(with_nodes({{{"path", "/tmp/../etc"}, {"mode", 0644}}}), "");
  ExpectRefused(with_nodes({{{"path", "/tmp/q"}, {"mode", 0644}}, {{"path", "/tmp/q"}, {"mode", 0600}}}), "twice");
  ExpectRefused(with_nodes({{{"path", "/home/user/a.txt"}, {"mode", 0644}, {"named_pipe", true}}}),
                "both a file and a named pipe");
  SnapshotLimits few = Limits();
  few.max_nodes = 1;
  ExpectOverQuota(EncodeSnapshot(sample), "more than 1", few);
  // Without interpreter state (a reset session's export) they are the files' still.
  Parts stateless = good;
  stateless.header["has_state"] = false;
  stateless.header["pages_bytes"] = 0;
  stateless.header["portable_bytes"] = 0;
  stateless.header["guest_build_id"] = "";
  stateless.header["image_digest"] = "";
  stateless.header["not_portable"] = nlohmann::json::object();
  stateless.rest = good.rest.substr(sample.pages.size() + sample.portable.size());
  StatusOr<SessionSnapshot> reset = DecodeSnapshot(Seal(stateless), Limits());
  ASSERT_TRUE(reset.ok()) << reset.status().ToString();
  EXPECT_FALSE(reset.value().has_state);
  EXPECT_EQ(reset.value().nodes.size(), 2u);
}

TEST(SnapshotFormat, EveryHeaderFieldIsCheckedForPresenceAndType) {
  const Parts good = Split(EncodeSnapshot(Sample()));
  for (const auto& [key, value] : good.header.items()) {
    SCOPED_TRACE(key);
    Parts missing = good;
    missing.header.erase(key);
    ExpectRefused(Seal(missing), "'" + key + "'");
    Parts wrong = good;
    wrong.header[key] = value.is_string() ? nlohmann::json(42) : nlohmann::json("text");
    ExpectRefused(Seal(wrong), "'" + key + "'");
  }
  Parts extra = good;
  extra.header["surprise"] = 1;
  ExpectRefused(Seal(extra), "unknown header field 'surprise'");
}

TEST(SnapshotFormat, FieldValuesAreChecked) {
  const Parts good = Split(EncodeSnapshot(Sample()));
  auto with = [&](const char* key, nlohmann::json v) {
    Parts p = good;
    p.header[key] = std::move(v);
    return Seal(p);
  };
  ExpectRefused(with("thread_id", ""), "thread_id");
  ExpectRefused(with("thread_id", "a\nb"), "control character");
  ExpectRefused(with("thread_id", std::string(256, 't')), "thread_id");
  ExpectRefused(with("exported_at", nlohmann::json(uint64_t{1} << 63)), "exported_at");
  ExpectRefused(with("guest_build_id", "has space"), "malformed");
  ExpectRefused(with("guest_build_id", std::string(300, 'b')), "malformed");
  ExpectRefused(with("image_digest", "tab\there"), "malformed");
  ExpectRefused(with("guest_build_id", ""), "exactly when there is a page snapshot");
  ExpectRefused(with("not_portable", {{"x", 1}}), "not_portable");
  ExpectRefused(with("has_state", false), "without interpreter state holds one");
  ExpectRefused(with("pages_bytes", nlohmann::json(uint64_t{1} << 40)), "more than");
  ExpectRefused(with("portable_bytes", nlohmann::json(uint64_t{1} << 62)), "more than");
  ExpectRefused(with("pages_bytes", -1), "'pages_bytes'");
  // A state with neither snapshot.
  SessionSnapshot empty_state;
  empty_state.thread_id = "t";
  empty_state.has_state = true;
  ExpectRefused(EncodeSnapshot(empty_state), "neither a page nor a portable snapshot");
  // Build and digest without pages.
  SessionSnapshot no_pages = empty_state;
  no_pages.portable = "p";
  no_pages.guest_build_id = "b";
  no_pages.image_digest = "d";
  ExpectRefused(EncodeSnapshot(no_pages), "exactly when there is a page snapshot");
}

TEST(SnapshotFormat, FileEntriesFollowTheStoreAndGuestRules) {
  const Parts good = Split(EncodeSnapshot(Sample()));
  // Entry i replaced by `entry` (sizes kept consistent by giving the same size).
  auto with_entry = [&](size_t i, nlohmann::json entry) {
    Parts p = good;
    p.header["files"][i] = std::move(entry);
    return Seal(p);
  };
  const nlohmann::json a = good.header["files"][1];  // /home/user/a.txt, 6 bytes
  auto with_path = [&](const std::string& path) {
    nlohmann::json e = a;
    e["path"] = path;
    return with_entry(1, e);
  };
  ExpectRefused(with_path("home/user/a.txt"), "absolute");
  ExpectRefused(with_path("/home/user/../etc/passwd"), "'.' or '..'");
  ExpectRefused(with_path("/home/user/./a"), "'.' or '..'");
  ExpectRefused(with_path("/home//a"), "file path");
  ExpectRefused(with_path("/home/user/a\x01"), "control character");
  ExpectRefused(with_path("/home/user/" + std::string(256, 'n')), "255");
  ExpectRefused(with_path("/" + std::string(4100, 'n')), "file path");
  ExpectRefused(with_path("/data/raw.bin"), "appears twice");
  ExpectRefused(with_path("/data/raw.bin/inside"), "which is a file");
  nlohmann::json typed = a;
  typed["content_type"] = "";
  ExpectRefused(with_entry(1, typed), "content type");
  typed["content_type"] = "text/\x07plain";
  ExpectRefused(with_entry(1, typed), "content type");
  typed["content_type"] = std::string(256, 't');
  ExpectRefused(with_entry(1, typed), "content type");
  nlohmann::json extra = a;
  extra["mode"] = 420;
  ExpectRefused(with_entry(1, extra), "{path, content_type, size}");
  nlohmann::json no_size = a;
  no_size.erase("size");
  no_size["sizes"] = 6;
  ExpectRefused(with_entry(1, no_size), "{path, content_type, size}");
  ExpectRefused(with_entry(1, "a string"), "{path, content_type, size}");
  // A directory entry with content.
  Parts dir = good;
  dir.header["files"][2]["size"] = 4;
  dir.rest += "abcd";
  ExpectRefused(Seal(dir), "directory /home/user/empty has content");
  // Sizes that disagree with what follows.
  Parts bigger = good;
  bigger.header["files"][1]["size"] = 7;
  ExpectRefused(Seal(bigger), "add up");
}

TEST(SnapshotFormat, QuotasOfTheImportingSideAreResourceExhausted) {
  const std::string bytes = EncodeSnapshot(Sample());
  SnapshotLimits limits;
  limits.max_files = 2;  // the sample has 3 files and a directory
  ExpectOverQuota(bytes, "more than 2 files", limits);
  limits = SnapshotLimits{};
  limits.max_bytes = 10;  // the sample's files hold 15 bytes
  ExpectOverQuota(bytes, "15 bytes", limits);
  limits = SnapshotLimits{};
  limits.max_directories = 0;
  ExpectOverQuota(bytes, "empty directories", limits);
  // A file over 20 MiB: refused by its size, before its bytes are looked at.
  Parts p = Split(bytes);
  p.header["files"][1]["size"] = kMaxFileBytes + 1;
  p.rest += std::string(kMaxFileBytes + 1 - 6, 'x');
  ExpectOverQuota(Seal(p), "limit per file");
}

// Random damage behind a valid checksum never crashes and is refused or decodes whole.
TEST(SnapshotFormat, RandomDamageBehindAValidChecksum) {
  const std::string bytes = EncodeSnapshot(Sample());
  const std::string body = bytes.substr(0, bytes.size() - 32);
  std::mt19937 rng(12345);
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string b = body;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0: b[at] = static_cast<char>(rng()); break;
        case 1: b.erase(at, 1 + rng() % 8); break;
        default: b.insert(at, std::string(1 + rng() % 8, static_cast<char>(rng()))); break;
      }
      if (b.empty()) b.push_back('B');  // not b = "B": GCC 12 warns falsely (-Wrestrict) on that
    }
    const util::Sha256Digest sum = util::Sha256(b);
    b.append(reinterpret_cast<const char*>(sum.data()), sum.size());
    StatusOr<SessionSnapshot> r = DecodeSnapshot(b, Limits());
    if (r.ok()) {
      ++accepted;
      continue;
    }
    ASSERT_TRUE(r.status().IsInvalidArgument() || r.status().IsResourceExhausted()) << r.status().ToString();
  }
  // Most edits break something; some hit bytes whose change is still a valid snapshot.
  EXPECT_LT(accepted, 1500);
}

}  // namespace
}  // namespace brig::session
