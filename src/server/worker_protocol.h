// The protocol between `brig serve`'s supervisor (worker_pool.h) and its worker processes
// (worker_main.cc), over one Unix stream socket per worker.
//
// Frame: u32 length (little-endian) of what follows | u8 type | u64 request id | body.
// 9 <= length <= kMaxFrame. Either side treats anything else (a bad length, an unknown type,
// a body that does not parse, an id it does not expect) as a broken peer: the supervisor
// kills that worker (its executions fail with Unavailable), a worker exits.
//
//   supervisor -> worker
//     kConfig   id 0, first frame: JSON {"threads": N, "inline_budget_us": N,
//               "relay_saves": B, "execution_nice": N, "sessions": {Sessions::Options}}
//     kExecute  id > 0: u8 flags (1 timeout, 2 memory, 4 stream) | f64 timeout (IEEE bits,
//               u64) | u64 memory bytes | u32 n | thread_id (n bytes) | code (the rest)
//     kSaved    the answer to the worker's kSave of the same id: what
//               brig::Store::ApplyRelayedSaves returned for it (the new version, or the
//               error)
//   worker -> supervisor
//     kReady    id 0: the worker opened its store and can execute; body: the image cache's
//               file its process image came from (Sandbox::ImageFile, may be empty), which
//               the supervisor then holds (Sandbox::HoldImageFile) so that the cache keeps
//               it for the workers started after this one, even while none is alive
//     kOutput   a streamed piece of output: u8 stream (0 stdout, 1 stderr) | bytes (the rest)
//     kResult   u64 live sessions | u64 stale live runs | JSON text of
//               brig::ToJson(thread_id, SessionResult)
//     kError    u64 live sessions | u64 stale live runs | u8 status code (StatusCodeByte,
//               util/status_code.h) |
//               message (the rest);
//               id 0: the worker could not start (then it exits)
//     kHeartbeat id 0, empty body, every kHeartbeatIntervalMs once ready: the supervisor
//               kills a worker it hears nothing from (no byte at all) for its heartbeat
//               timeout (worker_pool.h)
//     kSave     id > 0 (the worker's own numbering): an execution's save, as the bytes of
//               StoreOptions::save_relay, for the supervisor to commit on its store (only
//               when the config says "relay_saves"; bytes that are no save break the
//               protocol)
//
// The config travels in the socket, not on the command line, where other users could read
// a PostgreSQL password in /proc/PID/cmdline.
//
// Thread-safety: plain functions; FrameReader is used by one thread.
#ifndef BRIG_SERVER_WORKER_PROTOCOL_H_
#define BRIG_SERVER_WORKER_PROTOCOL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "brig/sandbox.h"
#include "brig/sessions.h"
#include "brig/status.h"

namespace brig::server::worker {

// A result holds up to two outputs (Limits::output_bytes each, escaped in JSON) and a repr of
// up to 64 MiB: this bounds every frame either side accepts.
inline constexpr uint32_t kMaxFrame = 256u << 20;
inline constexpr size_t kFrameHeader = 4 + 1 + 8;  // length, type, id
// The socket's number in a worker process.
inline constexpr int kWorkerFd = 3;

enum class FrameType : uint8_t {
  kConfig = 1,
  kExecute = 2,
  kReady = 3,
  kOutput = 4,
  kResult = 5,
  kError = 6,
  kHeartbeat = 7,
  kSave = 8,
  kSaved = 9,
};
// A ready worker sends kHeartbeat at least this often, from a thread of its own, whatever
// its executions do: a worker that is alive but stuck (stopped, deadlocked) falls silent.
inline constexpr int kHeartbeatIntervalMs = 500;

struct Frame {
  FrameType type;
  uint64_t id = 0;
  std::string body;
};

// Appends one frame to *out. REQUIRES: 9 + body.size() <= kMaxFrame.
void AppendFrame(std::string* out, FrameType type, uint64_t id, std::string_view body);

// Frames out of a byte stream that arrives in pieces.
class FrameReader {
 public:
  // Takes the next bytes read.
  void Append(const char* data, size_t n) { buffer_.append(data, n); }
  // The next whole frame (nullopt: wait for more bytes). Sets *error (and returns nullopt)
  // when the stream cannot be a valid one: an out-of-range length or an unknown type.
  std::optional<Frame> Next(std::string* error);
  // Bytes held that do not make a whole frame yet.
  size_t pending() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;  // where the next frame starts in buffer_
};

// kExecute's body.
struct ExecuteBody {
  std::string thread_id;
  std::string code;
  std::optional<double> timeout_seconds;
  std::optional<uint64_t> memory_bytes;
  bool stream = false;
  bool deferred_save = false;
  // Not an execution: Sessions::SyncToStore(thread_id, sync_drop); no code, no options.
  bool sync = false;
  bool sync_drop = false;
};
std::string EncodeExecute(const ExecuteBody& e);
// Checks the layout only (the worker's Sessions checks the values).
std::optional<ExecuteBody> DecodeExecute(std::string_view body);


// kResult / kError bodies: u64 live sessions | u64 stale live runs | the result or error.
// The worker's counts ride on its answers (the supervisor keeps each worker's last ones):
// its live sessions, and Sessions::StaleLiveRuns since it started.
struct WorkerCounts {
  uint64_t live_sessions = 0;
  uint64_t stale_runs = 0;
};
std::string EncodeResult(const WorkerCounts& counts, std::string_view json_text);
std::string EncodeError(const WorkerCounts& counts, const Status& status);
struct WorkerReply {
  uint64_t live_sessions = 0;
  uint64_t stale_runs = 0;
  std::string_view rest;  // kResult: the JSON text; kError: the message
  uint8_t code = 0;       // kError only
};
std::optional<WorkerReply> DecodeReply(FrameType type, std::string_view body);

// What the supervisor needs of a kResult's JSON text (brig::ToJson(thread_id, SessionResult))
// to pass it on unchanged as the HTTP answer, without building it as a json value: the
// session it is of ("session"."thread_id") and its outcome for the metrics: the failure's
// kind ("failure"."kind") if there is one, else "ok" or "python_error" ("ok"). nullopt when
// the text is not one valid JSON object (checked in full) or those fields are missing or of
// another type: a broken worker.
struct ResultSummary {
  std::string thread_id;
  std::string outcome;
};
std::optional<ResultSummary> SummarizeResult(std::string_view json_text);

// kConfig's body: the options a worker opens its Sessions with, its thread count, how
// long a quick execution may run on the thread that reads the socket (inline_budget_us,
// WorkerPoolOptions::inline_budget; absent: 0), whether it hands its saves to the
// supervisor (relay_saves, kSave; absent: false), and the nice value of its execution
// threads (execution_nice, 0..19, WorkerPoolOptions::execution_nice; absent: 0).
std::string EncodeConfig(const Sessions::Options& options, int threads,
                         std::chrono::microseconds inline_budget = std::chrono::microseconds(0),
                         bool relay_saves = false, int execution_nice = 0);
// InvalidArgument naming what is missing or out of range.
Status DecodeConfig(std::string_view body, Sessions::Options* options, int* threads,
                    std::chrono::microseconds* inline_budget = nullptr, bool* relay_saves = nullptr,
                    int* execution_nice = nullptr);

}  // namespace brig::server::worker

#endif  // BRIG_SERVER_WORKER_PROTOCOL_H_
