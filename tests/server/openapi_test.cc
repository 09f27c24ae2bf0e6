// docs/openapi.json documents exactly the routes the server answers: every (method, path)
// of Server::Routes() is in the file, and the file has nothing more. HEAD is implied by GET.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "server/server.h"

namespace brig::server {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(OpenApiTest, DocumentsExactlyTheServedRoutes) {
  std::ifstream in(BRIG_OPENAPI_JSON);
  ASSERT_TRUE(in) << BRIG_OPENAPI_JSON;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json spec = nlohmann::json::parse(ss.str());
  ASSERT_EQ(spec["openapi"], "3.1.0");

  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, item] : spec["paths"].items())
    for (const auto& [method, op] : item.items()) {
      ASSERT_TRUE(op.contains("responses")) << method << " " << path;
      documented.insert({method, path});
    }
  std::set<std::pair<std::string, std::string>> served;
  for (auto [method, pattern] : Server::Routes()) {
    // OpenAPI has no multi-segment parameter: {path...} is written {path} and described.
    if (auto at = pattern.find("{path...}"); at != std::string::npos) pattern.replace(at, 9, "{path}");
    served.insert({Lower(method), pattern});
  }
  for (const auto& r : served) EXPECT_TRUE(documented.count(r)) << "served, not documented: " << r.first << " " << r.second;
  for (const auto& r : documented) EXPECT_TRUE(served.count(r)) << "documented, not served: " << r.first << " " << r.second;
  EXPECT_GE(served.size(), 15u);
}

// Each path parameter a route has is declared in the document.
TEST(OpenApiTest, DeclaresPathParameters) {
  std::ifstream in(BRIG_OPENAPI_JSON);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json spec = nlohmann::json::parse(ss.str());
  for (const auto& [path, item] : spec["paths"].items())
    for (const auto& [method, op] : item.items()) {
      std::set<std::string> declared;
      for (const auto& p : op.value("parameters", nlohmann::json::array()))
        if (p["in"] == "path") declared.insert(p["name"]);
      for (size_t i = path.find('{'); i != std::string::npos; i = path.find('{', i + 1)) {
        std::string name = path.substr(i + 1, path.find('}', i) - i - 1);
        EXPECT_TRUE(declared.count(name)) << method << " " << path << " does not declare {" << name << "}";
      }
    }
}

// Sessions are created with quotas of their own (POST /v1/sessions "quotas"), and show the
// quotas that hold for them: both in the document.
TEST(OpenApiTest, DocumentsSessionQuotas) {
  std::ifstream in(BRIG_OPENAPI_JSON);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json spec = nlohmann::json::parse(ss.str());
  const nlohmann::json& quotas = spec["components"]["schemas"]["Quotas"];
  for (const char* name : {"max_files", "max_total_bytes", "max_file_bytes"})
    EXPECT_TRUE(quotas["properties"].contains(name)) << name;
  const nlohmann::json& create =
      spec["paths"]["/v1/sessions"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"];
  EXPECT_EQ(create["quotas"]["$ref"], "#/components/schemas/Quotas");
  EXPECT_EQ(spec["components"]["schemas"]["Session"]["properties"]["quotas"]["$ref"], "#/components/schemas/Quotas");
}

}  // namespace
}  // namespace brig::server
