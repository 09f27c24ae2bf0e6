// wheels::Installer on every backend (SQLite and a real PostgreSQL, tests/store/pg_harness.h):
// what an install writes, that a refused or failing one writes nothing, replacing and
// uninstalling (with a RECORD the guest may have rewritten).
#include <gtest/gtest.h>

#include "../store/backends.h"
#include "brig/wheels.h"
#include "files/file_service.h"
#include "session/session_manager.h"
#include "wheel_builder.h"
#include "wheels/installer.h"

namespace brig::wheels {
namespace {

using store::testing::BackendNames;
using store::testing::PostgresBackend;
using store::testing::SqliteBackend;
using testing::MakeWheel;
using testing::WheelSpec;

const std::string kSite = std::string(kSitePackages) + "/";

template <typename Backend>
class InstallerTest : public store::testing::ClockedBackendTest<Backend> {
 protected:
  void SetUp() override {
    store::testing::ClockedBackendTest<Backend>::SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return;
    options_.clock = this->Clock();
    options_.max_files_per_session = 20;
    options_.lock_timeout = std::chrono::milliseconds(300);
    manager_ = std::make_unique<session::SessionManager>(*this->store_, options_);
    fs_ = std::make_unique<files::FileService>(*manager_);
    installer_ = std::make_unique<Installer>(*manager_);
  }

  // Every file of session "t": path -> content.
  std::map<std::string, std::string> Files() {
    std::map<std::string, std::string> out;
    auto listed = this->store_->ListFiles("t", "");
    if (!listed.ok()) return out;
    for (const auto& f : listed.value()) {
      auto d = this->store_->GetFile("t", f.path);
      out[f.path] = d.ok() ? d.value().content : "<dir>";
    }
    return out;
  }

  int64_t Version() {
    auto st = this->store_->GetState("t");
    return st.ok() && st.value() ? st.value()->version : 0;
  }

  session::SessionOptions options_;
  std::unique_ptr<session::SessionManager> manager_;
  std::unique_ptr<files::FileService> fs_;
  std::unique_ptr<Installer> installer_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
TYPED_TEST_SUITE(InstallerTest, Backends, BackendNames);

TYPED_TEST(InstallerTest, InstallWritesSitePackagesAndListsIt) {
  auto r = this->installer_->Install("t", MakeWheel(WheelSpec()), "demo_pkg-1.0-py3-none-any.whl");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().package.name, "demo_pkg");
  EXPECT_EQ(r.value().package.version, "1.0");
  EXPECT_EQ(r.value().package.files, 6);
  EXPECT_TRUE(r.value().replaced_version.empty());
  auto files = this->Files();
  EXPECT_EQ(files[kSite + "demo_pkg/__init__.py"], "VALUE = 42\n");
  EXPECT_EQ(files[kSite + "demo_pkg-1.0.dist-info/INSTALLER"], "brig\n");
  EXPECT_EQ(files.size(), 6u);
  EXPECT_EQ(this->Version(), 1);  // a save: live sessions reload
  auto list = this->installer_->List("t");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].name, "demo_pkg");
  EXPECT_EQ(list.value()[0].files, 6);
}

TYPED_TEST(InstallerTest, ARefusedWheelMakesNoSession) {
  WheelSpec so;
  so.files.emplace_back("demo_pkg/_c.so", "x");
  EXPECT_TRUE(this->installer_->Install("new", MakeWheel(so)).status().IsInvalidArgument());
  EXPECT_FALSE(this->manager_->Exists("new").value());
}

TYPED_TEST(InstallerTest, InstallFileFromTheSession) {
  ASSERT_TRUE(this->fs_->Write("t", "/home/user/demo_pkg-1.0-py3-none-any.whl", MakeWheel(WheelSpec())).ok());
  auto r = this->installer_->InstallFile("t", "/home/user/demo_pkg-1.0-py3-none-any.whl");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(this->Files().count(kSite + "demo_pkg/util.py"), 1u);
  // Its name is checked against its contents.
  ASSERT_TRUE(this->fs_->Write("t", "/home/user/other-1.0-py3-none-any.whl", MakeWheel(WheelSpec())).ok());
  auto bad = this->installer_->InstallFile("t", "/home/user/other-1.0-py3-none-any.whl");
  EXPECT_TRUE(bad.status().IsInvalidArgument()) << bad.status().ToString();
  EXPECT_TRUE(this->installer_->InstallFile("t", "/home/user/none.whl").status().IsNotFound());
  EXPECT_TRUE(this->installer_->InstallFile("nobody", "/home/user/none.whl").status().IsNotFound());
}

TYPED_TEST(InstallerTest, RefusedOrFailingInstallsWriteNothing) {
  ASSERT_TRUE(this->fs_->Write("t", "/home/user/keep.txt", "keep").ok());
  const auto before = this->Files();
  const int64_t version = this->Version();
  // A refused wheel: a hash mismatch in its last file.
  WheelSpec bad_hash;
  bad_hash.record_hash_override["demo_pkg/util.py"] = testing::RecordHashOf("other");
  EXPECT_TRUE(this->installer_->Install("t", MakeWheel(bad_hash)).status().IsInvalidArgument());
  // Over the file quota (20 files): everything or nothing.
  WheelSpec big;
  for (int i = 0; i < 30; ++i) big.files.emplace_back("demo_pkg/m" + std::to_string(i) + ".py", "x = 1\n");
  auto quota = this->installer_->Install("t", MakeWheel(big));
  EXPECT_TRUE(quota.status().IsResourceExhausted()) << quota.status().ToString();
  // A file of the session where the wheel needs a directory.
  ASSERT_TRUE(this->fs_->Write("t", kSite + "demo_pkg", "a file").ok());
  const auto with_file = this->Files();
  auto tree = this->installer_->Install("t", MakeWheel(WheelSpec()));
  EXPECT_TRUE(tree.status().IsFailedPrecondition()) << tree.status().ToString();
  EXPECT_EQ(this->Files(), with_file);
  ASSERT_TRUE(this->fs_->Delete("t", kSite + "demo_pkg").ok());
  EXPECT_EQ(this->Files(), before);
  EXPECT_EQ(this->Version(), version + 2);  // only the write and the delete saved
  // A compiled one.
  WheelSpec so;
  so.files.emplace_back("demo_pkg/_c.cpython-311-x86_64-linux-gnu.so", "\x7f" "ELF");
  auto compiled = this->installer_->Install("t", MakeWheel(so));
  EXPECT_NE(compiled.status().message().find("compiled code"), std::string::npos) << compiled.status().ToString();
  EXPECT_EQ(this->Files(), before);
}

TYPED_TEST(InstallerTest, ReplacingAVersionRemovesTheOldFiles) {
  WheelSpec v1;
  v1.files.emplace_back("demo_pkg/old_only.py", "OLD = 1\n");
  ASSERT_TRUE(this->installer_->Install("t", MakeWheel(v1)).ok());
  WheelSpec v2;
  v2.version = "2.0";
  v2.files = {{"demo_pkg/__init__.py", "VALUE = 2\n"}};
  auto r = this->installer_->Install("t", MakeWheel(v2));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r.value().replaced_version, "1.0");
  auto files = this->Files();
  EXPECT_EQ(files.count(kSite + "demo_pkg/old_only.py"), 0u);
  EXPECT_EQ(files.count(kSite + "demo_pkg-1.0.dist-info/METADATA"), 0u);
  EXPECT_EQ(files[kSite + "demo_pkg/__init__.py"], "VALUE = 2\n");
  auto list = this->installer_->List("t");
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].version, "2.0");
}

TYPED_TEST(InstallerTest, UninstallFollowsRecordButStaysInSitePackages) {
  ASSERT_TRUE(this->fs_->Write("t", "/home/user/keep.txt", "keep").ok());
  ASSERT_TRUE(this->installer_->Install("t", MakeWheel(WheelSpec())).ok());
  // The guest can rewrite RECORD: rows pointing outside site-packages are not followed.
  const std::string record_path = kSite + "demo_pkg-1.0.dist-info/RECORD";
  std::string record = this->fs_->Read("t", record_path).value().content;
  record += "../../../../../keep.txt,,\n/home/user/keep.txt,,\n";
  ASSERT_TRUE(this->fs_->Write("t", record_path, record).ok());
  auto gone = this->installer_->Uninstall("t", "Demo-Pkg");  // PEP 503: the same name
  ASSERT_TRUE(gone.ok()) << gone.status().ToString();
  EXPECT_EQ(gone.value().version, "1.0");
  auto files = this->Files();
  EXPECT_EQ(files.size(), 1u);
  EXPECT_EQ(files["/home/user/keep.txt"], "keep");
  EXPECT_TRUE(this->installer_->Uninstall("t", "demo_pkg").status().IsNotFound());
  EXPECT_TRUE(this->installer_->List("t").value().empty());
}

}  // namespace
}  // namespace brig::wheels
