#include "files/glob.h"

#include <algorithm>

#include "names/utf8.h"
#include "store/validation.h"

namespace brig::files {
namespace {

Status Bad(std::string_view pattern, const std::string& why) {
  return Status::InvalidArgument("bad glob pattern '" + std::string(pattern) + "': " + why);
}

bool IsControl(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

}  // namespace

StatusOr<GlobPattern> GlobPattern::Compile(std::string_view pattern) {
  if (pattern.size() > store::kMaxPathBytes) {
    return Status::InvalidArgument("glob pattern is longer than " + std::to_string(store::kMaxPathBytes) + " bytes");
  }
  if (!utf8::IsValid(pattern)) return Status::InvalidArgument("glob pattern is not valid UTF-8");
  if (pattern.empty() || pattern[0] != '/') return Bad(pattern, "it must be absolute (start with '/')");
  std::u32string cps;
  for (size_t i = 0; i < pattern.size();) {
    const char32_t c = utf8::Decode(pattern, &i);
    if (IsControl(c)) return Bad(pattern, "it holds a control character");
    cps.push_back(c);
  }

  GlobPattern g;
  size_t i = 1;  // past the leading '/'
  while (true) {
    const size_t end = std::min(cps.find(U'/', i), cps.size());
    const std::u32string_view comp(cps.data() + i, end - i);
    if (comp.empty()) return Bad(pattern, "it has an empty component ('//' or a trailing '/')");
    Segment seg;
    if (comp == U"**") {
      seg.globstar = true;
    } else {
      for (size_t j = 0; j < comp.size();) {
        const char32_t c = comp[j++];
        Token t;
        if (c == '*') {
          // "**" inside a component is "*"; consecutive stars add nothing.
          if (!seg.tokens.empty() && seg.tokens.back().kind == Token::kStar) continue;
          t.kind = Token::kStar;
        } else if (c == '?') {
          t.kind = Token::kAnyOne;
        } else if (c == '\\') {
          if (j >= comp.size()) return Bad(pattern, "a backslash ends a component");
          t.c = comp[j++];
        } else if (c == '[') {
          t.kind = Token::kClass;
          if (j < comp.size() && (comp[j] == '!' || comp[j] == '^')) {
            t.negated = true;
            ++j;
          }
          bool first = true;
          bool closed = false;
          while (j < comp.size()) {
            char32_t lo = comp[j++];
            if (lo == ']' && !first) {
              closed = true;
              break;
            }
            first = false;
            if (lo == '\\') {
              if (j >= comp.size()) break;
              lo = comp[j++];
            }
            char32_t hi = lo;
            if (j + 1 < comp.size() && comp[j] == '-' && comp[j + 1] != ']') {
              hi = comp[j + 1];
              j += 2;
              if (hi == '\\') {
                if (j >= comp.size()) break;
                hi = comp[j++];
              }
              if (hi < lo) return Bad(pattern, "a range in [...] is out of order");
            }
            t.ranges.push_back({lo, hi});
          }
          if (!closed) return Bad(pattern, "'[' without a closing ']'");
        } else {
          t.c = c;
        }
        seg.tokens.push_back(std::move(t));
      }
    }
    g.segments_.push_back(std::move(seg));
    if (end == cps.size()) break;
    i = end + 1;
  }

  // The literal leading components.
  g.literal_prefix_ = "/";
  for (size_t s = 0; s < g.segments_.size(); ++s) {
    const Segment& seg = g.segments_[s];
    const bool literal = !seg.globstar && std::all_of(seg.tokens.begin(), seg.tokens.end(),
                                                      [](const Token& t) { return t.kind == Token::kLiteral; });
    if (!literal) break;
    for (const Token& t : seg.tokens) utf8::Append(&g.literal_prefix_, t.c);
    if (s + 1 < g.segments_.size()) g.literal_prefix_ += '/';
  }
  return g;
}

bool GlobPattern::TokenMatches(const Token& t, char32_t c) {
  switch (t.kind) {
    case Token::kLiteral: return c == t.c;
    case Token::kAnyOne: return true;
    case Token::kClass: {
      bool in = false;
      for (const auto& [lo, hi] : t.ranges) in = in || (c >= lo && c <= hi);
      return in != t.negated;
    }
    case Token::kStar: return false;
  }
  return false;
}

bool GlobPattern::SegmentMatches(const Segment& seg, std::u32string_view name) {
  // Greedy with one backtrack point (the last star): O(|name| x |tokens|).
  const std::vector<Token>& tokens = seg.tokens;
  size_t t = 0, n = 0;
  size_t star_t = std::string::npos, star_n = 0;
  while (n < name.size()) {
    if (t < tokens.size() && tokens[t].kind == Token::kStar) {
      star_t = t++;
      star_n = n;
    } else if (t < tokens.size() && TokenMatches(tokens[t], name[n])) {
      ++t;
      ++n;
    } else if (star_t != std::string::npos) {
      t = star_t + 1;
      n = ++star_n;
    } else {
      return false;
    }
  }
  while (t < tokens.size() && tokens[t].kind == Token::kStar) ++t;
  return t == tokens.size();
}

bool GlobPattern::Matches(std::string_view path) const {
  if (path.empty() || path[0] != '/') return false;
  std::vector<std::u32string> comps(1);
  for (size_t i = 1; i < path.size();) {
    if (path[i] == '/') {
      comps.emplace_back();
      ++i;
      continue;
    }
    comps.back().push_back(utf8::Decode(path, &i));
  }
  // ok[p][c]: segments p.. match components c..; filled from the end.
  const size_t P = segments_.size(), C = comps.size();
  std::vector<std::vector<char>> ok(P + 1, std::vector<char>(C + 1, 0));
  ok[P][C] = 1;
  for (size_t p = P; p-- > 0;) {
    for (size_t c = C + 1; c-- > 0;) {
      if (segments_[p].globstar) {
        ok[p][c] = ok[p + 1][c] || (c < C && ok[p][c + 1]);
      } else {
        ok[p][c] = c < C && ok[p + 1][c + 1] && SegmentMatches(segments_[p], comps[c]);
      }
    }
  }
  return ok[0][0];
}

}  // namespace brig::files
