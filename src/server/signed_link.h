// Signed file links: a URL that lets a browser download one file of one session until a
// time, without a token (`brig files link`, and the MCP server's resource links).
//
//   /files/{thread_id}/{path}?expires=UNIX_SECONDS&sig=HEX
//
// sig = HMAC-SHA256(key, "brig-file-link-v1\n" thread_id "\n" path "\n" expires), hex. The
// key is shared by every node and by the CLI that makes links: --link-key FILE or
// BRIG_LINK_KEY (at least 32 characters), else $BRIG_HOME/link.key, made on first use with
// 32 random bytes (mode 0600).
#ifndef BRIG_SERVER_SIGNED_LINK_H_
#define BRIG_SERVER_SIGNED_LINK_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "brig/status.h"

namespace brig::server {

std::string SignFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires);
// The link's path and query (percent-encoded), to be put after the server's base URL.
std::string MakeFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires);
// True iff `sig` is the signature of (thread_id, path, expires) and now < expires.
bool VerifyFileLink(std::string_view key, std::string_view thread_id, std::string_view path, int64_t expires,
                    std::string_view sig, int64_t now);
// The key, as described above. `file` empty: BRIG_LINK_KEY, else `default_file` (made if
// missing). InvalidArgument for a key shorter than 32 characters or an unreadable file.
StatusOr<std::string> LoadLinkKey(const std::string& file, const std::string& default_file);
// Percent-encodes everything but unreserved characters and, when keep_slash, '/'.
std::string PercentEncode(std::string_view s, bool keep_slash);

}  // namespace brig::server

#endif  // BRIG_SERVER_SIGNED_LINK_H_
