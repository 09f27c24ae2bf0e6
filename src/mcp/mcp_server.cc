// The JSON-RPC side of the MCP server (mcp_server.h): envelopes, methods, versions.
#include "mcp/mcp_server.h"

#include <algorithm>

#include "mcp/tools.h"
#include "util/json_depth.h"

namespace brig::mcp {

using nlohmann::json;

namespace {

constexpr std::string_view kLatest = kModernVersion;
// The newest revision that opens with `initialize` (2026-07-28 has no handshake).
constexpr std::string_view kLatestHandshake = "2025-11-25";
constexpr std::string_view kMetaCapabilities = "io.modelcontextprotocol/clientCapabilities";
constexpr std::string_view kMetaClientInfo = "io.modelcontextprotocol/clientInfo";
constexpr std::string_view kMetaServerInfo = "io.modelcontextprotocol/serverInfo";
constexpr std::string_view kMetaSubscriptionId = "io.modelcontextprotocol/subscriptionId";

// 2026-07-28's cache hints (CacheableResult). The tool list, the resource templates, the
// (empty) resource list and discover change only with the binary: an hour. A file's
// content changes with every write: stale at once, and never shared across tokens.
constexpr int64_t kListTtlMs = 3600 * 1000;

constexpr std::string_view kInstructions =
    "brig runs Python 3.11 in sandboxed, persistent sessions. Call run_python without session_id to "
    "start a session, then pass the returned session_id to every later call: variables, functions and "
    "files under /home/user persist. Use the file tools to read, write and search the session's files "
    "without running code. No network access; only the standard library is installed.";


json ServerInfo(const Options& o) { return {{"name", "brig"}, {"title", "brig Python sandbox"}, {"version", o.server_version}}; }

json Capabilities() { return {{"tools", {{"listChanged", false}}}, {"resources", {{"listChanged", false}}}}; }

// Why a modern request's _meta is malformed, or "" when it is well formed (RequestMetaObject:
// clientCapabilities required, an object; clientInfo optional, an Implementation).
std::string MetaProblem(const json& meta) {
  auto caps = meta.find(kMetaCapabilities);
  if (caps == meta.end()) return "a 2026-07-28 request needs _meta[\"" + std::string(kMetaCapabilities) + "\"]";
  if (!caps->is_object()) return "_meta[\"" + std::string(kMetaCapabilities) + "\"] must be an object";
  for (const char* key : {"extensions", "experimental"})
    if (caps->contains(key) && !(*caps)[key].is_object())
      return "_meta[\"" + std::string(kMetaCapabilities) + "\"]." + key + " must be an object";
  auto info = meta.find(kMetaClientInfo);
  if (info != meta.end() && !(info->is_object() && info->contains("name") && (*info)["name"].is_string() &&
                              info->contains("version") && (*info)["version"].is_string()))
    return "_meta[\"" + std::string(kMetaClientInfo) + "\"] must be an object with 'name' and 'version' strings";
  return "";
}

}  // namespace

const std::vector<std::string>& SupportedVersions() {
  static const std::vector<std::string> v = {std::string(kLatest), "2025-11-25", "2025-06-18", "2025-03-26"};
  return v;
}

bool IsSupportedVersion(std::string_view version) {
  const auto& v = SupportedVersions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

json MetaVersion(const json& message) {
  if (!message.is_object()) return nullptr;
  auto params = message.find("params");
  if (params == message.end() || !params->is_object()) return nullptr;
  auto meta = params->find("_meta");
  if (meta == params->end() || !meta->is_object()) return nullptr;
  auto v = meta->find(kMetaProtocolVersion);
  return v == meta->end() ? json(nullptr) : *v;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json ErrorResponse(const json& id, int code, std::string_view message, const json& data) {
  json err = {{"code", code}, {"message", message}};
  if (!data.is_null()) err["data"] = data;
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(err)}};
}

McpServer::McpServer(Backend& backend, Options options) : backend_(backend), options_(std::move(options)) {}

json McpServer::ToolList() const { return {{"tools", ToolDefinitions()}}; }

std::optional<json> McpServer::Parse(std::string_view text, json* error) const {
  if (text.size() > options_.max_message_bytes) {
    *error = ErrorResponse(nullptr, kParseError,
                           "message too large: " + std::to_string(text.size()) + " bytes (at most " +
                               std::to_string(options_.max_message_bytes) + ")");
    return std::nullopt;
  }
  if (JsonNestsTooDeep(text)) {
    *error = ErrorResponse(nullptr, kParseError, "message nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return std::nullopt;
  }
  json message = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded()) {
    *error = ErrorResponse(nullptr, kParseError, "malformed JSON");
    return std::nullopt;
  }
  return message;
}

std::optional<std::string> McpServer::HandleText(std::string_view text, const Caller& caller) const {
  json error;
  auto message = Parse(text, &error);
  if (!message) return Dump(error);
  auto reply = Handle(*message, caller);
  if (!reply) return std::nullopt;
  return Dump(*reply);
}

std::optional<json> McpServer::Handle(const json& message, const Caller& caller) const {
  return Process(message, caller).response;
}

Exchange McpServer::Process(const json& message, const Caller& caller) const {
  Exchange ex;
  auto reply = [&ex](json response, int http_status = 200) {
    ex.response = std::move(response);
    ex.http_status = http_status;
    return std::move(ex);
  };
  try {
    if (message.is_array())
      return reply(ErrorResponse(nullptr, kInvalidRequest, "batches are not supported: send one JSON-RPC message at a time"));
    if (!message.is_object()) return reply(ErrorResponse(nullptr, kInvalidRequest, "a message must be a JSON-RPC object"));
    json id = message.contains("id") ? message["id"] : json();
    bool has_id = message.contains("id");
    if (has_id && !id.is_string() && !id.is_number_integer())
      return reply(ErrorResponse(nullptr, kInvalidRequest, "'id' must be a string or an integer"));
    if (!message.contains("method")) {
      // A response (to a request this server never sends) or garbage: nothing to answer to.
      if (message.contains("result") || message.contains("error")) return ex;
      return reply(ErrorResponse(id, kInvalidRequest, "a request needs 'method'"));
    }
    if (message.value("jsonrpc", json()) != "2.0") return reply(ErrorResponse(id, kInvalidRequest, "'jsonrpc' must be \"2.0\""));
    if (!message["method"].is_string()) return reply(ErrorResponse(id, kInvalidRequest, "'method' must be a string"));
    std::string method = message["method"];
    json params = message.contains("params") ? message["params"] : json::object();
    if (params.is_null()) params = json::object();
    if (!params.is_object()) {
      if (!has_id) return ex;
      return reply(ErrorResponse(id, kInvalidParams, "'params' must be an object"));
    }
    if (!has_id) return ex;  // a notification: initialized, cancelled, ... nothing to do

    // The version travels with each request (2026-07-28); the older revisions never put
    // one in _meta, and such a request is answered as they define.
    bool modern = false;
    json version = MetaVersion(message);
    if (!version.is_null()) {
      if (!version.is_string() || !IsSupportedVersion(version.get<std::string>()))
        return reply(ErrorResponse(id, kUnsupportedProtocolVersion, "Unsupported protocol version",
                                   {{"supported", SupportedVersions()},
                                    {"requested", version.is_string() ? version : json(version.dump())}}),
                     400);
      modern = version == kLatest;
    }
    if (modern) {
      std::string problem = MetaProblem(params["_meta"]);
      if (!problem.empty()) return reply(ErrorResponse(id, kInvalidParams, problem), 400);
    }
    bool is_error = false;
    json result = Dispatch(method, params, caller, id, modern, &ex, &is_error);
    if (is_error) {
      int status = 200;
      if (modern && result["error"]["code"] == kMethodNotFound) status = 404;
      return reply(std::move(result), status);
    }
    if (modern || method == "server/discover") {
      result["resultType"] = "complete";
      if (!result.contains("_meta") || !result["_meta"].is_object()) result["_meta"] = json::object();
      result["_meta"][kMetaServerInfo] = ServerInfo(options_);
    }
    return reply(json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
  } catch (const std::exception& e) {
    Exchange failed;
    failed.response = ErrorResponse(nullptr, kInternalError, std::string("internal error: ") + e.what());
    return failed;
  }
}

json McpServer::Dispatch(const std::string& method, const json& params, const Caller& caller, const json& id,
                         bool modern, Exchange* exchange, bool* is_error) const {
  auto fail = [&](int code, std::string message, json data = nullptr) {
    *is_error = true;
    return ErrorResponse(id, code, message, data);
  };
  // CacheableResult's fields, in the modern revision only.
  auto cacheable = [modern](json result, int64_t ttl_ms, const char* scope) {
    if (modern) {
      result["ttlMs"] = ttl_ms;
      result["cacheScope"] = scope;
    }
    return result;
  };
  // The handshake and ping are the older revisions' (2026-07-28 removed both).
  if (modern && (method == "initialize" || method == "ping"))
    return fail(kMethodNotFound, "'" + method + "' is not a method of protocol version 2026-07-28");
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
  if (method == "server/discover")  // DiscoverResult; serverInfo goes in _meta (Process)
    return {{"supportedVersions", SupportedVersions()},
            {"capabilities", Capabilities()},
            {"instructions", kInstructions},
            {"ttlMs", kListTtlMs},
            {"cacheScope", "public"}};
  if (method == "ping") return json::object();
  if (method == "subscriptions/listen" && modern) {
    // brig's lists never change and it has no resource subscriptions (its capabilities say
    // so), so it honours none of the filter: it acknowledges an empty one and ends the
    // subscription gracefully at once, rather than hold a stream open that never carries
    // anything.
    if (!params.contains("notifications") || !params["notifications"].is_object())
      return fail(kInvalidParams, "subscriptions/listen needs 'notifications' (an object)");
    exchange->notifications.push_back(
        {{"jsonrpc", "2.0"},
         {"method", "notifications/subscriptions/acknowledged"},
         {"params", {{"_meta", {{kMetaSubscriptionId, id}}}, {"notifications", json::object()}}}});
    return {{"_meta", {{kMetaSubscriptionId, id}}}};
  }
  if (method == "tools/list") return cacheable(ToolList(), kListTtlMs, "public");
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
  if (method == "resources/list") return cacheable({{"resources", json::array()}}, kListTtlMs, "public");
  if (method == "resources/templates/list")
    return cacheable({{"resourceTemplates",
                       json::array({{{"uriTemplate", "brig://sessions/{session_id}/files/{path}"},
                                     {"name", "session-file"},
                                     {"title", "A file of a brig session"},
                                     {"description", "A file of a session, e.g. one that run_python wrote."}}})}},
                     kListTtlMs, "public");
  if (method == "resources/read") {
    if (!params.contains("uri") || !params["uri"].is_string()) return fail(kInvalidParams, "resources/read needs 'uri' (a string)");
    auto read = ReadResource(backend_, options_, caller, params["uri"].get<std::string>());
    if (!read.ok()) {
      // A resource that does not exist: -32002 up to 2025-11-25, -32602 in 2026-07-28.
      int code = read.status().IsNotFound() && !modern ? kLegacyResourceNotFound : kInvalidParams;
      return fail(code, read.status().ToString(), {{"uri", params["uri"]}});
    }
    return cacheable(read.value(), 0, "private");
  }
  return fail(kMethodNotFound, "unknown method '" + method.substr(0, 200) + "'");
}

}  // namespace brig::mcp
