// SerializeResponse (server/http_server.h) writes what Beast's serializer writes, so that an
// answer sent with one send() is the same bytes as one sent by http::async_write.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "server/http_server.h"

namespace brig::server {
namespace {

std::string BeastBytes(const http::response<http::string_body>& res) {
  std::ostringstream out;
  out << res;
  return out.str();
}

http::response<http::string_body> Make(http::status status, unsigned version, std::string body) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.set("X-Request-Id", "abc-1");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

TEST(SerializeResponse, MatchesBeastsSerializer) {
  std::vector<http::response<http::string_body>> cases;
  cases.push_back(Make(http::status::ok, 11, R"({"ok":true})"));
  cases.push_back(Make(http::status::not_found, 11, R"({"error":{"code":"not_found"}})"));
  cases.push_back(Make(http::status::too_many_requests, 11, "x"));
  cases.push_back(Make(http::status::ok, 11, ""));
  cases.push_back(Make(http::status::ok, 11, std::string(100000, 'b')));
  auto keep = Make(http::status::ok, 10, "old client");
  keep.keep_alive(true);
  cases.push_back(keep);
  auto closing = Make(http::status::service_unavailable, 11, "bye");
  closing.keep_alive(false);
  cases.push_back(closing);
  auto head = Make(http::status::ok, 11, "a body a GET would get");
  head.body().clear();  // HEAD: Content-Length kept, no body
  cases.push_back(head);
  http::response<http::string_body> not_modified{http::status::not_modified, 11};
  not_modified.set(http::field::etag, "\"v1\"");
  cases.push_back(not_modified);
  auto reason = Make(http::status::ok, 11, "y");
  reason.reason("Fine");
  cases.push_back(reason);
  for (const auto& res : cases) EXPECT_EQ(SerializeResponse(res), BeastBytes(res));
}

}  // namespace
}  // namespace brig::server
