#include "server/metrics.h"

#include <cstdio>

namespace brig::server {

namespace {
std::string Number(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
}  // namespace

void Histogram::Observe(double seconds) {
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(const std::string& name, std::string* out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    *out += name + "_bucket{le=\"" + Number(kBounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  cumulative += buckets_[kBounds.size()].load(std::memory_order_relaxed);
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  *out += name + "_sum " + Number(sum_micros_.load(std::memory_order_relaxed) / 1e6) + "\n";
  *out += name + "_count " + std::to_string(cumulative) + "\n";
}

void Metrics::ObserveExecution(const std::string& outcome, double seconds) {
  execution_seconds_.Observe(seconds);
  std::lock_guard lock(mu_);
  ++executions_by_outcome_[outcome];
}

void Metrics::CountRequest(unsigned status) {
  size_t c = status >= 100 && status < 600 ? status / 100 - 1 : 5;
  requests_by_class_[c].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  out += "# HELP brig_executions_total Executions finished, by outcome.\n# TYPE brig_executions_total counter\n";
  {
    std::lock_guard lock(mu_);
    for (const auto& [outcome, n] : executions_by_outcome_)
      out += "brig_executions_total{outcome=\"" + outcome + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP brig_execution_duration_seconds Time from request to result of an execution.\n"
         "# TYPE brig_execution_duration_seconds histogram\n";
  execution_seconds_.Render("brig_execution_duration_seconds", &out);
  out += "# HELP brig_store_duration_seconds Time of the store operations the server makes itself.\n"
         "# TYPE brig_store_duration_seconds histogram\n";
  store_latency_.Render("brig_store_duration_seconds", &out);
  out += "# HELP brig_store_commit_duration_seconds Time of each commit this process made of the workers' saves "
         "(SQLite: one commit holds the saves of all workers that came meanwhile).\n"
         "# TYPE brig_store_commit_duration_seconds histogram\n";
  commit_seconds_.Render("brig_store_commit_duration_seconds", &out);
  out += "# HELP brig_store_committed_saves_total Workers' saves those commits held (per commit: divide by "
         "brig_store_commit_duration_seconds_count).\n"
         "# TYPE brig_store_committed_saves_total counter\n";
  out += "brig_store_committed_saves_total " + std::to_string(committed_saves_.load(std::memory_order_relaxed)) + "\n";
  static const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  out += "# HELP brig_http_requests_total HTTP requests answered, by status class.\n# TYPE brig_http_requests_total counter\n";
  for (size_t i = 0; i < 6; ++i)
    out += std::string("brig_http_requests_total{class=\"") + kClasses[i] + "\"} " +
           std::to_string(requests_by_class_[i].load(std::memory_order_relaxed)) + "\n";
  out += "# HELP brig_live_sessions Sessions kept live in memory.\n# TYPE brig_live_sessions gauge\n";
  out += "brig_live_sessions " + std::to_string(g.live_sessions) + "\n";
  out += "# HELP brig_stale_live_runs_total Executions run twice: a live session turned out stale at its save "
         "(another process or node had changed it), so the code ran again on the stored state.\n"
         "# TYPE brig_stale_live_runs_total counter\n";
  out += "brig_stale_live_runs_total " + std::to_string(g.stale_live_runs) + "\n";
  out += "# HELP brig_executions_in_flight Executions running or queued.\n# TYPE brig_executions_in_flight gauge\n";
  out += "brig_executions_in_flight " + std::to_string(g.executions_in_flight) + "\n";
  out += "# HELP brig_worker_restarts_total Worker processes started again after one died.\n"
         "# TYPE brig_worker_restarts_total counter\n";
  out += "brig_worker_restarts_total " + std::to_string(g.worker_restarts) + "\n";
  out += "# HELP brig_open_connections HTTP connections open.\n# TYPE brig_open_connections gauge\n";
  out += "brig_open_connections " + std::to_string(g.open_connections) + "\n";
  return out;
}

}  // namespace brig::server
