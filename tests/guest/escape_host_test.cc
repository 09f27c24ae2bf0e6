// Host-side proof for the escape cases (cases/escape.test): what the guest tried to write or
// read on the host did not reach the host.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "brig/sandbox.h"

namespace {

TEST(EscapeHost, WritesAimedAtHostPathsDoNotReachTheHost) {
  std::string marker = "/tmp/brig-escape-probe-" + std::to_string(getpid());
  std::filesystem::remove(marker);
  auto sandbox = brig::Sandbox::Create();
  ASSERT_TRUE(sandbox.ok());
  std::string code =
      "import os\n"
      "written = []\n"
      "for p in ['" + marker + "', '/home/user/../../.." + marker + "', '../../../.." + marker + "']:\n"
      "    with open(p, 'w') as f:\n"
      "        f.write('pwned')\n"
      "    written.append(p)\n"
      "len(written)\n";
  brig::ExecutionResult r = sandbox.value()->Execute(code);
  // Inside the sandbox /tmp is its own, so the writes may succeed there: they must not be on
  // the host.
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(EscapeHost, HostFileContentsNeverAppear) {
  std::ifstream passwd("/etc/passwd");
  std::string first_line;
  std::getline(passwd, first_line);
  ASSERT_FALSE(first_line.empty());
  auto sandbox = brig::Sandbox::Create();
  ASSERT_TRUE(sandbox.ok());
  brig::ExecutionResult r = sandbox.value()->Execute(
      "import os\n"
      "found = []\n"
      "for root, dirs, files in os.walk('/'):\n"
      "    if root.startswith('/usr/local/lib/python3.11'):\n"
      "        continue\n"
      "    for name in files:\n"
      "        found.append(open(os.path.join(root, name), 'rb').read())\n"
      "print(b''.join(found))\n");
  EXPECT_TRUE(r.ok) << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find(first_line), std::string::npos);
}

}  // namespace
