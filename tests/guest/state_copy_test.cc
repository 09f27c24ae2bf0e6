// The host-side pieces behind rollback and fork: copies of a file system share file contents
// copy-on-write and change independently; the tape replays exactly what it recorded and
// notices a replay that asks for something else.
#include <gtest/gtest.h>

#include <thread>

#include "vfs/file_system.h"
#include "wasi/tape.h"

namespace {

using brig::vfs::Error;
using brig::vfs::FileSystem;

TEST(FileSystemClone, CopiesTheTreeTimesInodesAndQuota) {
  FileSystem fs;
  ASSERT_EQ(fs.WriteFile("/home/user/a/b.txt", "hello"), Error::kOk);
  ASSERT_EQ(fs.WriteFile("/tmp/t", "tmp"), Error::kOk);
  FileSystem::NodeMap map;
  auto copy = fs.Clone(&map);
  EXPECT_EQ(copy->ReadFile("/home/user/a/b.txt").value_or(""), "hello");
  EXPECT_EQ(copy->ReadFile("/tmp/t").value_or(""), "tmp");
  for (const char* path : {"/", "/tmp", "/home/user/a", "/home/user/a/b.txt", "/usr/local/lib"}) {
    auto a = fs.StatPath(path);
    auto b = copy->StatPath(path);
    ASSERT_TRUE(a.ok() && b.ok()) << path;
    EXPECT_EQ(a.value().ino, b.value().ino) << path;
    EXPECT_EQ(a.value().mtime_ns, b.value().mtime_ns) << path;
    EXPECT_EQ(a.value().ctime_ns, b.value().ctime_ns) << path;
  }
  EXPECT_EQ(copy->bytes_used(), fs.bytes_used());
  EXPECT_EQ(copy->nodes_used(), fs.nodes_used());
  EXPECT_EQ(copy->generation(), fs.generation());
  // A new file gets the same inode number in both.
  ASSERT_EQ(fs.WriteFile("/tmp/n", "1"), Error::kOk);
  ASSERT_EQ(copy->WriteFile("/tmp/n", "1"), Error::kOk);
  EXPECT_EQ(fs.StatPath("/tmp/n").value().ino, copy->StatPath("/tmp/n").value().ino);
}

TEST(FileSystemClone, ContentsAreSharedUntilOneSideWrites) {
  FileSystem fs;
  std::string big(1 << 20, 'x');
  ASSERT_EQ(fs.WriteFile("/tmp/big", big), Error::kOk);
  FileSystem::NodeMap map;
  auto copy = fs.Clone(&map);
  auto original = fs.Lookup(fs.root(), "/tmp/big").value();
  auto copied = copy->Lookup(copy->root(), "/tmp/big").value();
  EXPECT_NE(original.get(), copied.get());
  EXPECT_EQ(original->contents().data(), copied->contents().data());  // the same bytes
  EXPECT_TRUE(original->data.shared());
  uint8_t y = 'y';
  ASSERT_TRUE(copy->Write(copied, 10, {&y, 1}).ok());
  EXPECT_NE(original->contents().data(), copied->contents().data());
  EXPECT_EQ(fs.ReadFile("/tmp/big").value()[10], 'x');
  EXPECT_EQ(copy->ReadFile("/tmp/big").value()[10], 'y');
  original.reset();  // (a held node stays charged, as an open file does)
  ASSERT_EQ(fs.Remove("/tmp/big"), Error::kOk);
  EXPECT_EQ(copy->ReadFile("/tmp/big").value().size(), big.size());
  EXPECT_EQ(fs.bytes_used(), 0u);
  EXPECT_EQ(copy->bytes_used(), big.size());
}

TEST(FileSystemClone, NodesMapAndRemovedOpenFilesAreCopiedOnDemand) {
  FileSystem fs;
  ASSERT_EQ(fs.WriteFile("/tmp/open", "still here"), Error::kOk);
  auto held = fs.Lookup(fs.root(), "/tmp/open").value();  // like an open descriptor
  ASSERT_EQ(fs.Remove("/tmp/open"), Error::kOk);
  FileSystem::NodeMap map;
  auto copy = fs.Clone(&map);
  EXPECT_FALSE(copy->ReadFile("/tmp/open").has_value());
  auto copied = copy->CopyOf(held, &map);
  ASSERT_TRUE(copied);
  EXPECT_NE(copied.get(), held.get());
  EXPECT_EQ(copied->contents(), "still here");
  EXPECT_FALSE(copied->linked);
  EXPECT_EQ(copy->bytes_used(), 10u);  // charged while held, as in the original
  EXPECT_EQ(copy->CopyOf(held, &map), copied);  // once
  // The root maps to the copy's root; nodes of the tree map to their copies.
  EXPECT_EQ(copy->CopyOf(fs.root(), &map), copy->root());
}

TEST(FileSystemClone, GenerationCountsChanges) {
  FileSystem fs;
  uint64_t g = fs.generation();
  (void)fs.ReadFile("/tmp/none");
  EXPECT_EQ(fs.generation(), g);
  ASSERT_EQ(fs.WriteFile("/tmp/a", "1"), Error::kOk);
  EXPECT_GT(fs.generation(), g);
}

TEST(FileSystemClone, CopiesChangeIndependentlyOnTwoThreads) {
  FileSystem fs;
  ASSERT_EQ(fs.WriteFile("/tmp/shared", std::string(100000, 's')), Error::kOk);
  FileSystem::NodeMap m1, m2;
  auto a = fs.Clone(&m1);
  auto b = fs.Clone(&m2);
  auto writer = [](FileSystem* f, char c) {
    auto n = f->Lookup(f->root(), "/tmp/shared").value();
    for (int i = 0; i < 2000; i++) {
      uint8_t v = static_cast<uint8_t>(c);
      ASSERT_TRUE(f->Write(n, static_cast<uint64_t>(i) * 37 % 100000, {&v, 1}).ok());
    }
  };
  std::thread ta(writer, a.get(), 'a');
  std::thread tb(writer, b.get(), 'b');
  ta.join();
  tb.join();
  EXPECT_EQ(fs.ReadFile("/tmp/shared").value(), std::string(100000, 's'));
  EXPECT_EQ(a->ReadFile("/tmp/shared").value().find('b'), std::string::npos);
  EXPECT_EQ(b->ReadFile("/tmp/shared").value().find('a'), std::string::npos);
}

TEST(FileSystemClock, FileTimesComeFromTheClock) {
  FileSystem fs;
  uint64_t t = 1000;
  fs.set_clock([&t] { return t++; });
  ASSERT_EQ(fs.WriteFile("/tmp/a", "x"), Error::kOk);
  auto st = fs.StatPath("/tmp/a").value();
  EXPECT_LT(st.mtime_ns, 1100u);
  EXPECT_GE(st.mtime_ns, 1000u);
}

using brig::wasi::Tape;

TEST(Tape, ReplaysWhatItRecorded) {
  Tape tape;
  Tape::Recording rec;
  tape.Record(&rec);
  EXPECT_EQ(tape.Value(7), 7u);
  uint8_t bytes[3] = {1, 2, 3};
  tape.Bytes(bytes, 3);
  EXPECT_EQ(tape.Value(9), 9u);
  tape.Stop();
  EXPECT_FALSE(tape.overflowed());

  tape.Replay(&rec);
  EXPECT_EQ(tape.Value(100), 7u);
  uint8_t out[3] = {0, 0, 0};
  tape.Bytes(out, 3);
  EXPECT_EQ(out[0] + out[1] + out[2], 6);
  EXPECT_FALSE(tape.Finished());
  EXPECT_EQ(tape.Value(100), 9u);
  EXPECT_TRUE(tape.Finished());
  tape.Stop();
  EXPECT_EQ(tape.Value(5), 5u);  // off: live values
}

TEST(Tape, NoticesADifferentReplay) {
  Tape tape;
  Tape::Recording rec;
  tape.Record(&rec);
  tape.Value(1);
  tape.Stop();
  tape.Replay(&rec);
  uint8_t b[2] = {4, 5};
  tape.Bytes(b, 2);  // bytes where a value was recorded
  EXPECT_TRUE(tape.diverged());
  EXPECT_EQ(b[0], 4);  // left live
  EXPECT_FALSE(tape.Finished());
  tape.Replay(&rec);
  tape.Value(0);
  tape.Value(0);  // past the end
  EXPECT_TRUE(tape.diverged());
}

TEST(Tape, ARecordingIsBounded) {
  Tape tape;
  Tape::Recording rec;
  tape.Record(&rec, 100);
  for (int i = 0; i < 100; i++) tape.Value(static_cast<uint64_t>(i));
  EXPECT_TRUE(tape.overflowed());
  EXPECT_LE(rec.size(), 100u);
}

}  // namespace
