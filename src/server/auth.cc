#include "server/auth.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "util/hmac_sha256.h"

namespace brig::server {

namespace {
bool TokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("._~+/=-").find(c) != std::string_view::npos;
}
std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}
}  // namespace

bool Token::MayUse(std::string_view thread_id) const {
  if (threads.empty()) return true;
  for (const std::string& t : threads) {
    if (!t.empty() && t.back() == '*') {
      if (thread_id.starts_with(std::string_view(t).substr(0, t.size() - 1))) return true;
    } else if (t == thread_id) {
      return true;
    }
  }
  return false;
}

StatusOr<TokenSet> TokenSet::Parse(std::string_view text, std::string_view source) {
  TokenSet set;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto words = Words(line);
    if (words.empty() || words[0].front() == '#') continue;
    auto where = std::string(source) + " line " + std::to_string(line_no);
    Token token;
    token.secret = std::string(words[0]);
    if (token.secret.size() < 16 || token.secret.size() > 256)
      return Status::InvalidArgument(where + ": a token must be 16 to 256 characters long");
    for (char c : token.secret)
      if (!TokenChar(c)) return Status::InvalidArgument(where + ": a token may hold only A-Z a-z 0-9 . _ ~ + / = -");
    token.name = "token-" + std::to_string(line_no);
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      if (w == "read-only") {
        token.read_only = true;
      } else if (w.starts_with("threads=")) {
        std::string_view list = w.substr(8);
        while (!list.empty()) {
          size_t comma = list.find(',');
          std::string_view t = list.substr(0, comma);
          list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
          if (t.empty() || t == "*") return Status::InvalidArgument(where + ": empty thread in threads= (omit threads= for every thread)");
          token.threads.emplace_back(t);
        }
        if (token.threads.empty()) return Status::InvalidArgument(where + ": threads= lists no thread");
      } else if (w.starts_with("name=") && w.size() > 5) {
        token.name = std::string(w.substr(5));
      } else {
        return Status::InvalidArgument(where + ": unknown option '" + std::string(w.substr(0, 40)) +
                                       "' (expected threads=A,B,prefix*, read-only or name=NAME)");
      }
    }
    for (const Token& other : set.tokens_)
      if (other.secret == token.secret) return Status::InvalidArgument(where + ": the same token appears twice");
    set.tokens_.push_back(std::move(token));
  }
  return set;
}

StatusOr<TokenSet> TokenSet::Load(const std::string& file) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Status::InvalidArgument("cannot read the tokens file " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto set = Parse(ss.str(), file);
    if (set.ok() && set.value().empty()) return Status::InvalidArgument("the tokens file " + file + " holds no token");
    return set;
  }
  if (const char* env = std::getenv("BRIG_TOKENS"); env && *env) return Parse(env, "BRIG_TOKENS");
  return TokenSet{};
}

const Token* TokenSet::Find(std::string_view presented) const {
  const Token* found = nullptr;
  // Every token is compared, so the time does not say which one (or whether one) matched.
  for (const Token& t : tokens_)
    if (util::ConstantTimeEquals(t.secret, presented)) found = &t;
  return found;
}

std::string_view BearerToken(std::string_view authorization) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (authorization.size() <= kPrefix.size()) return {};
  for (size_t i = 0; i < kPrefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != std::tolower(static_cast<unsigned char>(kPrefix[i])))
      return {};
  return authorization.substr(kPrefix.size());
}

}  // namespace brig::server
