// brig::mcp::McpServer: the Model Context Protocol (JSON-RPC 2.0) over brig's sessions,
// shared by `brig mcp` (stdio, stdio.h) and `brig serve`'s POST /mcp (streamable HTTP).
//
// Protocol revisions. The server is dual-era:
//   - modern, 2026-07-28 (schema/2026-07-28/schema.ts): stateless, no initialize, no
//     Mcp-Session-Id. A request is modern when params._meta["io.modelcontextprotocol/
//     protocolVersion"] is "2026-07-28"; it must then also carry
//     "io.modelcontextprotocol/clientCapabilities" (an object) and, if it has one, a
//     well-formed "io.modelcontextprotocol/clientInfo" (name and version strings), else
//     -32602 (HTTP 400). Its results carry resultType "complete" and
//     _meta["io.modelcontextprotocol/serverInfo"]; list results, resources/read and
//     server/discover carry ttlMs and cacheScope. initialize and ping are not methods of
//     the revision (-32601, HTTP 404). subscriptions/listen is acknowledged with an empty
//     filter (brig's lists never change) and ended at once with its empty result.
//     A resource that does not exist is -32602.
//   - legacy, 2025-11-25, 2025-06-18, 2025-03-26: open with `initialize`; the server answers
//     with the client's version when it speaks it, else 2025-11-25. A missing resource is
//     -32002. Results are as those revisions define them (no resultType, ttlMs, ...).
// A _meta protocolVersion the server does not speak is -32022 UnsupportedProtocolVersion
// with data {supported, requested} (HTTP 400). server/discover is answered in the modern
// shape whatever the request carries (it exists only in 2026-07-28). The server keeps no
// state between messages in either era: tools/list and tools/call are answered with or
// without an initialize before them, and the session a tool works on is its `session_id`
// argument (the brig session's thread_id).
//
// Methods: initialize, ping (legacy), notifications/* (accepted, nothing answered),
// server/discover, subscriptions/listen (modern), tools/list, tools/call, resources/list
// (empty), resources/templates/list, resources/read (brig://sessions/{id}/files/{path}
// URIs that tool results link to).
//
// Errors. A protocol problem is a JSON-RPC error: -32700 malformed JSON (or a message
// nesting deeper than 64 levels, or larger than Options::max_message_bytes), -32600 not a
// request object (batches are refused: no revision in use has them), -32601 unknown
// method, -32602 bad params (unknown tool, a malformed modern _meta), -32022 unsupported
// protocol version. Everything a tool does wrong or meets (a Python exception, a timeout,
// bad or missing arguments, a missing file, a session the caller may not use) is a tool
// result with isError: true and a message the model can act on (tools.h).
//
// Thread-safety: Handle may be called from several threads at once (it keeps no state).
#ifndef BRIG_MCP_MCP_SERVER_H_
#define BRIG_MCP_MCP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mcp/backend.h"

namespace brig::mcp {

struct Options {
  // Largest message accepted (its JSON text). Default 40 MiB: a 20 MiB file in base64 fits.
  size_t max_message_bytes = size_t{40} << 20;
  // Text kept of each of stdout, stderr, the result and the traceback of run_python, and of a
  // read_file answer's text: the first two thirds and the last third, with a line saying how
  // much was cut in between. Default 50,000 bytes (~12k tokens).
  size_t max_text_bytes = 50'000;
  // Images an execution showed (brig.show) or wrote that come back inline (image content),
  // shown ones first: at most this many, each
  // at most max_image_bytes; the others come back as resource links. Defaults 8, 4 MiB.
  size_t max_images = 8;
  int64_t max_image_bytes = int64_t{4} << 20;
  // Entries of list_files, glob and list_sessions answers, at most (then "truncated").
  size_t max_entries = 1000;
  std::string server_version = "0.1.0";
};

// The revisions the server speaks, newest first: 2026-07-28, 2025-11-25, 2025-06-18,
// 2025-03-26.
const std::vector<std::string>& SupportedVersions();
bool IsSupportedVersion(std::string_view version);
// The revision whose requests carry their version in _meta (2026-07-28).
inline constexpr std::string_view kModernVersion = "2026-07-28";
inline constexpr std::string_view kMetaProtocolVersion = "io.modelcontextprotocol/protocolVersion";

// What params._meta["io.modelcontextprotocol/protocolVersion"] of `message` holds (any JSON
// value), or null when the message has none.
nlohmann::json MetaVersion(const nlohmann::json& message);

// What one message produces: notifications to send before the response (the
// acknowledgement of subscriptions/listen), then the response, if one is due.
struct Exchange {
  std::vector<nlohmann::json> notifications;
  std::optional<nlohmann::json> response;
  // The HTTP status 2026-07-28 gives this outcome: 400 for an unsupported version or a
  // malformed modern _meta, 404 for an unknown method of a modern request, else 200.
  int http_status = 200;
};

class McpServer {
 public:
  // Borrows `backend`, which must outlive the server.
  McpServer(Backend& backend, Options options = {});

  // One message (a line of stdio, a POST body) in, the reply's JSON text out; nullopt when
  // no reply is due (a notification, or a response from the client). Notifications the
  // message produces (Exchange) are dropped: transports use Process. Never throws.
  std::optional<std::string> HandleText(std::string_view text, const Caller& caller) const;
  // The same for a parsed message; nullopt as above.
  std::optional<nlohmann::json> Handle(const nlohmann::json& message, const Caller& caller) const;
  // Everything a message produces. Never throws.
  Exchange Process(const nlohmann::json& message, const Caller& caller) const;
  // A message's JSON text parsed, or the parse error response to send (too large, too
  // deep, malformed) in *error.
  std::optional<nlohmann::json> Parse(std::string_view text, nlohmann::json* error) const;

  // tools/list's result: the tool definitions (name, title, description, inputSchema,
  // outputSchema, annotations).
  nlohmann::json ToolList() const;

  const Options& options() const { return options_; }

 private:
  nlohmann::json Dispatch(const std::string& method, const nlohmann::json& params, const Caller& caller,
                          const nlohmann::json& id, bool modern, Exchange* exchange, bool* is_error) const;
  Backend& backend_;
  Options options_;
};

// The JSON text of `j`, with bytes that are not UTF-8 replaced (guest output may hold any).
std::string Dump(const nlohmann::json& j);
// A JSON-RPC error response.
nlohmann::json ErrorResponse(const nlohmann::json& id, int code, std::string_view message,
                             const nlohmann::json& data = nullptr);

// JSON-RPC error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// 2026-07-28's codes (its schema: -32020..-32099 are the specification's).
// An HTTP header (MCP-Protocol-Version, Mcp-Method, Mcp-Name) missing where required,
// malformed, or saying something else than the message it comes with.
inline constexpr int kHeaderMismatch = -32020;
// A request needs a client capability it did not declare (brig needs none: never sent).
inline constexpr int kMissingRequiredClientCapability = -32021;
// The request's protocol version is not one the server speaks; data {supported, requested}.
inline constexpr int kUnsupportedProtocolVersion = -32022;
// 2025-11-25 and earlier: a resource that does not exist (2026-07-28 uses -32602).
inline constexpr int kLegacyResourceNotFound = -32002;

}  // namespace brig::mcp

#endif  // BRIG_MCP_MCP_SERVER_H_
