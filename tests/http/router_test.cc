#include "server/router.h"

#include <gtest/gtest.h>

namespace brig::server {
namespace {

using boost::beast::http::verb;
using R = Router<int>;

R MakeRouter() {
  R r;
  r.Add(verb::get, "/v1/sessions", 1);
  r.Add(verb::get, "/v1/sessions/{thread_id}", 2);
  r.Add(verb::get, "/v1/sessions/{thread_id}/files/{path...}", 3);
  r.Add(verb::put, "/v1/sessions/{thread_id}/files/{path...}", 4);
  r.Add(verb::post, "/v1/sessions/{thread_id}/files:read", 5);
  return r;
}

TEST(PercentDecodeTest, DecodesAndRejectsMalformedEscapes) {
  EXPECT_EQ(PercentDecode("a%20b").value(), "a b");
  EXPECT_EQ(PercentDecode("%2e%2E").value(), "..");
  EXPECT_EQ(PercentDecode("%252e").value(), "%2e");  // once only: double encoding stays a name
  EXPECT_EQ(PercentDecode("a+b").value(), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true).value(), "a b");
  EXPECT_EQ(PercentDecode("%00").value(), std::string(1, '\0'));
  EXPECT_FALSE(PercentDecode("%"));
  EXPECT_FALSE(PercentDecode("%4"));
  EXPECT_FALSE(PercentDecode("a%zz"));
  EXPECT_FALSE(PercentDecode("%g0"));
}

TEST(ParseQueryTest, SplitsAndDecodes) {
  auto q = ParseQuery("prefix=%2Ftmp%2F&x=1&flag&&empty=").value();
  EXPECT_EQ(q["prefix"], "/tmp/");
  EXPECT_EQ(q["x"], "1");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["empty"], "");
  EXPECT_FALSE(ParseQuery("a=%zz"));
}

TEST(RouterTest, MatchesLiteralsParametersAndRest) {
  R r = MakeRouter();
  auto m = r.Find(verb::get, "/v1/sessions");
  ASSERT_EQ(m.outcome, R::Outcome::kMatched);
  EXPECT_EQ(m.route->handler, 1);
  m = r.Find(verb::get, "/v1/sessions/agent%207");
  ASSERT_EQ(m.outcome, R::Outcome::kMatched);
  EXPECT_EQ(m.params["thread_id"], "agent 7");
  m = r.Find(verb::get, "/v1/sessions/s1/files/home/user/a%20b.txt");
  ASSERT_EQ(m.outcome, R::Outcome::kMatched);
  EXPECT_EQ(m.route->handler, 3);
  EXPECT_EQ(m.params["path"], "/home/user/a b.txt");
  m = r.Find(verb::post, "/v1/sessions/s1/files:read");
  ASSERT_EQ(m.outcome, R::Outcome::kMatched);
  EXPECT_EQ(m.route->handler, 5);
  // HEAD is answered by GET routes.
  EXPECT_EQ(r.Find(verb::head, "/v1/sessions/s1").outcome, R::Outcome::kMatched);
}

TEST(RouterTest, WrongMethodIs405AndUnknownPathIs404) {
  R r = MakeRouter();
  EXPECT_EQ(r.Find(verb::delete_, "/v1/sessions").outcome, R::Outcome::kMethodNotAllowed);
  EXPECT_EQ(r.Find(verb::get, "/v2/sessions").outcome, R::Outcome::kNotFound);
  EXPECT_EQ(r.Find(verb::get, "/v1/sessions/a/b").outcome, R::Outcome::kNotFound);
  EXPECT_EQ(r.Find(verb::get, "/v1/sessions/s1/files").outcome, R::Outcome::kNotFound);  // rest needs one segment
  EXPECT_EQ(r.Find(verb::get, "v1/sessions").outcome, R::Outcome::kBadPath);
  EXPECT_EQ(r.Find(verb::get, "/v1/sessions/%zz").outcome, R::Outcome::kBadPath);
}

// "..", ".", empty segments and NUL never reach a handler as a parameter, however encoded.
TEST(RouterTest, TraversalNeverMatches) {
  R r = MakeRouter();
  for (const char* path : {"/v1/sessions/..", "/v1/sessions/%2e%2e", "/v1/sessions/%2E.", "/v1/sessions/.",
                           "/v1/sessions/s1/files/home/../etc/passwd", "/v1/sessions/s1/files/%2e%2e/%2e%2e/etc/passwd",
                           "/v1/sessions/s1/files/home//user", "/v1/sessions/s1/files/home/user/",
                           "/v1/sessions/s1/files/a%00b", "/v1/sessions/a%00/files/x", "/v1/sessions/%2e%2e/files/x"}) {
    auto m = r.Find(verb::get, path);
    EXPECT_NE(m.outcome, R::Outcome::kMatched) << path << " matched with path=" << m.params["path"];
  }
  // %2f decodes inside one segment: the path gets a '/', never a "..".
  auto m = r.Find(verb::get, "/v1/sessions/s1/files/home%2fuser%2fx");
  ASSERT_EQ(m.outcome, R::Outcome::kMatched);
  EXPECT_EQ(m.params["path"], "/home/user/x");
  for (const char* path : {"/v1/sessions/s1/files/..%2fetc", "/v1/sessions/s1/files/a%2f..%2f..%2fetc",
                           "/v1/sessions/s1/files/a%2f%2fb", "/v1/sessions/s1/files/a%2f"})
    EXPECT_NE(r.Find(verb::get, path).outcome, R::Outcome::kMatched) << path;
}

}  // namespace
}  // namespace brig::server
