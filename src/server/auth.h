// brig::server::TokenSet: who may call `brig serve`. Bearer tokens come from a file
// (--tokens FILE) or the environment (BRIG_TOKENS), one token per line:
//
//   # comments and blank lines are ignored
//   s3cr3t-admin-token-0123456789                      full access
//   agent7-token-abcdefghijklmnop threads=agent-7,job-* read-only
//
// A token is 16..256 characters of [A-Za-z0-9._~+/=-]. `threads=` limits it to the listed
// thread_ids (an entry ending in '*' is a prefix); `read-only` to requests that change
// nothing (reading and listing files and sessions). `name=` labels it in the request log
// (the token itself is never logged). Tokens are compared in constant time.
#ifndef BRIG_SERVER_AUTH_H_
#define BRIG_SERVER_AUTH_H_

#include <string>
#include <string_view>
#include <vector>

#include "brig/status.h"

namespace brig::server {

struct Token {
  std::string name;    // for logs: name=, else "token-<line>"
  std::string secret;
  std::vector<std::string> threads;  // empty: every thread
  bool read_only = false;

  // Whether this token may touch `thread_id`.
  bool MayUse(std::string_view thread_id) const;
  bool all_threads() const { return threads.empty(); }
};

class TokenSet {
 public:
  // Parses the format above. InvalidArgument naming `source` and the line for a malformed
  // one (the token's text is never in the message).
  static StatusOr<TokenSet> Parse(std::string_view text, std::string_view source);
  // --tokens FILE if given, else $BRIG_TOKENS if set, else an empty set.
  static StatusOr<TokenSet> Load(const std::string& file);

  bool empty() const { return tokens_.empty(); }
  size_t size() const { return tokens_.size(); }
  // The token whose secret is `presented`, or nullptr.
  const Token* Find(std::string_view presented) const;

 private:
  std::vector<Token> tokens_;
};

// The token of an "Authorization: Bearer X" header value, or "" if it is not one.
std::string_view BearerToken(std::string_view authorization);

}  // namespace brig::server

#endif  // BRIG_SERVER_AUTH_H_
