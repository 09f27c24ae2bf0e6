// The JSON-RPC side of the MCP server (mcp_server.h): envelopes, methods, versions.
#include "mcp/mcp_server.h"

#include <algorithm>

#include "mcp/tools.h"
#include "util/json_depth.h"

namespace brig::mcp {

using nlohmann::json;

namespace {

constexpr std::string_view kLatest = "2026-07-28";
// The newest revision that opens with `initialize` (2026-07-28 has no handshake).
constexpr std::string_view kLatestHandshake = "2025-11-25";
constexpr std::string_view kMetaVersion = "io.modelcontextprotocol/protocolVersion";

constexpr std::string_view kInstructions =
    "brig runs Python 3.11 in sandboxed, persistent sessions. Call run_python without session_id to "
    "start a session, then pass the returned session_id to every later call: variables, functions and "
    "files under /home/user persist. Use the file tools to read, write and search the session's files "
    "without running code. No network access; only the standard library is installed.";


json ServerInfo(const Options& o) { return {{"name", "brig"}, {"title", "brig Python sandbox"}, {"version", o.server_version}}; }

json Capabilities() { return {{"tools", {{"listChanged", false}}}, {"resources", {{"listChanged", false}}}}; }

}  // namespace

const std::vector<std::string>& SupportedVersions() {
  static const std::vector<std::string> v = {std::string(kLatest), "2025-11-25", "2025-06-18", "2025-03-26"};
  return v;
}

bool IsSupportedVersion(std::string_view version) {
  const auto& v = SupportedVersions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json ErrorResponse(const json& id, int code, std::string_view message, const json& data) {
  json err = {{"code", code}, {"message", message}};
  if (!data.is_null()) err["data"] = data;
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

McpServer::McpServer(Backend& backend, Options options) : backend_(backend), options_(std::move(options)) {}

json McpServer::ToolList() const { return {{"tools", ToolDefinitions()}}; }

std::optional<std::string> McpServer::HandleText(std::string_view text, const Caller& caller) const {
  if (text.size() > options_.max_message_bytes)
    return Dump(ErrorResponse(nullptr, kParseError,
                              "message too large: " + std::to_string(text.size()) + " bytes (at most " +
                                  std::to_string(options_.max_message_bytes) + ")"));
  if (JsonNestsTooDeep(text))
    return Dump(ErrorResponse(nullptr, kParseError, "message nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels"));
  json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) return Dump(ErrorResponse(nullptr, kParseError, "malformed JSON"));
  auto reply = Handle(message, caller);
  if (!reply) return std::nullopt;
  return Dump(*reply);
}

std::optional<json> McpServer::Handle(const json& message, const Caller& caller) const {
  try {
    if (message.is_array())
      return ErrorResponse(nullptr, kInvalidRequest, "batches are not supported: send one JSON-RPC message at a time");
    if (!message.is_object()) return ErrorResponse(nullptr, kInvalidRequest, "a message must be a JSON-RPC object");
    json id = message.contains("id") ? message["id"] : json();
    bool has_id = message.contains("id");
    if (has_id && !id.is_string() && !id.is_number_integer())
      return ErrorResponse(nullptr, kInvalidRequest, "'id' must be a string or an integer");
    if (!message.contains("method")) {
      // A response (to a request this server never sends) or garbage: nothing to answer to.
      if (message.contains("result") || message.contains("error")) return std::nullopt;
      return ErrorResponse(id, kInvalidRequest, "a request needs 'method'");
    }
    if (message.value("jsonrpc", json()) != "2.0") return ErrorResponse(id, kInvalidRequest, "'jsonrpc' must be \"2.0\"");
    if (!message["method"].is_string()) return ErrorResponse(id, kInvalidRequest, "'method' must be a string");
    std::string method = message["method"];
    json params = message.contains("params") ? message["params"] : json::object();
    if (params.is_null()) params = json::object();
    if (!params.is_object()) return has_id ? std::optional<json>(ErrorResponse(id, kInvalidParams, "'params' must be an object")) : std::nullopt;
    if (!has_id) return std::nullopt;  // a notification: initialized, cancelled, ... nothing to do

    // 2026-07-28: the version travels with each request.
    bool stateless = false;
    if (params.contains("_meta") && params["_meta"].is_object() && params["_meta"].contains(kMetaVersion)) {
      const json& v = params["_meta"][kMetaVersion];
      if (!v.is_string() || !IsSupportedVersion(v.get<std::string>()))
        return ErrorResponse(id, kInvalidParams, "unsupported protocol version",
                             {{"supported", SupportedVersions()}, {"requested", v}});
      stateless = v == kLatest;
    }
    bool is_error = false;
    json result = Dispatch(method, params, caller, id, &is_error);
    if (is_error) return result;
    if (stateless) result["resultType"] = "complete";
    return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  } catch (const std::exception& e) {
    return ErrorResponse(nullptr, kInternalError, std::string("internal error: ") + e.what());
  }
}

json McpServer::Dispatch(const std::string& method, const json& params, const Caller& caller, const json& id,
                         bool* is_error) const {
  auto fail = [&](int code, std::string message, json data = nullptr) {
    *is_error = true;
    return ErrorResponse(id, code, message, data);
  };
  if (method == "initialize") {
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string())
      return fail(kInvalidParams, "initialize needs 'protocolVersion' (a string)");
    std::string asked = params["protocolVersion"];
    std::string version = IsSupportedVersion(asked) && asked != kLatest ? asked : std::string(kLatestHandshake);
    return {{"protocolVersion", version},
            {"capabilities", Capabilities()},
            {"serverInfo", ServerInfo(options_)},
            {"instructions", kInstructions}};
  }
  if (method == "server/discover")
    return {{"supportedVersions", SupportedVersions()},
            {"capabilities", Capabilities()},
            {"serverInfo", ServerInfo(options_)},
            {"instructions", kInstructions}};
  if (method == "ping") return json::object();
  if (method == "tools/list") return ToolList();
  if (method == "tools/call") {
    if (!params.contains("name") || !params["name"].is_string()) return fail(kInvalidParams, "tools/call needs 'name' (a string)");
    std::string name = params["name"];
    if (!HasTool(name)) {
      json names = json::array();
      for (const auto& t : ToolDefinitions()) names.push_back(t["name"]);
      return fail(kInvalidParams, "unknown tool '" + name.substr(0, 200) + "'", {{"tools", names}});
    }
    json arguments = params.contains("arguments") ? params["arguments"] : json::object();
    return CallTool(backend_, options_, caller, name, arguments);
  }
  if (method == "resources/list") return {{"resources", json::array()}};
  if (method == "resources/templates/list")
    return {{"resourceTemplates",
             json::array({{{"uriTemplate", "brig://sessions/{session_id}/files/{path}"},
                           {"name", "session-file"},
                           {"title", "A file of a brig session"},
                           {"description", "A file of a session, e.g. one that run_python wrote."}}})}};
  if (method == "resources/read") {
    if (!params.contains("uri") || !params["uri"].is_string()) return fail(kInvalidParams, "resources/read needs 'uri' (a string)");
    auto read = ReadResource(backend_, options_, caller, params["uri"].get<std::string>());
    if (!read.ok()) {
      // -32002: the resource does not exist (the spec's code for it).
      int code = read.status().IsNotFound() ? -32002 : kInvalidParams;
      return fail(code, read.status().ToString(), {{"uri", params["uri"]}});
    }
    return read.value();
  }
  return fail(kMethodNotFound, "unknown method '" + method.substr(0, 200) + "'");
}

}  // namespace brig::mcp
