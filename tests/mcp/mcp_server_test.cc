// The MCP server's JSON-RPC dispatch, versions, tool definitions and tool handlers, over a
// real SQLite store with a fake executor (no guest). The conversation with the official
// TypeScript SDK client is tests/mcp/sdk_test.mjs.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "brig/files.h"
#include "brig/session_manager.h"
#include "brig/store.h"
#include "brig/text.h"
#include "mcp/backend.h"
#include "mcp/http_headers.h"
#include "mcp/mcp_server.h"
#include "mcp/stdio.h"
#include "mcp/tools.h"

namespace brig::mcp {
namespace {

using nlohmann::json;

// A 1x1 PNG.
const char* kPngBase64 =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(const std::string& url) {
    store_ = std::move(Store::Open(url).value());
    manager_ = std::make_unique<SessionManager>(*store_);
    files_ = std::make_unique<FileService>(*manager_);
  }
  // What Execute does: gets the thread_id and code, fills the result.
  std::function<void(const std::string&, const std::string&, SessionResult*)> on_execute;
  std::string last_thread;
  StatusOr<SessionResult> Execute(const std::string& thread_id, const std::string& code, std::optional<double>) override {
    last_thread = thread_id;
    auto s = manager_->GetOrCreate(thread_id);
    if (!s.ok()) return s.status();
    SessionResult r;
    r.execution.ok = true;
    r.saved = true;
    if (on_execute) on_execute(thread_id, code, &r);
    return r;
  }
  Status Reset(const std::string& thread_id) override { return manager_->Reset(thread_id); }
  SessionManager& manager() override { return *manager_; }
  FileService& files() override { return *files_; }

 private:
  std::unique_ptr<Store> store_;
  std::unique_ptr<SessionManager> manager_;
  std::unique_ptr<FileService> files_;
};

class McpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("brig-mcp-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    backend_ = std::make_unique<FakeBackend>("sqlite:" + (dir_ / "brig.db").string());
    server_ = std::make_unique<McpServer>(*backend_);
  }
  void TearDown() override {
    server_.reset();
    backend_.reset();
    std::filesystem::remove_all(dir_);
  }
  json Request(const std::string& method, json params = json::object(), const Caller& caller = {}) {
    json msg = {{"jsonrpc", "2.0"}, {"id", ++id_}, {"method", method}, {"params", std::move(params)}};
    auto reply = server_->Handle(msg, caller);
    EXPECT_TRUE(reply.has_value());
    EXPECT_EQ((*reply)["id"], id_);
    return *reply;
  }
  json Call(const std::string& tool, json args, const Caller& caller = {}) {
    json reply = Request("tools/call", {{"name", tool}, {"arguments", std::move(args)}}, caller);
    EXPECT_TRUE(reply.contains("result")) << reply.dump();
    return reply["result"];
  }
  // The text of a result's first content item.
  static std::string Text(const json& result) { return result["content"][0]["text"].get<std::string>(); }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<McpServer> server_;
  int id_ = 0;
};

// Every required field of the tool's outputSchema is in structuredContent, and has the type.
void ExpectMatchesOutputSchema(const std::string& tool, const json& structured) {
  for (const auto& t : ToolDefinitions()) {
    if (t["name"] != tool) continue;
    const json& schema = t["outputSchema"];
    ASSERT_TRUE(structured.is_object()) << tool;
    for (const auto& r : schema["required"]) {
      ASSERT_TRUE(structured.contains(r.get<std::string>())) << tool << " lacks " << r;
      json type = schema["properties"][r.get<std::string>()]["type"];
      std::set<std::string> types;
      if (type.is_string()) types.insert(type.get<std::string>());
      else for (const auto& x : type) types.insert(x.get<std::string>());
      const json& v = structured[r.get<std::string>()];
      std::string actual = v.is_null() ? "null" : v.is_boolean() ? "boolean" : v.is_number_integer() ? "integer"
                         : v.is_number() ? "number" : v.is_string() ? "string" : v.is_array() ? "array" : "object";
      bool ok = types.count(actual) || (actual == "integer" && types.count("number"));
      EXPECT_TRUE(ok) << tool << "." << r << " is " << actual << ", schema says " << type;
    }
    return;
  }
  FAIL() << "no tool " << tool;
}

TEST_F(McpTest, ToolDefinitionsAreCompleteAndStrict) {
  json list = Request("tools/list")["result"]["tools"];
  std::set<std::string> names;
  for (const auto& t : list) {
    std::string name = t["name"];
    EXPECT_TRUE(names.insert(name).second) << "duplicate " << name;
    EXPECT_FALSE(t["description"].get<std::string>().empty());
    EXPECT_EQ(t["inputSchema"]["type"], "object") << name;
    EXPECT_EQ(t["inputSchema"]["additionalProperties"], false) << name;
    EXPECT_EQ(t["outputSchema"]["type"], "object") << name;
    for (const auto& r : t["inputSchema"].value("required", json::array()))
      EXPECT_TRUE(t["inputSchema"]["properties"].contains(r.get<std::string>())) << name << " requires unknown " << r;
    for (const auto& r : t["outputSchema"].value("required", json::array()))
      EXPECT_TRUE(t["outputSchema"]["properties"].contains(r.get<std::string>())) << name << " requires unknown " << r;
    EXPECT_TRUE(t["annotations"].contains("readOnlyHint")) << name;
    EXPECT_EQ(t["annotations"]["openWorldHint"], false) << name;
  }
  std::set<std::string> want = {"run_python", "read_file",   "write_file",    "edit_file",    "list_files",   "glob",
                                "grep",       "delete_file", "reset_session", "fork_session", "list_sessions"};
  EXPECT_EQ(names, want);
  for (const auto& t : list) {
    bool ro = t["annotations"]["readOnlyHint"];
    bool should = t["name"] == "read_file" || t["name"] == "list_files" || t["name"] == "glob" || t["name"] == "grep" ||
                  t["name"] == "list_sessions";
    EXPECT_EQ(ro, should) << t["name"];
  }
}

TEST_F(McpTest, InitializeNegotiatesTheVersion) {
  for (std::string v : {"2025-06-18", "2025-11-25", "2025-03-26"}) {
    json r = Request("initialize", {{"protocolVersion", v}, {"capabilities", json::object()},
                                    {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
    EXPECT_EQ(r["result"]["protocolVersion"], v);
    EXPECT_TRUE(r["result"]["capabilities"].contains("tools"));
    EXPECT_EQ(r["result"]["serverInfo"]["name"], "brig");
  }
  // Unknown (and the handshake-less 2026 revision): the newest handshake revision.
  EXPECT_EQ(Request("initialize", {{"protocolVersion", "1999-01-01"}})["result"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(Request("initialize", {{"protocolVersion", "2026-07-28"}})["result"]["protocolVersion"], "2025-11-25");
  EXPECT_EQ(Request("initialize", json::object())["error"]["code"], kInvalidParams);
}

TEST_F(McpTest, StatelessRequestsNeedNoInitialize) {
  json meta = {{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                          {"io.modelcontextprotocol/clientCapabilities", json::object()}}}};
  json r = Request("tools/list", meta);
  EXPECT_EQ(r["result"]["resultType"], "complete");
  EXPECT_EQ(r["result"]["tools"].size(), 11u);
  json d = Request("server/discover", meta);
  EXPECT_EQ(d["result"]["supportedVersions"][0], "2026-07-28");
  EXPECT_EQ(d["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "brig");
  json bad = Request("tools/list", {{"_meta", {{"io.modelcontextprotocol/protocolVersion", "2024-01-01"}}}});
  EXPECT_EQ(bad["error"]["code"], kUnsupportedProtocolVersion);
  EXPECT_EQ(bad["error"]["data"]["supported"][0], "2026-07-28");
  // A call carrying its version, with no initialize ever sent.
  json call = Request("tools/call", {{"name", "list_sessions"}, {"arguments", json::object()},
                                     {"_meta", meta["_meta"]}});
  EXPECT_EQ(call["result"]["resultType"], "complete");
  EXPECT_EQ(call["result"]["isError"], false);
}

TEST_F(McpTest, ProtocolErrorsAreJsonRpcErrors) {
  Caller c;
  auto err = [&](std::string_view text) {
    auto reply = server_->HandleText(text, c);
    EXPECT_TRUE(reply.has_value()) << text;
    return json::parse(*reply)["error"];
  };
  EXPECT_EQ(err("{not json")["code"], kParseError);
  EXPECT_EQ(err(std::string(100, '[') + std::string(100, ']'))["code"], kParseError);
  EXPECT_EQ(err(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])")["code"], kInvalidRequest);
  EXPECT_EQ(err(R"("hello")")["code"], kInvalidRequest);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":1})")["code"], kInvalidRequest);
  EXPECT_EQ(err(R"({"jsonrpc":"1.0","id":1,"method":"ping"})")["code"], kInvalidRequest);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})")["code"], kInvalidRequest);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":1,"method":"nope"})")["code"], kMethodNotFound);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm_rf"}})")["code"], kInvalidParams);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}})")["code"], kInvalidParams);
  EXPECT_EQ(err(R"({"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]})")["code"], kInvalidParams);
  // Notifications and responses get no answer.
  EXPECT_FALSE(server_->HandleText(R"({"jsonrpc":"2.0","method":"notifications/initialized"})", c).has_value());
  EXPECT_FALSE(server_->HandleText(R"({"jsonrpc":"2.0","id":5,"result":{}})", c).has_value());
  // Too large.
  Options small;
  small.max_message_bytes = 100;
  McpServer tiny(*backend_, small);
  auto reply = tiny.HandleText(std::string(200, ' '), c);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(json::parse(*reply)["error"]["code"], kParseError);
  EXPECT_NE(json::parse(*reply)["error"]["message"].get<std::string>().find("too large"), std::string::npos);
  // ping
  EXPECT_EQ(Request("ping")["result"], json::object());
}

TEST_F(McpTest, RunPythonMakesASessionWhenNoneIsGiven) {
  backend_->on_execute = [](const std::string&, const std::string&, SessionResult* r) {
    r->execution.stdout_text = "Sum: 142\n";
    r->execution.result = "142";
  };
  json r = Call("run_python", {{"code", "x = 42"}});
  EXPECT_EQ(r["isError"], false);
  std::string id = r["structuredContent"]["session_id"];
  EXPECT_TRUE(id.starts_with("mcp-")) << id;
  EXPECT_EQ(id.size(), 4u + 16u);
  EXPECT_EQ(backend_->last_thread, id);
  EXPECT_EQ(r["structuredContent"]["stdout"], "Sum: 142\n");
  EXPECT_EQ(r["structuredContent"]["result"], "142");
  EXPECT_NE(Text(r).find("Sum: 142"), std::string::npos);
  EXPECT_NE(Text(r).find(id), std::string::npos);
  ExpectMatchesOutputSchema("run_python", r["structuredContent"]);
  // Given: used as is.
  json again = Call("run_python", {{"code", "x"}, {"session_id", id}});
  EXPECT_EQ(again["structuredContent"]["session_id"], id);
  EXPECT_EQ(backend_->last_thread, id);
}

TEST_F(McpTest, PythonExceptionIsAToolErrorWithTheTraceback) {
  backend_->on_execute = [](const std::string&, const std::string&, SessionResult* r) {
    r->execution.ok = false;
    r->execution.error = PythonError{"ZeroDivisionError", "division by zero",
                                     "Traceback (most recent call last):\n  File \"<exec>\", line 1\nZeroDivisionError: division by zero\n"};
  };
  json r = Call("run_python", {{"code", "1/0"}, {"session_id", "s1"}});
  EXPECT_EQ(r["isError"], true);
  EXPECT_NE(Text(r).find("Traceback (most recent call last)"), std::string::npos);
  EXPECT_EQ(r["structuredContent"]["error"]["type"], "ZeroDivisionError");
  ExpectMatchesOutputSchema("run_python", r["structuredContent"]);
}

TEST_F(McpTest, TimeoutIsAToolError) {
  backend_->on_execute = [](const std::string&, const std::string&, SessionResult* r) {
    r->execution.ok = false;
    r->execution.failure = Failure::kTimeout;
    r->execution.failure_message = "ran past 1 s";
  };
  json r = Call("run_python", {{"code", "while True: pass"}, {"session_id", "s1"}, {"timeout_s", 1}});
  EXPECT_EQ(r["isError"], true);
  EXPECT_EQ(r["structuredContent"]["failure"]["kind"], "timeout");
  EXPECT_NE(Text(r).find("timeout"), std::string::npos);
}

TEST_F(McpTest, BadArgumentsAreToolErrorsNamingTheArgument) {
  struct Case {
    std::string tool;
    json args;
    std::string says;
  };
  std::vector<Case> cases = {
      {"run_python", {{"code", 5}}, "'code' must be a string"},
      {"run_python", json::object(), "missing required argument 'code'"},
      {"run_python", {{"code", "1"}, {"timeout_s", -1}}, "'timeout_s'"},
      {"run_python", {{"code", "1"}, {"timeout_s", "10"}}, "'timeout_s' must be a number"},
      {"run_python", {{"code", "1"}, {"sesion_id", "x"}}, "unknown argument 'sesion_id'"},
      {"run_python", {{"code", std::string(5 << 20, 'x')}}, "'code' is too long"},
      {"read_file", {{"session_id", "s"}, {"path", "/a"}, {"offset", 1.5}}, "'offset' must be a whole number"},
      {"read_file", {{"session_id", "s"}, {"path", "/a"}, {"limit", 0}}, "'limit' must be from 1"},
      {"write_file", {{"session_id", "s"}, {"path", "/a"}, {"content", "x"}, {"encoding", "rot13"}}, "'encoding'"},
      {"write_file", {{"session_id", "s"}, {"path", "/a"}, {"content", "!!"}, {"encoding", "base64"}}, "not valid base64"},
      {"edit_file", {{"session_id", "s"}, {"path", "/a"}, {"old_string", "a"}, {"new_string", "b"}, {"replace_all", "yes"}}, "'replace_all' must be true or false"},
      {"grep", {{"session_id", "s"}, {"pattern", "a"}, {"output_mode", "lines"}}, "'output_mode'"},
  };
  for (const auto& c : cases) {
    json r = Call(c.tool, c.args);
    EXPECT_EQ(r["isError"], true) << c.tool << " " << c.args.dump().substr(0, 200);
    EXPECT_NE(Text(r).find(c.says), std::string::npos) << Text(r);
  }
  // arguments that are not an object
  json r = Request("tools/call", {{"name", "list_sessions"}, {"arguments", json::array()}});
  EXPECT_EQ(r["result"]["isError"], true);
}

TEST_F(McpTest, OutputIsCappedAndTheCutIsSaid) {
  std::string big(300'000, 'a');
  big += "THE END\n";
  backend_->on_execute = [&](const std::string&, const std::string&, SessionResult* r) { r->execution.stdout_text = big; };
  json r = Call("run_python", {{"code", "print('a' * 300000)"}, {"session_id", "s1"}});
  std::string out = r["structuredContent"]["stdout"];
  EXPECT_LT(out.size(), 50'200u);
  EXPECT_NE(out.find("cut here"), std::string::npos);
  EXPECT_NE(out.find("THE END"), std::string::npos);  // the tail is kept
  EXPECT_LT(Text(r).size(), 51'000u);
  // UTF-8 is cut at character boundaries.
  std::string euro;
  for (int i = 0; i < 1000; ++i) euro += "\xe2\x82\xac";
  std::string capped = CapText(euro, 100, "x");
  EXPECT_TRUE(IsValidUtf8(capped));
}

TEST_F(McpTest, ImagesComeBackInlineOtherFilesAsLinks) {
  backend_->on_execute = [this](const std::string& id, const std::string&, SessionResult* r) {
    ASSERT_TRUE(backend_->files().Write(id, "/home/user/out.png", *Base64Decode(kPngBase64)).ok());
    ASSERT_TRUE(backend_->files().Write(id, "/home/user/data.csv", "a,b\n1,2\n").ok());
    // Named .png but not a PNG: not sent as an image.
    ASSERT_TRUE(backend_->files().Write(id, "/home/user/fake.png", "hello").ok());
    r->files_saved = {"/home/user/data.csv", "/home/user/fake.png", "/home/user/out.png"};
  };
  json r = Call("run_python", {{"code", "..."}, {"session_id", "img"}});
  ASSERT_EQ(r["isError"], false) << r.dump();
  int images = 0, links = 0;
  std::string csv_uri;
  for (const auto& c : r["content"]) {
    if (c["type"] == "image") {
      ++images;
      EXPECT_EQ(c["mimeType"], "image/png");
      EXPECT_EQ(c["data"], kPngBase64);
    } else if (c["type"] == "resource_link") {
      ++links;
      if (c["name"] == "data.csv") csv_uri = c["uri"];
    }
  }
  EXPECT_EQ(images, 1);
  EXPECT_EQ(links, 2);
  ASSERT_EQ(r["structuredContent"]["files"].size(), 3u);
  EXPECT_EQ(r["structuredContent"]["files"][0]["size"], 8);
  EXPECT_EQ(r["structuredContent"]["files"][0]["content_type"], "text/csv");
  ExpectMatchesOutputSchema("run_python", r["structuredContent"]);
  // The link reads back.
  ASSERT_EQ(csv_uri, "brig://sessions/img/files/home/user/data.csv");
  json read = Request("resources/read", {{"uri", csv_uri}});
  EXPECT_EQ(read["result"]["contents"][0]["text"], "a,b\n1,2\n");
  EXPECT_EQ(Request("resources/read", {{"uri", "brig://sessions/img/files/nope"}})["error"]["code"], -32002);
  EXPECT_EQ(Request("resources/read", {{"uri", "file:///etc/passwd"}})["error"]["code"], kInvalidParams);
  // With a link maker (the HTTP server's signed links), the links are its URLs.
  Caller linked;
  linked.file_link = [](std::string_view id, std::string_view path) {
    return "http://h/files/" + std::string(id) + std::string(path) + "?sig=x";
  };
  json r2 = Call("run_python", {{"code", "..."}, {"session_id", "img"}}, linked);
  EXPECT_EQ(r2["structuredContent"]["files"][0]["uri"], "http://h/files/img/home/user/data.csv?sig=x");
}

TEST_F(McpTest, FileToolsRoundTrip) {
  json w = Call("write_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}, {"content", "hello world\nbye\n"}});
  ASSERT_EQ(w["isError"], false) << w.dump();
  ExpectMatchesOutputSchema("write_file", w["structuredContent"]);
  json r = Call("read_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}});
  EXPECT_EQ(Text(r), "hello world\nbye\n");
  ExpectMatchesOutputSchema("read_file", r["structuredContent"]);
  json part = Call("read_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}, {"offset", 6}, {"limit", 5}});
  EXPECT_EQ(part["structuredContent"]["content"], "world");
  EXPECT_EQ(part["structuredContent"]["truncated"], true);
  json e = Call("edit_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}, {"old_string", "world"}, {"new_string", "there"}});
  EXPECT_EQ(e["structuredContent"]["replacements"], 1);
  json e2 = Call("edit_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}, {"old_string", "zzz"}, {"new_string", "q"}});
  EXPECT_EQ(e2["isError"], true);
  ASSERT_EQ(Call("write_file", {{"session_id", "f"}, {"path", "/home/user/b.bin"}, {"content", "AAEC/w=="}, {"encoding", "base64"}})["isError"], false);
  json bin = Call("read_file", {{"session_id", "f"}, {"path", "/home/user/b.bin"}});
  EXPECT_EQ(bin["structuredContent"]["encoding"], "base64");
  EXPECT_EQ(bin["structuredContent"]["content"], "AAEC/w==");
  json l = Call("list_files", {{"session_id", "f"}});
  EXPECT_EQ(l["structuredContent"]["files"].size(), 2u);
  ExpectMatchesOutputSchema("list_files", l["structuredContent"]);
  json g = Call("glob", {{"session_id", "f"}, {"pattern", "/home/**/*.txt"}});
  ASSERT_EQ(g["structuredContent"]["files"].size(), 1u);
  json s = Call("grep", {{"session_id", "f"}, {"pattern", "th.re"}});
  ASSERT_EQ(s["structuredContent"]["files"].size(), 1u);
  EXPECT_EQ(s["structuredContent"]["files"][0]["lines"][0]["number"], 1);
  ExpectMatchesOutputSchema("grep", s["structuredContent"]);
  EXPECT_EQ(Call("grep", {{"session_id", "f"}, {"pattern", "(?=x)"}})["isError"], true);
  json d = Call("delete_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}});
  EXPECT_EQ(d["structuredContent"]["deleted"], true);
  EXPECT_EQ(Call("read_file", {{"session_id", "f"}, {"path", "/home/user/a.txt"}})["isError"], true);
  // Sessions
  json fk = Call("fork_session", {{"session_id", "f"}});
  ASSERT_EQ(fk["isError"], false) << fk.dump();
  std::string copy = fk["structuredContent"]["session_id"];
  EXPECT_EQ(Call("list_files", {{"session_id", copy}})["structuredContent"]["files"].size(), 1u);
  json ls = Call("list_sessions", json::object());
  EXPECT_EQ(ls["structuredContent"]["sessions"].size(), 2u);
  ExpectMatchesOutputSchema("list_sessions", ls["structuredContent"]);
  EXPECT_EQ(Call("reset_session", {{"session_id", "f"}})["structuredContent"]["reset"], true);
  EXPECT_EQ(Call("reset_session", {{"session_id", "missing"}})["isError"], true);
}

TEST_F(McpTest, CallerLimitsAreEnforced) {
  ASSERT_EQ(Call("write_file", {{"session_id", "job-1"}, {"path", "/a"}, {"content", "x"}})["isError"], false);
  ASSERT_EQ(Call("write_file", {{"session_id", "other"}, {"path", "/a"}, {"content", "x"}})["isError"], false);
  Caller limited;
  limited.may_use = [](std::string_view id) { return id.starts_with("job-"); };
  limited.new_session_prefix = "job-";
  EXPECT_EQ(Call("read_file", {{"session_id", "other"}, {"path", "/a"}}, limited)["isError"], true);
  EXPECT_EQ(Call("read_file", {{"session_id", "job-1"}, {"path", "/a"}}, limited)["isError"], false);
  EXPECT_EQ(Call("list_sessions", json::object(), limited)["structuredContent"]["sessions"].size(), 1u);
  json made = Call("run_python", {{"code", "1"}}, limited);
  EXPECT_TRUE(made["structuredContent"]["session_id"].get<std::string>().starts_with("job-"));
  EXPECT_EQ(Call("fork_session", {{"session_id", "job-1"}, {"new_session_id", "other2"}}, limited)["isError"], true);
  EXPECT_EQ(Request("resources/read", {{"uri", "brig://sessions/other/files/a"}}, limited)["error"]["code"], kInvalidParams);
  Caller ro;
  ro.read_only = true;
  EXPECT_EQ(Call("write_file", {{"session_id", "job-1"}, {"path", "/a"}, {"content", "y"}}, ro)["isError"], true);
  EXPECT_EQ(Call("run_python", {{"code", "1"}, {"session_id", "job-1"}}, ro)["isError"], true);
  EXPECT_EQ(Call("delete_file", {{"session_id", "job-1"}, {"path", "/a"}}, ro)["isError"], true);
  EXPECT_EQ(Call("read_file", {{"session_id", "job-1"}, {"path", "/a"}}, ro)["isError"], false);
  EXPECT_EQ(Text(Call("read_file", {{"session_id", "job-1"}, {"path", "/a"}}, ro)), "x");
}

TEST_F(McpTest, StdioAnswersEachLineAndSkipsOverlongOnes) {
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  Options small;
  small.max_message_bytes = 1000;
  McpServer server(*backend_, small);
  std::thread serving([&] { ServeStdio(server, Caller{}, in[0], out[1], 2); ::close(out[1]); });
  std::string input = R"({"jsonrpc":"2.0","id":1,"method":"ping"})" "\n" + std::string(5000, 'x') + "\n" +
                      R"({"jsonrpc":"2.0","method":"notifications/initialized"})" "\n\n" +
                      R"({"jsonrpc":"2.0","id":2,"method":"tools/list"})";  // no final newline
  ASSERT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) all.append(buf, n);
  serving.join();
  ::close(in[0]);
  ::close(out[0]);
  std::set<std::string> seen;
  size_t lines = 0;
  for (size_t a = 0, b; a < all.size(); a = b + 1) {
    b = all.find('\n', a);
    ASSERT_NE(b, std::string::npos);
    json j = json::parse(all.substr(a, b - a));
    ++lines;
    if (j.contains("error")) seen.insert("error:" + std::to_string(j["error"]["code"].get<int>()));
    else seen.insert("id:" + j["id"].dump());
  }
  EXPECT_EQ(lines, 3u);
  EXPECT_TRUE(seen.count("id:1"));
  EXPECT_TRUE(seen.count("id:2"));
  EXPECT_TRUE(seen.count("error:-32700"));
}

// What the code showed (brig.show): images as image content, in order, text types as text;
// the structured result lists each output's MIME types; a drop note reaches the model.
TEST_F(McpTest, ShownOutputsComeBackAsImagesAndText) {
  const std::string png = Base64Decode(kPngBase64).value();
  backend_->on_execute = [&](const std::string&, const std::string&, SessionResult* r) {
    r->execution.display.push_back({{{"image/png", png}, {"text/plain", "<Figure>"}}});
    r->execution.display.push_back({{{"text/html", "<b>t</b>"}, {"text/plain", "table"}}});
    r->execution.display.push_back({{{"image/svg+xml", "<svg/>"}}});
    r->execution.display_note = "brig: 2 display outputs dropped: over the limit";
  };
  json r = Call("run_python", {{"code", "import brig"}});
  ASSERT_EQ(r["content"].size(), 3u) << r.dump();
  EXPECT_EQ(r["content"][1]["type"], "image");
  EXPECT_EQ(r["content"][1]["mimeType"], "image/png");
  EXPECT_EQ(r["content"][1]["data"], kPngBase64);
  EXPECT_EQ(r["content"][2]["mimeType"], "image/svg+xml");
  EXPECT_EQ(Base64Decode(r["content"][2]["data"].get<std::string>()).value(), "<svg/>");
  std::string text = Text(r);
  EXPECT_NE(text.find("[display]\ntable\n"), std::string::npos) << text;
  EXPECT_NE(text.find("2 display outputs dropped"), std::string::npos) << text;
  ASSERT_EQ(r["structuredContent"]["display"].size(), 3u);
  EXPECT_EQ(r["structuredContent"]["display"][0]["mime_types"], json({"image/png", "text/plain"}));
  EXPECT_EQ(r["structuredContent"]["display"][1]["text"], "table");
}

// ---- 2026-07-28 against its schema (schema/2026-07-28/schema.ts) ----

// The _meta of a well-formed 2026-07-28 request.
json ModernMeta(json extra = json::object()) {
  json meta = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
               {"io.modelcontextprotocol/clientCapabilities", json::object()},
               {"io.modelcontextprotocol/clientInfo", {{"name", "t"}, {"version", "1"}}}};
  meta.update(extra);
  return meta;
}

// RequestMetaObject: clientCapabilities is required (an object); clientInfo, when sent, an
// Implementation. A request missing one is malformed: -32602 with HTTP 400.
TEST_F(McpTest, ModernRequestsNeedWellFormedMeta) {
  auto process = [&](json meta) {
    json msg = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/list"}, {"params", {{"_meta", std::move(meta)}}}};
    return server_->Process(msg, Caller{});
  };
  Exchange ok = process(ModernMeta());
  ASSERT_TRUE(ok.response.has_value());
  EXPECT_TRUE(ok.response->contains("result")) << ok.response->dump();
  EXPECT_EQ(ok.http_status, 200);
  json no_caps = ModernMeta();
  no_caps.erase("io.modelcontextprotocol/clientCapabilities");
  json no_info = ModernMeta();
  no_info.erase("io.modelcontextprotocol/clientInfo");
  EXPECT_TRUE(process(no_info).response->contains("result"));  // clientInfo is optional
  for (const json& bad : {no_caps, ModernMeta({{"io.modelcontextprotocol/clientCapabilities", "all"}}),
                          ModernMeta({{"io.modelcontextprotocol/clientCapabilities", {{"extensions", 1}}}}),
                          ModernMeta({{"io.modelcontextprotocol/clientInfo", "me"}}),
                          ModernMeta({{"io.modelcontextprotocol/clientInfo", {{"name", "me"}}}})}) {
    Exchange ex = process(bad);
    ASSERT_TRUE(ex.response.has_value());
    EXPECT_EQ((*ex.response)["error"]["code"], kInvalidParams) << bad.dump();
    EXPECT_EQ(ex.http_status, 400) << bad.dump();
  }
  // The older revisions put nothing in _meta: a request without it is theirs, and fine.
  EXPECT_TRUE(Request("tools/list").contains("result"));
}

// UnsupportedProtocolVersionError: -32022, data {supported, requested}, HTTP 400.
TEST_F(McpTest, AnUnsupportedVersionIsMinus32022) {
  for (json v : {json("1900-01-01"), json(7)}) {
    json msg = {{"jsonrpc", "2.0"}, {"id", "a"}, {"method", "tools/list"},
                {"params", {{"_meta", ModernMeta({{"io.modelcontextprotocol/protocolVersion", v}})}}}};
    Exchange ex = server_->Process(msg, Caller{});
    ASSERT_TRUE(ex.response.has_value());
    const json& e = (*ex.response)["error"];
    EXPECT_EQ(e["code"], -32022);
    EXPECT_EQ(e["data"]["supported"], json(SupportedVersions()));
    EXPECT_EQ(e["data"]["requested"], v.is_string() ? v : json("7"));
    EXPECT_EQ((*ex.response)["id"], "a");
    EXPECT_EQ(ex.http_status, 400);
  }
}

// Result: resultType (required) and _meta["io.modelcontextprotocol/serverInfo"] (SHOULD, on
// every result) in 2026-07-28; the older revisions' results are left as they were.
TEST_F(McpTest, ModernResultsCarryResultTypeAndServerInfo) {
  for (const char* method : {"tools/list", "resources/list", "resources/templates/list"}) {
    json r = Request(method, {{"_meta", ModernMeta()}})["result"];
    EXPECT_EQ(r["resultType"], "complete") << method;
    EXPECT_EQ(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "brig") << method;
    EXPECT_TRUE(r["_meta"]["io.modelcontextprotocol/serverInfo"]["version"].is_string()) << method;
  }
  json call = Request("tools/call", {{"name", "list_sessions"}, {"arguments", json::object()}, {"_meta", ModernMeta()}});
  EXPECT_EQ(call["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "brig");
  json legacy = Request("tools/list")["result"];
  EXPECT_FALSE(legacy.contains("resultType"));
  EXPECT_FALSE(legacy.contains("_meta"));
}

// CacheableResult: ttlMs and cacheScope on tools/list, resources/list,
// resources/templates/list and resources/read (and server/discover) in 2026-07-28.
TEST_F(McpTest, ModernListsAndReadsCarryCacheHints) {
  for (const char* method : {"tools/list", "resources/list", "resources/templates/list"}) {
    json r = Request(method, {{"_meta", ModernMeta()}})["result"];
    ASSERT_TRUE(r["ttlMs"].is_number_integer()) << method;
    EXPECT_GT(r["ttlMs"].get<int64_t>(), 0) << method;
    EXPECT_EQ(r["cacheScope"], "public") << method;
    EXPECT_FALSE(Request(method)["result"].contains("ttlMs")) << method;
  }
  ASSERT_EQ(Call("write_file", {{"session_id", "s1"}, {"path", "/home/user/a.txt"}, {"content", "x"}})["isError"], false);
  json read = Request("resources/read", {{"uri", "brig://sessions/s1/files/home/user/a.txt"}, {"_meta", ModernMeta()}});
  ASSERT_TRUE(read.contains("result")) << read.dump();
  EXPECT_EQ(read["result"]["ttlMs"], 0);  // files change with every write
  EXPECT_EQ(read["result"]["cacheScope"], "private");  // what a token may read is its own
  EXPECT_EQ(read["result"]["contents"][0]["text"], "x");
}

// DiscoverResult: supportedVersions, capabilities, instructions + CacheableResult; the
// server's identity is in _meta, not a serverInfo field. No extension (tasks among them)
// nor logging is advertised: brig implements none.
TEST_F(McpTest, DiscoverHasTheSchemasShape) {
  json r = Request("server/discover", {{"_meta", ModernMeta()}})["result"];
  std::set<std::string> keys;
  for (auto it = r.begin(); it != r.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"supportedVersions", "capabilities", "instructions", "ttlMs", "cacheScope",
                                          "resultType", "_meta"}));
  EXPECT_EQ(r["supportedVersions"], json(SupportedVersions()));
  EXPECT_EQ(r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "brig");
  EXPECT_EQ(r["cacheScope"], "public");
  EXPECT_FALSE(r["capabilities"].contains("extensions"));
  EXPECT_FALSE(r["capabilities"].contains("tasks"));
  EXPECT_FALSE(r["capabilities"].contains("logging"));
  EXPECT_EQ(r["capabilities"]["tools"]["listChanged"], false);
  EXPECT_FALSE(r["capabilities"]["resources"].value("subscribe", false));
}

// 2026-07-28 removed ping (and the initialize handshake): -32601, HTTP 404 for an
// unknown method of a modern request. The older revisions keep both.
TEST_F(McpTest, ModernRequestsHaveNoPingNorInitialize) {
  for (const char* method : {"ping", "initialize", "logging/setLevel", "no/such"}) {
    json msg = {{"jsonrpc", "2.0"}, {"id", 3}, {"method", method},
                {"params", {{"protocolVersion", "2025-11-25"}, {"_meta", ModernMeta()}}}};
    Exchange ex = server_->Process(msg, Caller{});
    ASSERT_TRUE(ex.response.has_value());
    EXPECT_EQ((*ex.response)["error"]["code"], kMethodNotFound) << method;
    EXPECT_EQ(ex.http_status, 404) << method;
  }
  EXPECT_EQ(Request("ping")["result"], json::object());
  EXPECT_EQ(Request("initialize", {{"protocolVersion", "2025-11-25"}})["result"]["protocolVersion"], "2025-11-25");
  // A legacy unknown method stays a plain JSON-RPC error (HTTP 200).
  json msg = {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "no/such"}};
  EXPECT_EQ(server_->Process(msg, Caller{}).http_status, 200);
}

// A resource that does not exist: -32602 in 2026-07-28 (which forbids -32002), -32002
// for the older revisions.
TEST_F(McpTest, AMissingResourceIsInvalidParamsInTheModernRevision) {
  json modern = Request("resources/read", {{"uri", "brig://sessions/s1/files/nope"}, {"_meta", ModernMeta()}});
  EXPECT_EQ(modern["error"]["code"], kInvalidParams) << modern.dump();
  EXPECT_EQ(Request("resources/read", {{"uri", "brig://sessions/s1/files/nope"}})["error"]["code"], -32002);
}

// subscriptions/listen: brig honours no notification type (its lists never change, no
// resource subscriptions), so it acknowledges an empty filter, tagged with the
// subscription id, then ends the subscription with its (empty) result.
TEST_F(McpTest, SubscriptionsListenIsAcknowledgedThenEnded) {
  json msg = {{"jsonrpc", "2.0"}, {"id", "sub-1"}, {"method", "subscriptions/listen"},
              {"params", {{"_meta", ModernMeta()},
                          {"notifications", {{"toolsListChanged", true}, {"resourceSubscriptions", {"brig://x"}}}}}}};
  Exchange ex = server_->Process(msg, Caller{});
  ASSERT_EQ(ex.notifications.size(), 1u);
  const json& ack = ex.notifications[0];
  EXPECT_FALSE(ack.contains("id"));
  EXPECT_EQ(ack["method"], "notifications/subscriptions/acknowledged");
  EXPECT_EQ(ack["params"]["notifications"], json::object());
  EXPECT_EQ(ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1");
  ASSERT_TRUE(ex.response.has_value());
  EXPECT_EQ((*ex.response)["id"], "sub-1");
  EXPECT_EQ((*ex.response)["result"]["resultType"], "complete");
  EXPECT_EQ((*ex.response)["result"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "sub-1");
  EXPECT_EQ(ex.http_status, 200);
  // Its filter is required.
  msg["params"].erase("notifications");
  Exchange bad = server_->Process(msg, Caller{});
  EXPECT_TRUE(bad.notifications.empty());
  EXPECT_EQ((*bad.response)["error"]["code"], kInvalidParams);
  // Not a method of the older revisions.
  EXPECT_EQ(Request("subscriptions/listen", {{"notifications", json::object()}})["error"]["code"], kMethodNotFound);
}

// Tasks are an extension (io.modelcontextprotocol/tasks) brig does not advertise: a client
// that declares it, or a 2025-11-25 client that asks for a task, gets the ordinary result
// ("revert to core protocol behavior").
TEST_F(McpTest, ATaskRequestGetsAnOrdinaryResult) {
  json meta = ModernMeta({{"io.modelcontextprotocol/clientCapabilities",
                           {{"extensions", {{"io.modelcontextprotocol/tasks", json::object()}}}}}});
  json modern = Request("tools/call", {{"name", "list_sessions"}, {"arguments", json::object()}, {"_meta", meta},
                                       {"task", {{"ttl", 60000}}}});
  EXPECT_EQ(modern["result"]["resultType"], "complete") << modern.dump();
  EXPECT_TRUE(modern["result"].contains("content"));
  json legacy = Request("tools/call", {{"name", "list_sessions"}, {"arguments", json::object()}, {"task", {{"ttl", 60000}}}});
  EXPECT_TRUE(legacy["result"].contains("content")) << legacy.dump();
  EXPECT_FALSE(legacy["result"].contains("task"));
}

// On stdio the acknowledgement precedes the listen's result.
TEST_F(McpTest, StdioWritesTheAcknowledgementBeforeTheResult) {
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  std::thread serving([&] { ServeStdio(*server_, Caller{}, in[0], out[1], 1); ::close(out[1]); });
  json msg = {{"jsonrpc", "2.0"}, {"id", 9}, {"method", "subscriptions/listen"},
              {"params", {{"_meta", ModernMeta()}, {"notifications", {{"toolsListChanged", true}}}}}};
  std::string input = msg.dump() + "\n";
  ASSERT_EQ(::write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(in[1]);
  std::string all;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) all.append(buf, n);
  serving.join();
  ::close(in[0]);
  ::close(out[0]);
  size_t nl = all.find('\n');
  ASSERT_NE(nl, std::string::npos) << all;
  EXPECT_EQ(json::parse(all.substr(0, nl))["method"], "notifications/subscriptions/acknowledged");
  json second = json::parse(all.substr(nl + 1));
  EXPECT_EQ(second["id"], 9);
  EXPECT_TRUE(second.contains("result"));
}

// Streamable HTTP's request headers (http_headers.h).
TEST(McpHttpHeaders, ModernRequestsNeedTheMirroredHeaders) {
  json call = {{"jsonrpc", "2.0"}, {"id", 7}, {"method", "tools/call"},
               {"params", {{"name", "list_sessions"}, {"arguments", json::object()}, {"_meta", ModernMeta()}}}};
  auto code = [](const std::optional<json>& r) { return r ? (*r)["error"]["code"].get<int>() : 0; };
  EXPECT_EQ(code(CheckHttpHeaders(call, {"2026-07-28", "tools/call", "list_sessions"})), 0);
  // Missing: the version, the method, the name (tools/call and resources/read need it).
  EXPECT_EQ(code(CheckHttpHeaders(call, {"", "tools/call", "list_sessions"})), -32020);
  EXPECT_EQ(code(CheckHttpHeaders(call, {"2026-07-28", "", "list_sessions"})), -32020);
  EXPECT_EQ(code(CheckHttpHeaders(call, {"2026-07-28", "tools/call", ""})), -32020);
  json list = {{"jsonrpc", "2.0"}, {"id", 8}, {"method", "tools/list"}, {"params", {{"_meta", ModernMeta()}}}};
  EXPECT_EQ(code(CheckHttpHeaders(list, {"2026-07-28", "tools/list", ""})), 0);
  // Mismatches.
  auto r = CheckHttpHeaders(call, {"2026-07-28", "tools/list", "list_sessions"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)["id"], 7);
  EXPECT_EQ(code(r), -32020);
  EXPECT_EQ(code(CheckHttpHeaders(call, {"2026-07-28", "tools/call", "run_python"})), -32020);
  EXPECT_EQ(code(CheckHttpHeaders(call, {"2025-11-25", "tools/call", "list_sessions"})), -32020);
  // The header says 2026-07-28, the body carries no version: they do not match.
  json bare = {{"jsonrpc", "2.0"}, {"id", 8}, {"method", "tools/list"}};
  EXPECT_EQ(code(CheckHttpHeaders(bare, {"2026-07-28", "tools/list", ""})), -32020);
  // Invalid characters: a name that is not plain ASCII must come base64-encoded, even when
  // its bytes are the body's.
  json accented = call;
  accented["params"]["name"] = "caf\xc3\xa9";
  EXPECT_EQ(code(CheckHttpHeaders(accented, {"2026-07-28", "tools/call", "caf\xc3\xa9"})), -32020);
  EXPECT_EQ(code(CheckHttpHeaders(accented, {"2026-07-28", "tools/call", "=?base64?" + Base64Encode("caf\xc3\xa9") + "?="})), 0);
  // An unsupported version: -32022 with its data.
  auto v = CheckHttpHeaders(call, {"1900-01-01", "tools/call", "list_sessions"});
  EXPECT_EQ(code(v), -32022);
  EXPECT_EQ((*v)["error"]["data"]["requested"], "1900-01-01");
  EXPECT_EQ((*v)["error"]["data"]["supported"][0], "2026-07-28");
}

TEST(McpHttpHeaders, McpNameMayBeBase64) {
  json read = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "resources/read"},
               {"params", {{"uri", "brig://sessions/s/files/home/user/caf\xc3\xa9.txt"}, {"_meta", ModernMeta()}}}};
  std::string encoded = "=?base64?" + Base64Encode("brig://sessions/s/files/home/user/caf\xc3\xa9.txt") + "?=";
  EXPECT_FALSE(CheckHttpHeaders(read, {"2026-07-28", "resources/read", encoded}).has_value());
  EXPECT_TRUE(CheckHttpHeaders(read, {"2026-07-28", "resources/read", "=?base64?!!!?="}).has_value());
  EXPECT_EQ(DecodeHeaderValue("=?base64?" + Base64Encode(" padded ") + "?="), " padded ");
  EXPECT_EQ(DecodeHeaderValue("plain"), "plain");
}

TEST(McpHttpHeaders, LegacyRequestsAndNotificationsNeedNone) {
  json legacy = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"}, {"params", {{"name", "list_sessions"}}}};
  EXPECT_FALSE(CheckHttpHeaders(legacy, {}).has_value());
  EXPECT_FALSE(CheckHttpHeaders(legacy, {"2025-06-18", "", ""}).has_value());
  EXPECT_FALSE(CheckHttpHeaders(legacy, {"2025-11-25", "tools/call", "list_sessions"}).has_value());
  EXPECT_TRUE(CheckHttpHeaders(legacy, {"", "tools/call", "run_python"}).has_value());  // sent: must match
  json note = {{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 1}}}};
  EXPECT_FALSE(CheckHttpHeaders(note, {"2026-07-28", "", ""}).has_value());
}

}  // namespace
}  // namespace brig::mcp
