// The supervisor-worker frames (worker_protocol.h).
#include "server/worker_protocol.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "server/api_json.h"
#include "util/little_endian.h"
#include "util/status_code.h"

namespace brig::server::worker {
namespace {

constexpr uint8_t kFlagTimeout = 1, kFlagMemory = 2, kFlagStream = 4, kFlagDeferredSave = 8, kFlagSync = 16, kFlagSyncDrop = 32;
constexpr uint32_t kMaxThreadIdBytes = 4096;  // far above the 255 bytes Sessions accepts

}  // namespace

void AppendFrame(std::string* out, FrameType type, uint64_t id, std::string_view body) {
  AppendLe32(out, static_cast<uint32_t>(1 + 8 + body.size()));
  out->push_back(static_cast<char>(type));
  AppendLe64(out, id);
  out->append(body);
}

std::optional<Frame> FrameReader::Next(std::string* error) {
  // Compact now and then, so that the buffer does not keep every byte ever read.
  if (start_ > 0 && (start_ == buffer_.size() || start_ > (1u << 20))) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  std::string_view avail(buffer_.data() + start_, buffer_.size() - start_);
  if (avail.size() < 4) return std::nullopt;
  uint32_t length = brig_le_load32(avail.data());
  if (length < 9 || length > kMaxFrame) {
    *error = "a frame of " + std::to_string(length) + " bytes (allowed 9.." + std::to_string(kMaxFrame) + ")";
    return std::nullopt;
  }
  // The type byte may not have arrived yet: a read can end right after the length (it read
  // past the bytes here, the string's terminator, and took a worker for a broken one).
  if (avail.size() < 5) return std::nullopt;
  uint8_t type = static_cast<uint8_t>(avail[4]);
  if (type < static_cast<uint8_t>(FrameType::kConfig) || type > static_cast<uint8_t>(FrameType::kSaved)) {
    *error = "a frame of unknown type " + std::to_string(type);
    return std::nullopt;
  }
  if (avail.size() < 4 + static_cast<size_t>(length)) return std::nullopt;
  Frame f;
  f.type = static_cast<FrameType>(type);
  f.id = brig_le_load64(avail.data() + 5);
  f.body.assign(avail.data() + kFrameHeader, length - 9);
  start_ += 4 + static_cast<size_t>(length);
  return f;
}

std::string EncodeExecute(const ExecuteBody& e) {
  std::string out;
  uint8_t flags = (e.timeout_seconds ? kFlagTimeout : 0) | (e.memory_bytes ? kFlagMemory : 0) | (e.stream ? kFlagStream : 0) |
                  (e.deferred_save ? kFlagDeferredSave : 0) | (e.sync ? kFlagSync : 0) |
                  (e.sync_drop ? kFlagSyncDrop : 0);
  out.push_back(static_cast<char>(flags));
  uint64_t bits = 0;
  double timeout = e.timeout_seconds.value_or(0);
  std::memcpy(&bits, &timeout, sizeof bits);
  AppendLe64(&out, bits);
  AppendLe64(&out, e.memory_bytes.value_or(0));
  AppendLe32(&out, static_cast<uint32_t>(e.thread_id.size()));
  out += e.thread_id;
  out += e.code;
  return out;
}

std::optional<ExecuteBody> DecodeExecute(std::string_view body) {
  LeReader r(body);
  uint8_t flags = 0;
  uint64_t bits = 0, memory = 0;
  uint32_t n = 0;
  std::string_view id;
  if (!r.U8(&flags) || !r.U64(&bits) || !r.U64(&memory) || !r.U32(&n) || n > kMaxThreadIdBytes || !r.Bytes(n, &id)) {
    return std::nullopt;
  }
  if (flags & ~(kFlagTimeout | kFlagMemory | kFlagStream | kFlagDeferredSave | kFlagSync | kFlagSyncDrop)) return std::nullopt;
  if ((flags & kFlagSyncDrop) && !(flags & kFlagSync)) return std::nullopt;
  // A sync is not an execution: code or execution options on one are a malformed request,
  // not something to half-honour.
  if ((flags & kFlagSync) && (!r.rest().empty() || (flags & (kFlagTimeout | kFlagMemory | kFlagStream | kFlagDeferredSave)))) {
    return std::nullopt;
  }
  ExecuteBody e;
  e.thread_id.assign(id);
  e.code.assign(r.rest());
  if (flags & kFlagTimeout) {
    double timeout = 0;
    std::memcpy(&timeout, &bits, sizeof timeout);
    if (!std::isfinite(timeout)) return std::nullopt;
    e.timeout_seconds = timeout;
  }
  if (flags & kFlagMemory) e.memory_bytes = memory;
  e.stream = flags & kFlagStream;
  e.deferred_save = flags & kFlagDeferredSave;
  e.sync = flags & kFlagSync;
  e.sync_drop = flags & kFlagSyncDrop;
  return e;
}

std::string EncodeResult(const WorkerCounts& counts, std::string_view json_text) {
  std::string out;
  AppendLe64(&out, counts.live_sessions);
  AppendLe64(&out, counts.stale_runs);
  out += json_text;
  return out;
}

std::string EncodeError(const WorkerCounts& counts, const Status& status) {
  std::string out;
  AppendLe64(&out, counts.live_sessions);
  AppendLe64(&out, counts.stale_runs);
  out.push_back(static_cast<char>(StatusCodeByte(status)));
  out += status.message();
  return out;
}

std::optional<WorkerReply> DecodeReply(FrameType type, std::string_view body) {
  LeReader r(body);
  WorkerReply reply;
  if (!r.U64(&reply.live_sessions) || !r.U64(&reply.stale_runs)) return std::nullopt;
  if (type == FrameType::kError && !r.U8(&reply.code)) return std::nullopt;
  reply.rest = r.rest();
  return reply;
}

namespace {

// A strict JSON reader (RFC 8259: UTF-8 checked, escapes and surrogate pairs checked,
// numbers that overflow refused, as nlohmann's parser does) that keeps only what
// SummarizeResult needs. Hand-written because nlohmann's SAX parse of every result was ~6% of
// the server's HTTP thread (bench/RESULTS.md, 2026-12-05); tests/server/worker_protocol_test.cc
// checks it against that parse on many broken texts.
class SummaryScanner {
 public:
  explicit SummaryScanner(std::string_view text) : s_(text) {}

  std::optional<ResultSummary> Scan() {
    Space();
    if (i_ >= s_.size() || s_[i_] != '{') return std::nullopt;  // the text must be an object
    if (!Value(0, {}, {}, false)) return std::nullopt;
    Space();
    if (i_ != s_.size()) return std::nullopt;
    if (!ok_ || !thread_id_ || !failure_) return std::nullopt;
    ResultSummary r;
    r.thread_id = std::move(*thread_id_);
    if (*failure_ == Kind::kObject) {
      if (!kind_) return std::nullopt;
      r.outcome = std::move(*kind_);
    } else if (*failure_ == Kind::kNull) {
      r.outcome = *ok_ ? "ok" : "python_error";
    } else {
      return std::nullopt;
    }
    return r;
  }

 private:
  enum class Kind { kNull, kObject, kOther };
  // Results nest 4 deep; far more is a broken worker, refused before it costs stack.
  static constexpr int kMaxDepth = 64;

  void Space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  // One value, inside `depth` containers. k1: the top object's key it is under (depth >= 1);
  // k2: its own key in the container at depth 2 (in_object: that container is an object).
  bool Value(int depth, std::string_view k1, std::string_view k2, bool in_object) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) return false;
      if (depth == 1 && k1 == "failure") failure_ = c == '{' ? Kind::kObject : Kind::kOther;
      return c == '{' ? Object(depth + 1, k1) : Array(depth + 1, k1);
    }
    if (depth == 0) return false;
    const bool failure_value = depth == 1 && k1 == "failure";
    if (c == '"') {
      const bool wanted = depth == 2 && in_object && ((k1 == "session" && k2 == "thread_id") || (k1 == "failure" && k2 == "kind"));
      std::string text;
      if (!String(wanted ? &text : nullptr)) return false;
      if (wanted) (k1 == "session" ? thread_id_ : kind_) = std::move(text);
      if (failure_value) failure_ = Kind::kOther;
      return true;
    }
    if (c == 't' || c == 'f') {
      const bool v = c == 't';
      if (!Literal(v ? "true" : "false")) return false;
      if (depth == 1 && k1 == "ok") ok_ = v;
      if (failure_value) failure_ = Kind::kOther;
      return true;
    }
    if (c == 'n') {
      if (!Literal("null")) return false;
      if (failure_value) failure_ = Kind::kNull;
      return true;
    }
    if (!Number()) return false;
    if (failure_value) failure_ = Kind::kOther;
    return true;
  }

  // Past the '{'; `depth` counts it.
  bool Object(int depth, std::string_view k1) {
    ++i_;
    Space();
    if (i_ < s_.size() && s_[i_] == '}') return ++i_, true;
    while (true) {
      Space();
      if (i_ >= s_.size() || s_[i_] != '"') return false;
      std::string key;
      if (!String(depth <= 2 ? &key : nullptr)) return false;  // deeper keys are never looked at
      Space();
      if (i_ >= s_.size() || s_[i_] != ':') return false;
      ++i_;
      Space();
      if (!Value(depth, depth == 1 ? std::string_view(key) : k1, depth == 2 ? std::string_view(key) : std::string_view(),
                 true)) {
        return false;
      }
      Space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == '}') return ++i_, true;
      if (s_[i_] != ',') return false;
      ++i_;
    }
  }

  bool Array(int depth, std::string_view k1) {
    ++i_;
    Space();
    if (i_ < s_.size() && s_[i_] == ']') return ++i_, true;
    while (true) {
      Space();
      if (!Value(depth, k1, {}, false)) return false;
      Space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == ']') return ++i_, true;
      if (s_[i_] != ',') return false;
      ++i_;
    }
  }

  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // The code unit of the six-character escape (backslash, u, four hex digits) at i_, or -1.
  int32_t Escape4() {
    if (i_ + 6 > s_.size() || s_[i_] != '\\' || s_[i_ + 1] != 'u') return -1;
    int32_t v = 0;
    for (size_t k = 2; k < 6; ++k) {
      const int h = Hex(s_[i_ + k]);
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    i_ += 6;
    return v;
  }

  // `cp` as UTF-8. REQUIRES: cp <= 0x10FFFF, not a surrogate. (names/utf8.h has the same, out
  // of reach of a front end: see api_json.h's Utf8SequenceAt.)
  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // A string at i_ (its opening quote); decoded into *out unless out is null.
  bool String(std::string* out) {
    ++i_;
    while (true) {
      // A run of plain ASCII at once.
      size_t end = i_;
      while (end < s_.size()) {
        const auto d = static_cast<unsigned char>(s_[end]);
        if (d < 0x20 || d == '"' || d == '\\' || d >= 0x80) break;
        ++end;
      }
      if (out) out->append(s_.data() + i_, end - i_);
      i_ = end;
      if (i_ >= s_.size()) return false;
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') return ++i_, true;
      if (c < 0x20) return false;
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) return false;
        const char e = s_[i_ + 1];
        const char* simple = nullptr;
        switch (e) {
          case '"': simple = "\""; break;
          case '\\': simple = "\\"; break;
          case '/': simple = "/"; break;
          case 'b': simple = "\b"; break;
          case 'f': simple = "\f"; break;
          case 'n': simple = "\n"; break;
          case 'r': simple = "\r"; break;
          case 't': simple = "\t"; break;
          case 'u': break;
          default: return false;
        }
        if (simple) {
          if (out) out->push_back(*simple);
          i_ += 2;
          continue;
        }
        int32_t cp = Escape4();
        if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return false;  // a low surrogate first
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const int32_t low = Escape4();
          if (low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out) AppendUtf8(out, static_cast<uint32_t>(cp));
        continue;
      }
      // A UTF-8 sequence: well-formed (RFC 3629), or the text is refused.
      const size_t len = Utf8SequenceAt(s_, i_);
      if (len == 0) return false;
      if (out) out->append(s_.data() + i_, len);
      i_ += len;
    }
  }

  // -? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?, and finite as a double.
  bool Number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > from;
    };
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (i_ >= s_.size()) return false;
    if (s_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    bool integer = true;
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      integer = false;
      if (!digits()) return false;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      integer = false;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    if (integer && i_ - start <= 18) return true;  // fits an int64: no overflow possible
    // What nlohmann does with it: strtod, and a number past the double range is an error.
    const std::string copy(s_.substr(start, i_ - start));
    return std::isfinite(std::strtod(copy.c_str(), nullptr));
  }

  std::string_view s_;
  size_t i_ = 0;
  std::optional<bool> ok_;
  std::optional<Kind> failure_;
  std::optional<std::string> thread_id_, kind_;
};

}  // namespace

std::optional<ResultSummary> SummarizeResult(std::string_view json_text) { return SummaryScanner(json_text).Scan(); }

std::string EncodeConfig(const Sessions::Options& o, int threads, std::chrono::microseconds inline_budget,
                         bool relay_saves, int execution_nice) {
  const Limits& l = o.limits;
  nlohmann::json limits = {{"timeout_seconds", l.timeout_seconds}, {"memory_bytes", l.memory_bytes},
                           {"output_bytes", l.output_bytes},       {"file_bytes", l.file_bytes},
                           {"max_files", l.max_files},             {"max_file_bytes", l.max_file_bytes}};
  nlohmann::json sessions = {{"store_url", o.store_url},
                             {"limits", limits},
                             {"default_expiry_days", o.default_expiry_days},
                             {"max_files_per_session", o.max_files_per_session},
                             {"max_bytes_per_session", o.max_bytes_per_session},
                             {"max_live", o.max_live},
                             {"max_live_bytes", o.max_live_bytes},
                             {"compact_idle_after_ms", o.compact_idle_after.count()},
                             {"portable_snapshots", o.portable_snapshots},
                             {"lock_timeout_ms", o.lock_timeout.count()},
                             {"pool_size", o.pool_size},
                             {"statement_timeout_ms", o.statement_timeout.count()}};
  return nlohmann::json({{"threads", threads},
                         {"inline_budget_us", inline_budget.count()},
                         {"relay_saves", relay_saves},
                         {"execution_nice", execution_nice},
                         {"sessions", sessions}})
      .dump();
}

Status DecodeConfig(std::string_view body, Sessions::Options* o, int* threads, std::chrono::microseconds* inline_budget,
                    bool* relay_saves, int* execution_nice) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string fault;
  auto obj = [&](const nlohmann::json& parent, const char* key) -> const nlohmann::json* {
    if (!fault.empty()) return nullptr;
    if (!parent.is_object() || !parent.contains(key) || !parent[key].is_object()) {
      fault = std::string(key) + " is not an object";
      return nullptr;
    }
    return &parent[key];
  };
  // Unsigned and signed integers, with their range; numbers; strings; booleans.
  auto u64 = [&](const nlohmann::json* p, const char* key, uint64_t* out) {
    if (!fault.empty() || !p) return;
    auto it = p->find(key);
    if (it == p->end() || !it->is_number_unsigned()) return void(fault = std::string(key) + " is not an unsigned integer");
    *out = it->get<uint64_t>();
  };
  auto i64 = [&](const nlohmann::json* p, const char* key, int64_t* out) {
    if (!fault.empty() || !p) return;
    auto it = p->find(key);
    if (it == p->end() || !it->is_number_integer() ||
        (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      return void(fault = std::string(key) + " is not an integer");
    }
    *out = it->get<int64_t>();
  };
  auto num = [&](const nlohmann::json* p, const char* key, double* out) {
    if (!fault.empty() || !p) return;
    auto it = p->find(key);
    if (it == p->end() || !it->is_number()) return void(fault = std::string(key) + " is not a number");
    *out = it->get<double>();
  };
  auto str = [&](const nlohmann::json* p, const char* key, std::string* out) {
    if (!fault.empty() || !p) return;
    auto it = p->find(key);
    if (it == p->end() || !it->is_string()) return void(fault = std::string(key) + " is not a string");
    *out = it->get<std::string>();
  };
  auto boolean = [&](const nlohmann::json* p, const char* key, bool* out) {
    if (!fault.empty() || !p) return;
    auto it = p->find(key);
    if (it == p->end() || !it->is_boolean()) return void(fault = std::string(key) + " is not a boolean");
    *out = it->get<bool>();
  };
  if (!j.is_object()) return Status::InvalidArgument("worker config: not a JSON object");
  int64_t n = 0, max_live = 0, compact_ms = 0, lock_ms = 0, pool = 0, statement_ms = 0, budget_us = 0, nice = 0;
  i64(&j, "threads", &n);
  if (j.contains("execution_nice")) i64(&j, "execution_nice", &nice);
  if (j.contains("inline_budget_us")) i64(&j, "inline_budget_us", &budget_us);
  bool relay = false;
  if (j.contains("relay_saves")) boolean(&j, "relay_saves", &relay);
  const nlohmann::json* s = obj(j, "sessions");
  const nlohmann::json* l = s ? obj(*s, "limits") : nullptr;
  Sessions::Options out;
  str(s, "store_url", &out.store_url);
  num(l, "timeout_seconds", &out.limits.timeout_seconds);
  u64(l, "memory_bytes", &out.limits.memory_bytes);
  u64(l, "output_bytes", &out.limits.output_bytes);
  u64(l, "file_bytes", &out.limits.file_bytes);
  u64(l, "max_files", &out.limits.max_files);
  u64(l, "max_file_bytes", &out.limits.max_file_bytes);
  i64(s, "default_expiry_days", &out.default_expiry_days);
  i64(s, "max_files_per_session", &out.max_files_per_session);
  i64(s, "max_bytes_per_session", &out.max_bytes_per_session);
  i64(s, "max_live", &max_live);
  if (s && s->contains("max_live_bytes")) u64(s, "max_live_bytes", &out.max_live_bytes);
  i64(s, "compact_idle_after_ms", &compact_ms);
  boolean(s, "portable_snapshots", &out.portable_snapshots);
  i64(s, "lock_timeout_ms", &lock_ms);
  i64(s, "pool_size", &pool);
  i64(s, "statement_timeout_ms", &statement_ms);
  if (fault.empty() && (n < 1 || n > 1024)) fault = "threads is out of range (1..1024)";
  if (fault.empty() && (budget_us < 0 || budget_us > 60'000'000)) fault = "inline_budget_us is out of range";
  if (fault.empty() && (nice < 0 || nice > 19)) fault = "execution_nice is out of range (0..19)";
  if (fault.empty() && (max_live < 0 || compact_ms < 0 || lock_ms < 0 || statement_ms < 0 || pool < 1 || pool > 1024)) {
    fault = "a count or duration is out of range";
  }
  if (!fault.empty()) return Status::InvalidArgument("worker config: " + fault);
  if (Status valid = ValidateLimits(out.limits); !valid.ok()) return valid.WithPrefix("worker config: ");
  out.max_live = static_cast<size_t>(max_live);
  out.compact_idle_after = std::chrono::milliseconds(compact_ms);
  out.lock_timeout = std::chrono::milliseconds(lock_ms);
  out.pool_size = static_cast<int>(pool);
  out.statement_timeout = std::chrono::milliseconds(statement_ms);
  *o = std::move(out);
  *threads = static_cast<int>(n);
  if (inline_budget) *inline_budget = std::chrono::microseconds(budget_us);
  if (relay_saves) *relay_saves = relay;
  if (execution_nice) *execution_nice = static_cast<int>(nice);
  return Status::Ok();
}

}  // namespace brig::server::worker
