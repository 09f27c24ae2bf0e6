// brig::mcp::CheckHttpHeaders: the streamable HTTP transport's request headers against
// the JSON-RPC message they come with (2026-07-28, "Request Metadata" and "Server
// Validation"). Intermediaries route on MCP-Protocol-Version, Mcp-Method and Mcp-Name
// without reading the body, so the server refuses a message whose headers say something
// else: else a proxy and brig would act on different requests.
//
// Rules:
//   - MCP-Protocol-Version, when sent, must be a version the server speaks: else -32022
//     UnsupportedProtocolVersion with data {supported, requested} (any era).
//   - A modern request (its _meta or its MCP-Protocol-Version header names 2026-07-28)
//     must send MCP-Protocol-Version equal to its _meta version, Mcp-Method, and Mcp-Name
//     for tools/call and resources/read: a missing one is -32020 HeaderMismatch.
//   - Any header sent must match the body (Mcp-Method: method; Mcp-Name: params.name, or
//     params.uri for resources/read, after decoding the "=?base64?...?=" form;
//     MCP-Protocol-Version: the _meta version when there is one), and hold only visible
//     ASCII, space and tab: else -32020.
//   - A legacy request (2025-11-25 and earlier) may omit every header: the SDK clients of
//     those revisions send none of the mirrored ones.
// Notifications (no id) are not checked beyond the version: 2026-07-28 defines no header
// rules for them. Thread-safe (pure).
#ifndef BRIG_MCP_HTTP_HEADERS_H_
#define BRIG_MCP_HTTP_HEADERS_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace brig::mcp {

struct HttpHeaders {
  std::string_view protocol_version;  // MCP-Protocol-Version ("" when absent)
  std::string_view method;            // Mcp-Method
  std::string_view name;              // Mcp-Name
};

// nullopt when the headers fit the message, else the JSON-RPC error response to send with
// HTTP 400. `message` is the parsed body (anything: a non-object is left to the JSON-RPC
// layer).
std::optional<nlohmann::json> CheckHttpHeaders(const nlohmann::json& message, const HttpHeaders& headers);

// The value of an Mcp-Name / Mcp-Param-* header: itself, or the bytes of its
// "=?base64?...?=" form; nullopt when that form is not valid base64.
std::optional<std::string> DecodeHeaderValue(std::string_view value);

}  // namespace brig::mcp

#endif  // BRIG_MCP_HTTP_HEADERS_H_
