// The image cache's trust rules for directories (src/sandbox/image_cache.h), and the function
// table every image's clones get: the module's own, rebuilt from its element segment, never
// anything read from the cache file.
#include "sandbox/image_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/python_instance_internal.h"

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
