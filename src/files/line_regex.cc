#include "files/line_regex.h"

#include <algorithm>

#include "names/utf8.h"
#include "store/validation.h"

namespace brig::files {

char32_t FoldLower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c == 0x178) return 0xFF;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;  // even upper, odd lower
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;  // odd upper
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

char32_t FoldUpper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c == 0xFF) return 0x178;
  if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c & ~char32_t{1};
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c : c - 1;
  if (c == 0x3C2) return 0x3A3;  // final sigma
  if (c >= 0x3B1 && c <= 0x3C9) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

namespace {

bool IsAsciiWordByte(unsigned char b) {
  return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
}

using Ranges = std::vector<std::pair<char32_t, char32_t>>;

void Normalize(Ranges* r) {
  std::sort(r->begin(), r->end());
  Ranges out;
  for (const auto& [lo, hi] : *r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.push_back({lo, hi});
    }
  }
  *r = std::move(out);
}

Ranges Complement(Ranges r) {
  Normalize(&r);
  Ranges out;
  char32_t next = 0;
  for (const auto& [lo, hi] : r) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= utf8::kMaxDecoded) out.push_back({next, utf8::kMaxDecoded});
  return out;
}

Ranges DigitRanges() { return {{'0', '9'}}; }
Ranges WordRanges() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
Ranges SpaceRanges() {
  // ECMAScript's WhiteSpace and LineTerminator.
  return {{0x09, 0x0D}, {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
}

// The parsed pattern: a tree whose nodes live in one vector.
struct Node {
  enum Kind { kEmpty, kChar, kAny, kClass, kBol, kEol, kWordB, kNotWordB, kConcat, kAlt, kRepeat };
  Kind kind = kEmpty;
  char32_t c = 0;
  int cls = 0;
  int min = 0, max = 0;  // kRepeat; max -1 = unbounded
  std::vector<int> kids;
};

}  // namespace

// Parser and code generator; a friend of LineRegex.
class RegexCompiler {
 public:
  RegexCompiler(std::u32string pattern, bool ci) : p_(std::move(pattern)) { re_.case_insensitive_ = ci; }

  StatusOr<LineRegex> Run() {
    StatusOr<int> root = ParseAlt(0);
    if (!root.ok()) return root.status();
    if (i_ < p_.size()) return Error("unmatched ')'");
    // Children are added before their parents, so one pass in order sizes every node.
    for (size_t n = 0; n < nodes_.size(); ++n) sizes_.push_back(ComputeSize(static_cast<int>(n)));
    if (Size(root.value()) > LineRegex::kMaxProgramSize) return TooLarge();
    if (Status s = Emit(root.value()); !s.ok()) return s;
    re_.program_.push_back({LineRegex::Op::kMatch});
    re_.mark_.assign(re_.program_.size(), 0);
    FindFirstBytes();
    // A plain string is found with string_view::find.
    const Node& r = nodes_[root.value()];
    if (!re_.case_insensitive_ && (r.kind == Node::kChar || r.kind == Node::kConcat)) {
      bool plain = true;
      std::string lit;
      if (r.kind == Node::kChar) {
        utf8::Append(&lit, r.c);
      } else {
        for (int k : r.kids) {
          if (nodes_[k].kind != Node::kChar) {
            plain = false;
            break;
          }
          utf8::Append(&lit, nodes_[k].c);
        }
      }
      if (plain) {
        re_.literal_only_ = true;
        re_.literal_ = std::move(lit);
      }
    }
    return std::move(re_);
  }

 private:
  using Op = LineRegex::Op;

  // The bytes a match can begin with, if few are possible: follows jumps, splits and
  // assertions (as if every assertion held: a superset) from the start, and succeeds only
  // when every first step is a plain character and no empty match is possible.
  void FindFirstBytes() {
    std::vector<char> seen(re_.program_.size(), 0);
    std::vector<int32_t> stack = {0};
    std::array<bool, 256> bytes{};
    while (!stack.empty()) {
      const int32_t pc = stack.back();
      stack.pop_back();
      if (seen[pc]) continue;
      seen[pc] = 1;
      const LineRegex::Inst& inst = re_.program_[pc];
      switch (inst.op) {
        case Op::kJmp: stack.push_back(inst.x); break;
        case Op::kSplit:
          stack.push_back(inst.x);
          stack.push_back(inst.y);
          break;
        case Op::kBol:
        case Op::kEol:
        case Op::kWordBoundary:
        case Op::kNotWordBoundary: stack.push_back(pc + 1); break;
        case Op::kChar: {
          if (re_.case_insensitive_ && inst.c >= 0x80) return;  // folding beyond ASCII
          std::string utf8;
          utf8::Append(&utf8, inst.c);
          bytes[static_cast<unsigned char>(utf8[0])] = true;
          if (re_.case_insensitive_) bytes[static_cast<unsigned char>(FoldUpper(inst.c))] = true;
          break;
        }
        default: return;  // kAny, kClass, kMatch: no useful set
      }
    }
    re_.use_first_bytes_ = true;
    re_.first_bytes_ = bytes;
  }

  static Status Error(const std::string& why) { return Status::InvalidArgument("bad regular expression: " + why); }
  static Status TooLarge() {
    return Status::InvalidArgument("regular expression is too large (over " +
                                   std::to_string(LineRegex::kMaxProgramSize) +
                                   " states once its repetitions are expanded)");
  }

  bool AtEnd() const { return i_ >= p_.size(); }
  char32_t Peek(size_t ahead = 0) const { return i_ + ahead < p_.size() ? p_[i_ + ahead] : 0; }

  int Add(Node n) {
    nodes_.push_back(std::move(n));
    return static_cast<int>(nodes_.size()) - 1;
  }
  int AddClass(Ranges r, bool negated) {
    Normalize(&r);
    re_.classes_.push_back({std::move(r), negated});
    Node n;
    n.kind = Node::kClass;
    n.cls = static_cast<int>(re_.classes_.size()) - 1;
    return Add(std::move(n));
  }

  StatusOr<int> ParseAlt(int depth) {
    if (depth > LineRegex::kMaxNesting) return Error("groups nested deeper than " + std::to_string(LineRegex::kMaxNesting));
    Node alt;
    alt.kind = Node::kAlt;
    while (true) {
      StatusOr<int> c = ParseConcat(depth);
      if (!c.ok()) return c;
      alt.kids.push_back(c.value());
      if (AtEnd() || Peek() != '|') break;
      ++i_;
    }
    if (alt.kids.size() == 1) return alt.kids[0];
    return Add(std::move(alt));
  }

  StatusOr<int> ParseConcat(int depth) {
    Node cat;
    cat.kind = Node::kConcat;
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      StatusOr<int> r = ParseRepeat(depth);
      if (!r.ok()) return r;
      cat.kids.push_back(r.value());
    }
    if (cat.kids.empty()) return Add(Node{});
    if (cat.kids.size() == 1) return cat.kids[0];
    return Add(std::move(cat));
  }

  // At '{': parses {n}, {n,} or {n,m} and advances past it; false (not advancing) if the
  // text is not a valid count, which then is a literal '{'.
  bool TryCount(int* min, int* max, Status* error) {
    size_t j = i_ + 1;
    auto number = [&](int* out) {
      const size_t start = j;
      int64_t v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        v = std::min<int64_t>(v * 10 + (p_[j] - '0'), 1'000'000);
        ++j;
      }
      *out = static_cast<int>(v);
      return j > start;
    };
    int lo = 0, hi = 0;
    if (!number(&lo)) return false;
    if (j < p_.size() && p_[j] == '}') {
      hi = lo;
    } else if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (j < p_.size() && p_[j] == '}') {
        hi = -1;
      } else if (!number(&hi) || j >= p_.size() || p_[j] != '}') {
        return false;
      }
    } else {
      return false;
    }
    i_ = j + 1;
    if (lo > LineRegex::kMaxRepeat || hi > LineRegex::kMaxRepeat) {
      *error = Error("repetition count over " + std::to_string(LineRegex::kMaxRepeat));
    } else if (hi >= 0 && hi < lo) {
      *error = Error("repetition {" + std::to_string(lo) + "," + std::to_string(hi) + "} has max < min");
    }
    *min = lo;
    *max = hi;
    return true;
  }

  StatusOr<int> ParseRepeat(int depth) {
    StatusOr<int> atom = ParseAtom(depth);
    if (!atom.ok()) return atom;
    bool quantified = false;
    while (!AtEnd()) {
      int min, max;
      const char32_t q = Peek();
      if (q == '*') {
        min = 0, max = -1, ++i_;
      } else if (q == '+') {
        min = 1, max = -1, ++i_;
      } else if (q == '?') {
        min = 0, max = 1, ++i_;
      } else if (q == '{') {
        Status error;
        if (!TryCount(&min, &max, &error)) break;
        if (!error.ok()) return error;
      } else {
        break;
      }
      if (quantified) return Error("nothing to repeat before '" + std::string(1, static_cast<char>(q)) + "'");
      quantified = true;
      if (!AtEnd() && Peek() == '?') ++i_;  // lazy: the same lines match
      Node rep;
      rep.kind = Node::kRepeat;
      rep.min = min;
      rep.max = max;
      rep.kids = {atom.value()};
      atom = Add(std::move(rep));
    }
    return atom;
  }

  StatusOr<int> ParseAtom(int depth) {
    const char32_t c = p_[i_++];
    Node n;
    switch (c) {
      case '(': {
        if (Peek() == '?') {
          if (Peek(1) != ':') return Error("lookaround and named groups are not supported");
          i_ += 2;
        }
        StatusOr<int> inner = ParseAlt(depth + 1);
        if (!inner.ok()) return inner;
        if (AtEnd() || Peek() != ')') return Error("missing ')'");
        ++i_;
        return inner;
      }
      case '[':
        return ParseClass();
      case '.':
        n.kind = Node::kAny;
        return Add(n);
      case '^':
        n.kind = Node::kBol;
        return Add(n);
      case '$':
        n.kind = Node::kEol;
        return Add(n);
      case '\\':
        return ParseEscape();
      case '*':
      case '+':
      case '?':
        return Error(std::string("nothing to repeat before '") + static_cast<char>(c) + "'");
      case '{': {
        --i_;
        int min, max;
        Status error;
        if (TryCount(&min, &max, &error)) return Error("nothing to repeat before '{'");
        ++i_;
        break;
      }
      default:
        break;
    }
    n.kind = Node::kChar;
    n.c = c;
    return Add(n);
  }

  // After '\\' outside a class.
  StatusOr<int> ParseEscape() {
    if (AtEnd()) return Error("trailing backslash");
    const char32_t e = p_[i_];
    Node n;
    switch (e) {
      case 'd': ++i_; return AddClass(DigitRanges(), false);
      case 'D': ++i_; return AddClass(DigitRanges(), true);
      case 'w': ++i_; return AddClass(WordRanges(), false);
      case 'W': ++i_; return AddClass(WordRanges(), true);
      case 's': ++i_; return AddClass(SpaceRanges(), false);
      case 'S': ++i_; return AddClass(SpaceRanges(), true);
      case 'b': ++i_; n.kind = Node::kWordB; return Add(n);
      case 'B': ++i_; n.kind = Node::kNotWordB; return Add(n);
      default: break;
    }
    StatusOr<char32_t> ch = EscapedChar();
    if (!ch.ok()) return ch.status();
    n.kind = Node::kChar;
    n.c = ch.value();
    return Add(n);
  }

  // The character a "\\X" escape names (both inside and outside classes), advancing past it.
  StatusOr<char32_t> EscapedChar() {
    const char32_t e = p_[i_++];
    switch (e) {
      case 't': return U'\t';
      case 'n': return U'\n';
      case 'r': return U'\r';
      case 'f': return U'\f';
      case 'v': return U'\v';
      case '0':
        if (!AtEnd() && Peek() >= '0' && Peek() <= '9') return Error("octal escapes are not supported");
        return U'\0';
      case 'x': return Hex(2, 2);
      case 'u':
        if (Peek() == '{') {
          ++i_;
          StatusOr<char32_t> v = Hex(1, 6);
          if (!v.ok()) return v;
          if (AtEnd() || Peek() != '}') return Error("missing '}' in \\u{...}");
          ++i_;
          return v;
        }
        return Hex(4, 4);
      default: break;
    }
    if (e >= '1' && e <= '9') return Error("back-references are not supported");
    if (e < 0x80 && ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))) {
      return Error(std::string("unknown escape \\") + static_cast<char>(e));
    }
    return e;  // \. \\ \/ \( ... and any other non-letter stand for themselves
  }

  StatusOr<char32_t> Hex(int min_digits, int max_digits) {
    char32_t v = 0;
    int n = 0;
    while (n < max_digits && !AtEnd()) {
      const char32_t h = Peek();
      int d;
      if (h >= '0' && h <= '9') {
        d = static_cast<int>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        d = static_cast<int>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        d = static_cast<int>(h - 'A' + 10);
      } else {
        break;
      }
      v = v * 16 + static_cast<char32_t>(d);
      ++n;
      ++i_;
    }
    if (n < min_digits) return Error("bad hexadecimal escape");
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return Error("escape names no Unicode character");
    return v;
  }

  // After '['.
  StatusOr<int> ParseClass() {
    bool negated = false;
    if (!AtEnd() && Peek() == '^') {
      negated = true;
      ++i_;
    }
    Ranges ranges;
    bool first = true;
    while (true) {
      if (AtEnd()) return Error("missing ']'");
      char32_t c = Peek();
      if (c == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      // [:name:]
      if (c == '[' && Peek(1) == ':') {
        const size_t close = p_.find(U":]", i_ + 2);
        if (close != std::u32string::npos) {
          const std::u32string name = p_.substr(i_ + 2, close - i_ - 2);
          Ranges named;
          if (!PosixClass(name, &named)) return Error("unknown character class [:" + Narrow(name) + ":]");
          ranges.insert(ranges.end(), named.begin(), named.end());
          i_ = close + 2;
          continue;
        }
      }
      char32_t lo;
      ++i_;
      if (c == '\\') {
        if (AtEnd()) return Error("trailing backslash");
        const char32_t e = Peek();
        Ranges shorthand;
        bool is_shorthand = true;
        switch (e) {
          case 'd': shorthand = DigitRanges(); break;
          case 'D': shorthand = Complement(DigitRanges()); break;
          case 'w': shorthand = WordRanges(); break;
          case 'W': shorthand = Complement(WordRanges()); break;
          case 's': shorthand = SpaceRanges(); break;
          case 'S': shorthand = Complement(SpaceRanges()); break;
          default: is_shorthand = false; break;
        }
        if (is_shorthand) {
          ++i_;
          ranges.insert(ranges.end(), shorthand.begin(), shorthand.end());
          continue;
        }
        if (e == 'b') {
          ++i_;
          lo = U'\b';
        } else if (e == '-' || e == ']' || e == '[' || e == '^') {
          ++i_;
          lo = e;
        } else {
          StatusOr<char32_t> ch = EscapedChar();
          if (!ch.ok()) return ch.status();
          lo = ch.value();
        }
      } else {
        lo = c;
      }
      char32_t hi = lo;
      if (!AtEnd() && Peek() == '-' && i_ + 1 < p_.size() && Peek(1) != ']') {
        ++i_;
        const char32_t h = p_[i_++];
        if (h == '\\') {
          if (AtEnd()) return Error("trailing backslash");
          const char32_t e = Peek();
          if (e == 'd' || e == 'D' || e == 'w' || e == 'W' || e == 's' || e == 'S') {
            return Error("a range cannot end in a class escape");
          }
          if (e == '-' || e == ']' || e == '[' || e == '^' || e == 'b') {
            ++i_;
            hi = e == 'b' ? U'\b' : e;
          } else {
            StatusOr<char32_t> ch = EscapedChar();
            if (!ch.ok()) return ch.status();
            hi = ch.value();
          }
        } else {
          hi = h;
        }
        if (hi < lo) return Error("range out of order in character class");
      }
      ranges.push_back({lo, hi});
    }
    return AddClass(std::move(ranges), negated);
  }

  static std::string Narrow(const std::u32string& s) {
    std::string out;
    for (char32_t c : s) utf8::Append(&out, c <= 0x10FFFF ? c : U'?');
    return out;
  }

  static bool PosixClass(const std::u32string& name, Ranges* out) {
    if (name == U"alpha") *out = {{'A', 'Z'}, {'a', 'z'}};
    else if (name == U"digit") *out = DigitRanges();
    else if (name == U"alnum") *out = {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}};
    else if (name == U"upper") *out = {{'A', 'Z'}};
    else if (name == U"lower") *out = {{'a', 'z'}};
    else if (name == U"space") *out = {{0x09, 0x0D}, {' ', ' '}};
    else if (name == U"blank") *out = {{'\t', '\t'}, {' ', ' '}};
    else if (name == U"punct") *out = {{0x21, 0x2F}, {0x3A, 0x40}, {0x5B, 0x60}, {0x7B, 0x7E}};
    else if (name == U"xdigit") *out = {{'0', '9'}, {'A', 'F'}, {'a', 'f'}};
    else if (name == U"word") *out = WordRanges();
    else if (name == U"cntrl") *out = {{0x00, 0x1F}, {0x7F, 0x7F}};
    else if (name == U"print") *out = {{0x20, 0x7E}};
    else if (name == U"graph") *out = {{0x21, 0x7E}};
    else return false;
    return true;
  }

  size_t Size(int n) const { return sizes_[n]; }

  // Instructions node `n` compiles to, saturating just above the limit. REQUIRES: its
  // children are sized.
  size_t ComputeSize(int n) const {
    constexpr size_t kCap = LineRegex::kMaxProgramSize + 1;
    const Node& node = nodes_[n];
    switch (node.kind) {
      case Node::kEmpty: return 0;
      case Node::kConcat:
      case Node::kAlt: {
        size_t total = node.kind == Node::kAlt ? 2 * (node.kids.size() - 1) : 0;
        for (int k : node.kids) total = std::min(kCap, total + Size(k));
        return total;
      }
      case Node::kRepeat: {
        const size_t kid = Size(node.kids[0]);
        if (kid == 0) return 0;
        const size_t copies = node.max < 0 ? static_cast<size_t>(node.min) + 1 : static_cast<size_t>(node.max);
        const size_t extra = node.max < 0 ? 2 : static_cast<size_t>(node.max - node.min);
        return std::min(kCap, kid * copies + extra);
      }
      default: return 1;
    }
  }

  int32_t Pc() const { return static_cast<int32_t>(re_.program_.size()); }
  void Push(LineRegex::Inst inst) { re_.program_.push_back(inst); }

  Status Emit(int n) {
    if (re_.program_.size() > LineRegex::kMaxProgramSize) return TooLarge();
    const Node& node = nodes_[n];
    switch (node.kind) {
      case Node::kEmpty: return Status::Ok();
      case Node::kChar: {
        LineRegex::Inst inst{Op::kChar};
        inst.c = re_.case_insensitive_ ? FoldLower(node.c) : node.c;
        Push(inst);
        return Status::Ok();
      }
      case Node::kAny: Push({Op::kAny}); return Status::Ok();
      case Node::kClass: {
        LineRegex::Inst inst{Op::kClass};
        inst.x = node.cls;
        Push(inst);
        return Status::Ok();
      }
      case Node::kBol: Push({Op::kBol}); return Status::Ok();
      case Node::kEol: Push({Op::kEol}); return Status::Ok();
      case Node::kWordB: Push({Op::kWordBoundary}); return Status::Ok();
      case Node::kNotWordB: Push({Op::kNotWordBoundary}); return Status::Ok();
      case Node::kConcat:
        for (int k : node.kids) {
          if (Status s = Emit(k); !s.ok()) return s;
        }
        return Status::Ok();
      case Node::kAlt: {
        // split L1, next; L1: kid; jmp end; next: split L2, ... ; last kid; end:
        std::vector<int32_t> jumps;
        for (size_t i = 0; i < node.kids.size(); ++i) {
          const bool last = i + 1 == node.kids.size();
          int32_t split = -1;
          if (!last) {
            split = Pc();
            LineRegex::Inst inst{Op::kSplit};
            inst.x = split + 1;
            Push(inst);
          }
          if (Status s = Emit(node.kids[i]); !s.ok()) return s;
          if (!last) {
            jumps.push_back(Pc());
            Push({Op::kJmp});
            re_.program_[split].y = Pc();
          }
        }
        for (int32_t j : jumps) re_.program_[j].x = Pc();
        return Status::Ok();
      }
      case Node::kRepeat: {
        const int kid = node.kids[0];
        if (Size(kid) == 0) return Status::Ok();  // repeating the empty string
        for (int i = 0; i < node.min; ++i) {
          if (Status s = Emit(kid); !s.ok()) return s;
        }
        if (node.max < 0) {
          // loop: split body, out; body; jmp loop; out:
          const int32_t loop = Pc();
          LineRegex::Inst split{Op::kSplit};
          split.x = loop + 1;
          Push(split);
          if (Status s = Emit(kid); !s.ok()) return s;
          LineRegex::Inst jmp{Op::kJmp};
          jmp.x = loop;
          Push(jmp);
          re_.program_[loop].y = Pc();
          return Status::Ok();
        }
        std::vector<int32_t> splits;
        for (int i = node.min; i < node.max; ++i) {
          splits.push_back(Pc());
          LineRegex::Inst split{Op::kSplit};
          split.x = Pc() + 1;
          Push(split);
          if (Status s = Emit(kid); !s.ok()) return s;
        }
        for (int32_t s : splits) re_.program_[s].y = Pc();
        return Status::Ok();
      }
    }
    return Status::Internal("unknown regex node");
  }

  std::u32string p_;
  size_t i_ = 0;
  std::vector<Node> nodes_;
  std::vector<size_t> sizes_;  // by node index
  LineRegex re_;
};

StatusOr<LineRegex> LineRegex::Compile(std::string_view pattern, bool case_insensitive) {
  if (pattern.size() > kMaxPatternBytes) {
    return Status::InvalidArgument("regular expression is longer than " + std::to_string(kMaxPatternBytes) +
                                   " bytes");
  }
  if (!utf8::IsValid(pattern)) return Status::InvalidArgument("regular expression is not valid UTF-8");
  std::u32string cps;
  for (size_t i = 0; i < pattern.size();) cps.push_back(utf8::Decode(pattern, &i));
  return RegexCompiler(std::move(cps), case_insensitive).Run();
}

bool LineRegex::ClassMatches(const CharClass& cls, char32_t c) const {
  auto contains = [&](char32_t v) {
    auto it = std::upper_bound(cls.ranges.begin(), cls.ranges.end(), std::make_pair(v, char32_t{0x7FFFFFFF}));
    return it != cls.ranges.begin() && std::prev(it)->second >= v;
  };
  bool in = contains(c);
  if (!in && case_insensitive_) in = contains(FoldLower(c)) || contains(FoldUpper(c));
  return in != cls.negated;
}

bool LineRegex::StepMatches(const Inst& inst, char32_t c) const {
  switch (inst.op) {
    case Op::kChar: return (case_insensitive_ ? FoldLower(c) : c) == inst.c;
    case Op::kAny: return true;
    case Op::kClass: return ClassMatches(classes_[inst.x], c);
    default: return false;
  }
}

void LineRegex::AddThread(std::vector<int32_t>& list, int32_t start, size_t pos, std::string_view line,
                          bool* matched) const {
  stack_.clear();
  stack_.push_back(start);
  while (!stack_.empty()) {
    const int32_t pc = stack_.back();
    stack_.pop_back();
    if (mark_[pc] == generation_) continue;
    mark_[pc] = generation_;
    const Inst& inst = program_[pc];
    switch (inst.op) {
      case Op::kJmp: stack_.push_back(inst.x); break;
      case Op::kSplit:
        stack_.push_back(inst.y);
        stack_.push_back(inst.x);
        break;
      case Op::kBol:
        if (pos == 0) stack_.push_back(pc + 1);
        break;
      case Op::kEol:
        if (pos == line.size()) stack_.push_back(pc + 1);
        break;
      case Op::kWordBoundary:
      case Op::kNotWordBoundary: {
        // Word characters are ASCII, and no byte of a multi-byte UTF-8 sequence is ASCII.
        const bool before = pos > 0 && IsAsciiWordByte(static_cast<unsigned char>(line[pos - 1]));
        const bool after = pos < line.size() && IsAsciiWordByte(static_cast<unsigned char>(line[pos]));
        if ((before != after) == (inst.op == Op::kWordBoundary)) stack_.push_back(pc + 1);
        break;
      }
      case Op::kMatch: *matched = true; return;
      default: list.push_back(pc); break;
    }
  }
}

LineRegex::Outcome LineRegex::Search(std::string_view line, int64_t* budget) const {
  if (literal_only_) {
    *budget -= static_cast<int64_t>(line.size()) / 8 + 1;  // find is far cheaper than a VM step
    return line.find(literal_) != std::string_view::npos ? Outcome::kMatch : Outcome::kNoMatch;
  }
  auto next_generation = [this] {
    if (++generation_ == 0) {
      std::fill(mark_.begin(), mark_.end(), 0);
      generation_ = 1;
    }
  };
  // The next position at or after `from` where a match can start (line.size() if none).
  auto next_start = [&](size_t from) {
    if (!use_first_bytes_) return from;
    size_t p = from;
    while (p < line.size() && !first_bytes_[static_cast<unsigned char>(line[p])]) ++p;
    *budget -= static_cast<int64_t>(p - from) / 16;
    return p;
  };
  bool matched = false;
  clist_.clear();
  next_generation();
  size_t pos = next_start(0);
  if (pos == line.size() && use_first_bytes_) return Outcome::kNoMatch;
  AddThread(clist_, 0, pos, line, &matched);
  while (!matched && pos < line.size()) {
    if (--*budget < 0) return Outcome::kOutOfBudget;
    size_t next = pos;
    const char32_t c = utf8::Decode(line, &next);
    nlist_.clear();
    next_generation();
    for (const int32_t pc : clist_) {
      if (--*budget < 0) return Outcome::kOutOfBudget;
      if (StepMatches(program_[pc], c)) {
        AddThread(nlist_, pc + 1, next, line, &matched);
        if (matched) break;
      }
    }
    // Unanchored search: a match may also start at the next position, or, when no thread
    // is alive, at the next position that can start one.
    if (!matched && nlist_.empty()) {
      next = next_start(next);
      if (next == line.size() && use_first_bytes_) return Outcome::kNoMatch;
    }
    if (!matched) AddThread(nlist_, 0, next, line, &matched);
    std::swap(clist_, nlist_);
    pos = next;
  }
  return matched ? Outcome::kMatch : Outcome::kNoMatch;
}

}  // namespace brig::files
