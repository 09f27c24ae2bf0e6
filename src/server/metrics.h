// brig::server::Metrics: what `GET /metrics` reports, in Prometheus' text format (0.0.4):
// executions and their durations (histogram), failures by kind, HTTP requests by status
// class, store latency (histogram), live sessions, executions in flight, worker restarts.
// Thread-safe: every counter is atomic; a histogram's buckets are too.
#ifndef BRIG_SERVER_METRICS_H_
#define BRIG_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace brig::server {

class Histogram {
 public:
  // Upper bounds in seconds, from 0.5 ms to 60 s.
  static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,    0.25,  0.5,    1,     2.5,  10,   60};
  void Observe(double seconds);
  // Appends the _bucket, _sum and _count lines of `name`.
  void Render(const std::string& name, std::string* out) const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

class Metrics {
 public:
  // One execution's outcome: "ok", "python_error", "timeout", "trap", "exit", "guest_error",
  // or an error code of the API ("session_expired", "unavailable", ...).
  void ObserveExecution(const std::string& outcome, double seconds);
  void ObserveStore(double seconds) { store_latency_.Observe(seconds); }
  // One commit of workers' saves that this process made for them (SQLite's relayed saves):
  // how many it held and how long it took.
  void ObserveCommit(size_t saves, double seconds) {
    commit_seconds_.Observe(seconds);
    committed_saves_.fetch_add(saves, std::memory_order_relaxed);
  }
  void CountRequest(unsigned status);

  // Gauges read when rendered.
  struct Gauges {
    int64_t live_sessions = 0;
    int64_t stale_live_runs = 0;
    int64_t executions_in_flight = 0;
    int64_t worker_restarts = 0;
    int64_t open_connections = 0;
  };
  std::string Render(const Gauges& gauges) const;

 private:
  Histogram execution_seconds_;
  Histogram store_latency_;
  Histogram commit_seconds_;
  std::atomic<uint64_t> committed_saves_{0};
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> executions_by_outcome_;
  std::array<std::atomic<uint64_t>, 6> requests_by_class_{};  // 1xx..5xx, other
};

}  // namespace brig::server

#endif  // BRIG_SERVER_METRICS_H_
