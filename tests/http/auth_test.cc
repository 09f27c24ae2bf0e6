#include "server/auth.h"

#include <gtest/gtest.h>

#include "server/signed_link.h"

namespace brig::server {
namespace {

TEST(TokenSetTest, ParsesTokensWithOptions) {
  auto set = TokenSet::Parse(
      "# admin\n"
      "admin-token-0123456789abcdef\n"
      "\n"
      "agent-token-0123456789abcdef name=agents threads=agent-7,job-* read-only\r\n",
      "test");
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set.value().size(), 2u);
  const Token* admin = set.value().Find("admin-token-0123456789abcdef");
  ASSERT_NE(admin, nullptr);
  EXPECT_TRUE(admin->all_threads());
  EXPECT_FALSE(admin->read_only);
  EXPECT_TRUE(admin->MayUse("anything"));
  const Token* agent = set.value().Find("agent-token-0123456789abcdef");
  ASSERT_NE(agent, nullptr);
  EXPECT_EQ(agent->name, "agents");
  EXPECT_TRUE(agent->read_only);
  EXPECT_TRUE(agent->MayUse("agent-7"));
  EXPECT_FALSE(agent->MayUse("agent-70"));
  EXPECT_FALSE(agent->MayUse("agent-"));
  EXPECT_TRUE(agent->MayUse("job-"));
  EXPECT_TRUE(agent->MayUse("job-42"));
  EXPECT_FALSE(agent->MayUse("jo"));
  EXPECT_EQ(set.value().Find("agent-token-0123456789abcde"), nullptr);  // a prefix is not the token
  EXPECT_EQ(set.value().Find(""), nullptr);
}

TEST(TokenSetTest, RefusesMalformedLinesWithoutEchoingTheToken) {
  for (const char* text : {"short\n", "bad token-0123456789abcdef!\n", "ok-token-0123456789abcdef threads=\n",
                           "ok-token-0123456789abcdef threads=a,,b\n", "ok-token-0123456789abcdef threads=*\n",
                           "ok-token-0123456789abcdef readonly\n",
                           "dup-token-0123456789abcdef\ndup-token-0123456789abcdef\n",
                           "tok\xc3\xa9n-0123456789abcdef\n"}) {
    auto set = TokenSet::Parse(text, "tokens");
    EXPECT_FALSE(set.ok()) << text;
    if (!set.ok()) {
      EXPECT_TRUE(set.status().IsInvalidArgument());
      EXPECT_NE(set.status().message().find("tokens line"), std::string::npos) << set.status().message();
      EXPECT_EQ(set.status().message().find("0123456789abcdef"), std::string::npos) << set.status().message();
    }
  }
}

TEST(BearerTokenTest, TakesOnlyBearer) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer "), "");
  EXPECT_EQ(BearerToken(""), "");
}

TEST(SignedLinkTest, VerifiesOnlyTheSignedFileUntilItExpires) {
  const std::string key(40, 'k');
  std::string sig = SignFileLink(key, "t1", "/home/user/a.png", 1000);
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(VerifyFileLink(key, "t1", "/home/user/a.png", 1000, sig, 999));
  EXPECT_FALSE(VerifyFileLink(key, "t1", "/home/user/a.png", 1000, sig, 1000));  // expired
  EXPECT_FALSE(VerifyFileLink(key, "t2", "/home/user/a.png", 1000, sig, 1));      // other thread
  EXPECT_FALSE(VerifyFileLink(key, "t1", "/home/user/b.png", 1000, sig, 1));      // other file
  EXPECT_FALSE(VerifyFileLink(key, "t1", "/home/user/a.png", 2000, sig, 1));      // other expiry
  EXPECT_FALSE(VerifyFileLink(std::string(40, 'x'), "t1", "/home/user/a.png", 1000, sig, 1));  // other key
  // The separator keeps (thread, path) pairs apart: "t" + "1\n/x" is not "t1" + "/x".
  EXPECT_NE(SignFileLink(key, "t1", "/x", 5), SignFileLink(key, "t", "1\n/x", 5));
  EXPECT_EQ(MakeFileLink(key, "a b", "/home/user/r\xc3\xa9sum\xc3\xa9.pdf", 7),
            "/files/a%20b/home/user/r%C3%A9sum%C3%A9.pdf?expires=7&sig=" + SignFileLink(key, "a b", "/home/user/r\xc3\xa9sum\xc3\xa9.pdf", 7));
}

}  // namespace
}  // namespace brig::server
