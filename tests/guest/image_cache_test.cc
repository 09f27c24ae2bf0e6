// The image cache's trust rules for directories (src/sandbox/image_cache.h), its pruning
// (never an image a process uses), and the function table every image's clones get: the
// module's own, rebuilt from its element segment, never anything read from the cache file.
#include "sandbox/image_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "engine/image_file.h"
#include "engine/python_instance_internal.h"
#include "sandbox/sandbox_impl.h"

namespace {

using brig::image_cache::UnsafeDirectory;

class Dirs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/brig-image-cache-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::system(("chmod -R u+rwx " + root_ + " && rm -rf " + root_).c_str()); }
  std::string Dir(const std::string& name, mode_t mode) {
    std::string d = root_ + "/" + name;
    EXPECT_EQ(mkdir(d.c_str(), 0700), 0) << d;
    EXPECT_EQ(chmod(d.c_str(), mode), 0) << d;
    return d;
  }
  std::string root_;
};

TEST_F(Dirs, PrivateDirectoriesUnderTmpAreSafe) {
  std::string home = Dir("home", 0700);
  std::string images = Dir("home/images", 0700);
  EXPECT_EQ(UnsafeDirectory(images, home), "");
  EXPECT_EQ(UnsafeDirectory(images, images), "");  // BRIG_IMAGE_CACHE=DIR
}

TEST_F(Dirs, ALinkInADirectoryOthersCanWriteIsUnsafe) {
  // The real path is private, but whoever can write `open` can point the link elsewhere.
  std::string real = Dir("real", 0700);
  std::string open = Dir("open", 0777);
  std::string link = open + "/link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  EXPECT_NE(UnsafeDirectory(link, link).find(open + " is writable by its group or others"), std::string::npos)
      << UnsafeDirectory(link, link);
  ASSERT_EQ(chmod(open.c_str(), 0755), 0);
  EXPECT_EQ(UnsafeDirectory(link, link), "");
}

TEST_F(Dirs, TheRealPathIsCheckedToo) {
  // A private link to a directory others can write.
  std::string shared = Dir("shared", 0777);
  std::string link = root_ + "/link";
  ASSERT_EQ(symlink(shared.c_str(), link.c_str()), 0);
  EXPECT_NE(UnsafeDirectory(link, link).find(shared), std::string::npos) << UnsafeDirectory(link, link);
}

TEST_F(Dirs, StickyIsEnoughOnlyAboveBrigsOwnDirectory) {
  std::string sticky = Dir("sticky", 01777);
  std::string home = Dir("sticky/home", 0700);
  EXPECT_EQ(UnsafeDirectory(home, home), "");
  EXPECT_NE(UnsafeDirectory(home, sticky), "");  // brig's own directories must be private
}

TEST_F(Dirs, AMissingDirectoryIsReported) {
  EXPECT_NE(UnsafeDirectory(root_ + "/nothing", root_ + "/nothing"), "");
}

// Pruning keeps the most recent few image files, and every one a process holds: the one it
// loaded (mapped) and the one it made and saved. Its sessions' page snapshots restore only on
// that image; removed, a worker started after (one replacing a crashed worker) made another
// and restored them from their portable snapshots, which may be versions older, or failed
// ("the snapshot is from another image (and it has no portable snapshot)") before one was
// written. With one image file per binary, a full `ctest` run (dozens of test binaries on one
// cache) removed images that running tests used: WorkerPoolTest.RelayedSavesAreCommittedByThePool
// failed that way now and then.
class Prune : public Dirs {
 protected:
  void SetUp() override {
    Dirs::SetUp();
    cache_ = Dir("images", 0700);
    const char* old = std::getenv("BRIG_IMAGE_CACHE");
    if (old) old_cache_ = old;
    ASSERT_EQ(setenv("BRIG_IMAGE_CACHE", cache_.c_str(), 1), 0);
  }
  void TearDown() override {
    if (old_cache_) {
      setenv("BRIG_IMAGE_CACHE", old_cache_->c_str(), 1);
    } else {
      unsetenv("BRIG_IMAGE_CACHE");
    }
    Dirs::TearDown();
  }
  std::string File(const std::string& name) const { return cache_ + "/" + name; }
  static bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }
  std::string Listing() const {
    std::string names;
    for (const auto& e : std::filesystem::directory_iterator(cache_)) names += e.path().filename().string() + " ";
    return names;
  }
  // Sets the file's modification time `seconds` ago (pruning keeps the most recent).
  static void Age(const std::string& path, int seconds) {
    timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= seconds;
    times[1] = times[0];
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
  }
  // A file named like an image that nobody uses.
  void Unused(const std::string& name, int age) {
    std::ofstream(File(name)) << "not an image";
    Age(File(name), age);
  }
  static brig_python_image* Load(const std::string& path) {
    const char* why = nullptr;
    brig_python_image* image = brig_python_image_load(path.c_str(), &why, nullptr);
    EXPECT_NE(image, nullptr) << path << ": " << (why ? why : "no file");
    return image;
  }
  // Saves an image with `seed` through the cache (made by loading `from`), which prunes.
  // REQUIRES: no image with `seed` in the cache.
  brig_python_image* SaveThroughTheCache(uint64_t seed, const std::string& from) {
    return brig::image_cache::LoadOrMake(seed, [&](bool* save) {
      *save = true;
      return Load(from);
    });
  }
  // This binary's process image, saved outside the cache at root_/source.img (what the
  // cache's saves below are made from), or empty on failure.
  std::string SaveSource() {
    std::string why;
    const brig_python_image* process = brig::ProcessImage(&why);
    EXPECT_NE(process, nullptr) << why;
    const std::string source = root_ + "/source.img";
    if (!process || brig_python_image_save(process, source.c_str()) != 0) return "";
    return source;
  }
  // The file the cache keeps an image made with `seed` in.
  static std::string SeededFile(const std::string& seed_hex) {
    const std::string plain = brig::image_cache::Path();
    return plain.substr(0, plain.size() - 4) + "-seed-" + seed_hex + ".img";
  }
  std::string cache_;
  std::optional<std::string> old_cache_;
};

TEST_F(Prune, KeepsTheImagesProcessesHold) {
  ASSERT_NE(*brig_python_image_file_key(), '\0') << "this binary has no build id: nothing is cached";
  // Outside the cache: held only while the saves below run.
  const std::string source = SaveSource();
  ASSERT_FALSE(source.empty());
  std::string why;
  const brig_python_image* process = brig::ProcessImage(&why);
  // Old files, each past the most recent eight below: one this process loads, one another
  // process holds (its lock, taken here), one nobody holds.
  const std::string loaded = File("loaded.img");
  ASSERT_EQ(brig_python_image_save(process, loaded.c_str()), 0);
  Age(loaded, 3600);
  brig_python_image* held = Load(loaded);
  ASSERT_NE(held, nullptr);
  {
    // Loading took a shared lock, as whoever removes images checks.
    int probe = open(loaded.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(probe, 0);
    EXPECT_NE(flock(probe, LOCK_EX | LOCK_NB), 0);
    EXPECT_EQ(errno, EWOULDBLOCK);
    close(probe);
  }
  Unused("elsewhere.img", 5400);
  int elsewhere = open(File("elsewhere.img").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(elsewhere, 0);
  ASSERT_EQ(flock(elsewhere, LOCK_SH), 0);
  Unused("nobodys.img", 7200);
  for (int i = 0; i < 8; i++) Unused("recent-" + std::to_string(i) + ".img", 1800 - i);

  brig_python_image* made = SaveThroughTheCache(1, source);
  ASSERT_NE(made, nullptr);
  const std::string saved = SeededFile("0000000000000001");
  EXPECT_TRUE(Exists(saved)) << Listing();
  EXPECT_TRUE(Exists(loaded)) << "an image this process loaded was removed";
  EXPECT_TRUE(Exists(File("elsewhere.img"))) << "an image another process holds was removed";
  EXPECT_FALSE(Exists(File("nobodys.img"))) << "an old image nobody holds was kept";

  // Released, it goes; the one this process made and saved stays, even as the oldest.
  close(elsewhere);
  Age(saved, 9000);
  for (int i = 0; i < 8; i++) Unused("newer-" + std::to_string(i) + ".img", 60 - i);
  brig_python_image* again = SaveThroughTheCache(2, source);
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(Exists(File("elsewhere.img"))) << "an image released was kept; " << Listing();
  EXPECT_TRUE(Exists(saved)) << "the image this process made and saved was removed";
  EXPECT_TRUE(Exists(loaded));
  brig_python_image_destroy(again);
  brig_python_image_destroy(made);
  brig_python_image_destroy(held);
}

// Hold (brig serve's supervisor, for its workers' image) takes only an image file directly in
// the cache directory, as a worker would name it, and keeps it through a prune.
TEST_F(Prune, HoldTakesOnlyImageFilesOfTheCache) {
  namespace image_cache = brig::image_cache;
  const std::string source = SaveSource();
  ASSERT_FALSE(source.empty());
  ASSERT_EQ(mkdir(File("sub").c_str(), 0700), 0);
  Unused("sub/nested.img", 7000);
  Unused(".hidden.img", 7000);
  Unused("notes.txt", 7000);
  ASSERT_EQ(mkfifo(File("fifo.img").c_str(), 0600), 0);  // opening it to read would wait
  ASSERT_EQ(symlink(source.c_str(), File("link.img").c_str()), 0);
  for (const std::string& path : {std::string(), source, File("sub/nested.img"), File("../source.img"),
                                  File(".hidden.img"), File("notes.txt"), File("fifo.img"), File("link.img"),
                                  File("missing.img"), cache_ + "//held.img", cache_}) {
    EXPECT_FALSE(image_cache::Hold(path)) << path;
  }
  Unused("held.img", 7200);
  Unused("unheld.img", 7100);
  EXPECT_TRUE(image_cache::Hold(File("held.img")));
  EXPECT_TRUE(image_cache::Hold(File("held.img"))) << "held once, and again";
  for (int i = 0; i < 8; i++) Unused("recent-" + std::to_string(i) + ".img", 1800 - i);

  brig_python_image* made = SaveThroughTheCache(3, source);
  ASSERT_NE(made, nullptr);
  EXPECT_EQ(image_cache::HeldFile(), SeededFile("0000000000000003"))
      << "the file this process made and saved, and holds";
  EXPECT_TRUE(Exists(File("held.img"))) << "a held image was removed; " << Listing();
  EXPECT_FALSE(Exists(File("unheld.img"))) << "the cache was not pruned; " << Listing();
  EXPECT_TRUE(Exists(File("sub/nested.img")));
  brig_python_image_destroy(made);
}

// Hold keeps the 8 files named most recently: a supervisor whose workers' image changed
// more than 8 times still holds the one they use now (before, it stopped holding new ones).
TEST_F(Prune, HoldLetsGoOfTheFilesNamedLeastRecently) {
  namespace image_cache = brig::image_cache;
  auto held = [&](int i) {  // whether some open file holds it: an exclusive lock is refused
    int probe = open(File("f" + std::to_string(i) + ".img").c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(probe, 0);
    const bool locked = flock(probe, LOCK_EX | LOCK_NB) != 0;
    close(probe);
    return locked;
  };
  for (int i = 0; i < 10; i++) Unused("f" + std::to_string(i) + ".img", 100);
  for (int i = 0; i < 8; i++) ASSERT_TRUE(image_cache::Hold(File("f" + std::to_string(i) + ".img"))) << i;
  ASSERT_TRUE(image_cache::Hold(File("f0.img"))) << "named again: now the most recent";
  for (int i = 0; i < 8; i++) EXPECT_TRUE(held(i)) << i;
  EXPECT_TRUE(image_cache::Hold(File("f8.img")));
  EXPECT_TRUE(image_cache::Hold(File("f9.img")));
  EXPECT_FALSE(held(1)) << "the least recently named was kept";
  EXPECT_FALSE(held(2));
  for (int i : {0, 3, 4, 5, 6, 7, 8, 9}) EXPECT_TRUE(held(i)) << i;
  ASSERT_TRUE(image_cache::Hold(File("f1.img"))) << "a file let go can be held again";
  EXPECT_TRUE(held(1));
  EXPECT_FALSE(held(3)) << "in the place of the least recent";
}

TEST(ModuleTable, IsTheTableInstantiationMakes) {
  // A cold instance's table comes from the generated init_tables; images get the table rebuilt
  // from the element segment (brig_python_module_table): slot for slot the same functions.
  brig_python_instance* p = brig_python_instance_create(nullptr, 0);
  ASSERT_NE(p, nullptr);
  const wasm_rt_funcref_table_t& t = p->module.w2c_T0;
  const wasm_rt_funcref_t* m = brig_python_module_table();
  ASSERT_EQ(t.size, BRIG_W2C_TABLE_SIZE);
  uint32_t functions = 0;
  for (uint32_t i = 0; i < t.size; i++) {
    EXPECT_EQ(t.data[i].func, m[i].func) << i;
    EXPECT_EQ(t.data[i].func_type, m[i].func_type) << i;
    functions += m[i].func != nullptr;
  }
  EXPECT_EQ(functions, BRIG_W2C_ELEM_COUNT);
  brig_python_instance_destroy(p);
}

}  // namespace
