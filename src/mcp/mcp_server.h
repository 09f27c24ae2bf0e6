// brig::mcp::McpServer: the Model Context Protocol (JSON-RPC 2.0) over brig's sessions,
// shared by `brig mcp` (stdio, stdio.h) and `brig serve`'s POST /mcp (streamable HTTP).
//
// Protocol revisions. 2026-07-28 is stateless: no initialize, no Mcp-Session-Id; every
// request may carry its version in params._meta["io.modelcontextprotocol/protocolVersion"],
// and server/discover says what the server speaks. The older revisions 2025-06-18 and
// 2025-11-25 (and 2025-03-26) open with `initialize`: the server answers with the client's
// version when it speaks it, else its newest handshake revision (2025-11-25). The server
// keeps no state between messages either way: tools/list and tools/call are answered with
// or without an initialize before them, and the session a tool works on is its
// `session_id` argument (the brig session's thread_id).
//
// Methods: initialize, notifications/* (accepted, nothing answered), ping, server/discover,
// tools/list, tools/call, resources/list (empty), resources/templates/list,
// resources/read (brig://sessions/{id}/files/{path} URIs that tool results link to).
//
// Errors. A protocol problem is a JSON-RPC error: -32700 malformed JSON (or a message
// nesting deeper than 64 levels, or larger than Options::max_message_bytes), -32600 not a
// request object (batches are refused: no revision in use has them), -32601 unknown
// method, -32602 bad params (unknown tool, unsupported protocol version). Everything a tool
// does wrong or meets (a Python exception, a timeout, bad or missing arguments, a missing
// file, a session the caller may not use) is a tool result with isError: true and a
// message the model can act on (tools.h).
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

class McpServer {
 public:
  // Borrows `backend`, which must outlive the server.
  McpServer(Backend& backend, Options options = {});

  // One message (a line of stdio, a POST body) in, the reply's JSON text out; nullopt when
  // no reply is due (a notification, or a response from the client). Never throws.
  std::optional<std::string> HandleText(std::string_view text, const Caller& caller) const;
  // The same for a parsed message; nullopt as above.
  std::optional<nlohmann::json> Handle(const nlohmann::json& message, const Caller& caller) const;

  // tools/list's result: the tool definitions (name, title, description, inputSchema,
  // outputSchema, annotations).
  nlohmann::json ToolList() const;

  const Options& options() const { return options_; }

 private:
  nlohmann::json Dispatch(const std::string& method, const nlohmann::json& params, const Caller& caller,
                          const nlohmann::json& id, bool* is_error) const;
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
// 2026-07-28 (SEP-2243, SEP-2567): an HTTP header (Mcp-Method, Mcp-Name,
// MCP-Protocol-Version) that says something else than the message it comes with.
inline constexpr int kHeaderMismatch = -32001;

}  // namespace brig::mcp

#endif  // BRIG_MCP_MCP_SERVER_H_
