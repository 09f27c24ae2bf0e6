// HTTP header validation of MCP requests (http_headers.h).
#include "mcp/http_headers.h"

#include "brig/text.h"
#include "mcp/mcp_server.h"

namespace brig::mcp {

using nlohmann::json;

namespace {

// RFC 9110 field values: visible ASCII, space, horizontal tab.
bool IsPlainHeaderValue(std::string_view v) {
  for (unsigned char c : v)
    if (!(c == '\t' || (c >= 0x20 && c <= 0x7e))) return false;
  return true;
}

}  // namespace

std::optional<std::string> DecodeHeaderValue(std::string_view value) {
  constexpr std::string_view kPrefix = "=?base64?", kSuffix = "?=";
  if (value.size() >= kPrefix.size() + kSuffix.size() && value.starts_with(kPrefix) && value.ends_with(kSuffix))
    return Base64Decode(value.substr(kPrefix.size(), value.size() - kPrefix.size() - kSuffix.size()));
  return std::string(value);
}

std::optional<json> CheckHttpHeaders(const json& message, const HttpHeaders& h) {
  const json id = message.is_object() && message.contains("id") &&
                          (message["id"].is_string() || message["id"].is_number_integer())
                      ? message["id"]
                      : json(nullptr);
  if (!h.protocol_version.empty() && !IsSupportedVersion(h.protocol_version))
    return ErrorResponse(id, kUnsupportedProtocolVersion, "Unsupported protocol version",
                         {{"supported", SupportedVersions()},
                          {"requested", IsPlainHeaderValue(h.protocol_version) ? std::string(h.protocol_version.substr(0, 64))
                                                                                 : std::string("(not ASCII)")}});
  if (!message.is_object()) return std::nullopt;  // the JSON-RPC layer refuses it
  auto mismatch = [&id](const std::string& why) {
    return ErrorResponse(id, kHeaderMismatch, "Header mismatch: " + why);
  };
  for (auto [header, value] : {std::pair<const char*, std::string_view>{"MCP-Protocol-Version", h.protocol_version},
                               {"Mcp-Method", h.method},
                               {"Mcp-Name", h.name}})
    if (!IsPlainHeaderValue(value)) return mismatch(std::string("the ") + header + " header holds invalid characters");

  const json body_version = MetaVersion(message);
  const bool is_request = message.contains("id") && message.contains("method");
  const bool modern = body_version == kModernVersion || h.protocol_version == kModernVersion;
  const json method = message.contains("method") ? message["method"] : json();
  const json* params = message.contains("params") && message["params"].is_object() ? &message["params"] : nullptr;
  const char* name_key = method == "resources/read" ? "uri" : "name";
  const bool needs_name = method == "tools/call" || method == "resources/read" || method == "prompts/get";

  if (modern && is_request) {
    if (h.protocol_version.empty()) return mismatch("a 2026-07-28 request needs the MCP-Protocol-Version header");
    if (h.method.empty()) return mismatch("a 2026-07-28 request needs the Mcp-Method header");
    if (needs_name && h.name.empty()) return mismatch("a 2026-07-28 " + method.get<std::string>() + " request needs the Mcp-Name header");
  }
  if (!h.method.empty() && method != h.method)
    return mismatch("Mcp-Method header value '" + std::string(h.method.substr(0, 100)) + "' does not match the message's method");
  if (!h.name.empty()) {
    auto name = DecodeHeaderValue(h.name);
    if (!name) return mismatch("the Mcp-Name header's =?base64?...?= value is not valid base64");
    if (!params || !params->contains(name_key) || (*params)[name_key] != *name)
      return mismatch(std::string("Mcp-Name header value does not match params.") + name_key);
  }
  if (!h.protocol_version.empty() && ((modern && is_request) || !body_version.is_null()) && body_version != h.protocol_version)
    return mismatch("MCP-Protocol-Version header value '" + std::string(h.protocol_version) +
                    "' does not match _meta[\"io.modelcontextprotocol/protocolVersion\"]");
  return std::nullopt;
}

}  // namespace brig::mcp
