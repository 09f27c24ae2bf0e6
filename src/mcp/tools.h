// The MCP server's tools: their definitions (JSON Schemas for input and output,
// annotations, descriptions written for a model) and their handlers, which call only the
// public API through a Backend.
//
//   run_python      code [, session_id] [, timeout_s]: stdout, stderr, the last
//                   expression's value, the error with its traceback; the files it wrote
//                   (images inline, other files as resource links). No session_id: a new
//                   session is made and its id returned.
//   read_file       session_id, path [, offset] [, limit]
//   write_file      session_id, path, content [, encoding utf-8|base64]
//   edit_file       session_id, path, old_string, new_string [, replace_all]
//   list_files      session_id [, prefix]
//   glob            session_id, pattern
//   grep            session_id, pattern [, path_glob] [, case_insensitive] [, output_mode] [, max_lines]
//   delete_file     session_id, path
//   reset_session   session_id
//   fork_session    session_id [, new_session_id]
//   list_sessions
//
// Every result is a CallToolResult: content (text first, then images and resource links),
// structuredContent matching the tool's outputSchema when it succeeded, and isError: true
// with a message when it did not. Arguments are checked here (types, ranges, unknown
// names) and a bad one is a tool error naming it, so that the model can correct the call.
//
// Thread-safety: plain functions; the Backend must be thread-safe.
#ifndef BRIG_MCP_TOOLS_H_
#define BRIG_MCP_TOOLS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mcp/backend.h"
#include "mcp/mcp_server.h"

namespace brig::mcp {

// The tool definitions, as tools/list lists them.
const nlohmann::json& ToolDefinitions();
// Whether a tool of that name exists.
bool HasTool(std::string_view name);

// Runs the tool `name` with `arguments` (a JSON object, or null for none): the
// CallToolResult. REQUIRES: HasTool(name).
nlohmann::json CallTool(Backend& backend, const Options& options, const Caller& caller, std::string_view name,
                        const nlohmann::json& arguments);

// Reads a brig://sessions/{id}/files/{path} URI: a resources/read result, or a Status
// (InvalidArgument for another URI; the FileService's errors).
StatusOr<nlohmann::json> ReadResource(Backend& backend, const Options& options, const Caller& caller,
                                      std::string_view uri);
// The brig:// URI of a session's file.
std::string FileUri(std::string_view thread_id, std::string_view path);

// `text` cut to at most `max_bytes` (at UTF-8 boundaries where it is UTF-8): the first two
// thirds and the last third, with a line in between saying how many bytes of `what` were
// cut. Unchanged when it fits.
std::string CapText(std::string_view text, size_t max_bytes, std::string_view what);

}  // namespace brig::mcp

#endif  // BRIG_MCP_TOOLS_H_
