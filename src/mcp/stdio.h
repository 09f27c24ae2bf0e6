// The MCP stdio transport: newline-delimited JSON-RPC messages on a pair of file
// descriptors (stdin/stdout in `brig mcp`). Nothing but protocol messages is written to
// `out_fd`; logs go to stderr.
//
// Requests are handled on `threads` threads, so that a long run_python does not hold up a
// file read; replies are written whole, one per line, in the order they finish (JSON-RPC
// matches them by id). A line longer than Options::max_message_bytes is skipped up to its
// end and answered with a parse error. Returns at end of input, once every reply is
// written: 0, or 1 if reading or writing failed.
#ifndef BRIG_MCP_STDIO_H_
#define BRIG_MCP_STDIO_H_

#include "mcp/mcp_server.h"

namespace brig::mcp {

int ServeStdio(const McpServer& server, const Caller& caller, int in_fd, int out_fd, int threads = 4);

}  // namespace brig::mcp

#endif  // BRIG_MCP_STDIO_H_
