// The supervisor-worker frames (worker_protocol.h).
#include "server/worker_protocol.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/little_endian.h"

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
  uint8_t type = static_cast<uint8_t>(avail[4]);
  if (type < static_cast<uint8_t>(FrameType::kConfig) || type > static_cast<uint8_t>(FrameType::kHeartbeat)) {
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

uint8_t StatusCode(const Status& s) {
  if (s.IsInvalidArgument()) return 1;
  if (s.IsInternal()) return 2;
  if (s.IsResourceExhausted()) return 3;
  if (s.IsNotFound()) return 4;
  if (s.IsAlreadyExists()) return 5;
  if (s.IsConflict()) return 6;
  if (s.IsUnavailable()) return 7;
  if (s.IsFailedPrecondition()) return 8;
  if (s.IsDeadlineExceeded()) return 9;
  return 0;
}

std::optional<Status> StatusFromCode(uint8_t code, std::string message) {
  switch (code) {
    case 1: return Status::InvalidArgument(std::move(message));
    case 2: return Status::Internal(std::move(message));
    case 3: return Status::ResourceExhausted(std::move(message));
    case 4: return Status::NotFound(std::move(message));
    case 5: return Status::AlreadyExists(std::move(message));
    case 6: return Status::Conflict(std::move(message));
    case 7: return Status::Unavailable(std::move(message));
    case 8: return Status::FailedPrecondition(std::move(message));
    case 9: return Status::DeadlineExceeded(std::move(message));
  }
  return std::nullopt;
}

std::string EncodeResult(uint64_t live_sessions, std::string_view json_text) {
  std::string out;
  AppendLe64(&out, live_sessions);
  out += json_text;
  return out;
}

std::string EncodeError(uint64_t live_sessions, const Status& status) {
  std::string out;
  AppendLe64(&out, live_sessions);
  out.push_back(static_cast<char>(StatusCode(status)));
  out += status.message();
  return out;
}

std::optional<WorkerReply> DecodeReply(FrameType type, std::string_view body) {
  LeReader r(body);
  WorkerReply reply;
  if (!r.U64(&reply.live_sessions)) return std::nullopt;
  if (type == FrameType::kError && !r.U8(&reply.code)) return std::nullopt;
  reply.rest = r.rest();
  return reply;
}

namespace {

// nlohmann's SAX interface: reads the fields SummarizeResult needs as the parser goes, and
// keeps nothing else (no json value is built).
class SummaryReader {
 public:
  using json = nlohmann::json;
  bool null() { return Scalar(Kind::kNull); }
  bool boolean(bool v) {
    if (depth_ == 1 && keys_[1] == "ok") ok_ = v;
    return Scalar(Kind::kOther);
  }
  bool number_integer(json::number_integer_t) { return Scalar(Kind::kOther); }
  bool number_unsigned(json::number_unsigned_t) { return Scalar(Kind::kOther); }
  bool number_float(json::number_float_t, const json::string_t&) { return Scalar(Kind::kOther); }
  bool binary(json::binary_t&) { return Scalar(Kind::kOther); }
  bool string(json::string_t& v) {
    if (depth_ == 2 && in_object_[2] && keys_[1] == "session" && keys_[2] == "thread_id") thread_id_ = std::move(v);
    if (depth_ == 2 && in_object_[2] && keys_[1] == "failure" && keys_[2] == "kind") kind_ = std::move(v);
    return Scalar(Kind::kOther);
  }
  bool start_object(std::size_t) { return Open(true); }
  bool start_array(std::size_t) { return Open(false); }
  bool end_object() { return Close(); }
  bool end_array() { return Close(); }
  bool key(json::string_t& k) {
    if (depth_ < kTracked) keys_[depth_] = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  std::optional<ResultSummary> Summary() {
    if (!top_was_object_ || !ok_ || !thread_id_ || !failure_) return std::nullopt;
    ResultSummary s;
    s.thread_id = std::move(*thread_id_);
    if (*failure_ == Kind::kObject) {
      if (!kind_) return std::nullopt;
      s.outcome = std::move(*kind_);
    } else if (*failure_ == Kind::kNull) {
      s.outcome = *ok_ ? "ok" : "python_error";
    } else {
      return std::nullopt;
    }
    return s;
  }

 private:
  enum class Kind { kNull, kObject, kOther };
  static constexpr int kTracked = 3;  // the top object (1) and the objects in it (2)
  // A value at the top object's "failure".
  bool Scalar(Kind k) {
    if (depth_ == 0) return false;  // the text must be an object
    if (depth_ == 1 && keys_[1] == "failure") failure_ = k;
    return true;
  }
  bool Open(bool object) {
    if (depth_ == 0) {
      if (!object) return false;
      top_was_object_ = true;
    } else if (depth_ == 1 && keys_[1] == "failure") {
      failure_ = object ? Kind::kObject : Kind::kOther;
    }
    ++depth_;
    if (depth_ < kTracked) {
      keys_[depth_].clear();
      in_object_[depth_] = object;
    }
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  std::string keys_[kTracked];
  bool in_object_[kTracked] = {};
  bool top_was_object_ = false;
  std::optional<bool> ok_;
  std::optional<Kind> failure_;
  std::optional<std::string> thread_id_, kind_;
};

}  // namespace

std::optional<ResultSummary> SummarizeResult(std::string_view json_text) {
  SummaryReader reader;
  if (!nlohmann::json::sax_parse(json_text.begin(), json_text.end(), &reader, nlohmann::json::input_format_t::json,
                                 /*strict=*/true)) {
    return std::nullopt;
  }
  return reader.Summary();
}

std::string EncodeConfig(const Sessions::Options& o, int threads, std::chrono::microseconds inline_budget) {
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
                             {"compact_idle_after_ms", o.compact_idle_after.count()},
                             {"portable_snapshots", o.portable_snapshots},
                             {"lock_timeout_ms", o.lock_timeout.count()},
                             {"pool_size", o.pool_size},
                             {"statement_timeout_ms", o.statement_timeout.count()}};
  return nlohmann::json({{"threads", threads}, {"inline_budget_us", inline_budget.count()}, {"sessions", sessions}}).dump();
}

Status DecodeConfig(std::string_view body, Sessions::Options* o, int* threads, std::chrono::microseconds* inline_budget) {
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
  int64_t n = 0, max_live = 0, compact_ms = 0, lock_ms = 0, pool = 0, statement_ms = 0, budget_us = 0;
  i64(&j, "threads", &n);
  if (j.contains("inline_budget_us")) i64(&j, "inline_budget_us", &budget_us);
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
  i64(s, "compact_idle_after_ms", &compact_ms);
  boolean(s, "portable_snapshots", &out.portable_snapshots);
  i64(s, "lock_timeout_ms", &lock_ms);
  i64(s, "pool_size", &pool);
  i64(s, "statement_timeout_ms", &statement_ms);
  if (fault.empty() && (n < 1 || n > 1024)) fault = "threads is out of range (1..1024)";
  if (fault.empty() && (budget_us < 0 || budget_us > 60'000'000)) fault = "inline_budget_us is out of range";
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
  return Status::Ok();
}

}  // namespace brig::server::worker
