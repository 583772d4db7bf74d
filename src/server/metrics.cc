#include "server/metrics.h"

#include <spdlog/spdlog.h>

#include "jobs/job_queue.h"
#include "services/settings.h"
#include "store/store.h"

#ifndef DATASITE_COMMIT
#define DATASITE_COMMIT "unknown"
#endif

namespace datasite::server {

Status ParseListenAddress(const std::string& address, std::string* host, uint16_t* port) {
  const auto bad = [&] {
    return InvalidArgumentError(
        "--metrics-address must be HOST:PORT with an IP address (e.g. "
        "127.0.0.1:9464), not '" +
        address + "'");
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad();
  std::string h = address.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = address.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  const int n = std::stoi(p);
  if (n > 65535) return bad();
  *host = h;
  *port = static_cast<uint16_t>(n);
  return Status::Ok();
}

// The counters of one (method, route, status), and the latency of its (method, route).
struct ServerMetrics::Child {
  obs::Counter& requests;
  obs::Histogram& latency;
};

ServerMetrics::ServerMetrics(store::Store& store, jobs::JobQueue& queue)
    : requests_(registry_.AddCounter(
          "datasite_http_requests_total",
          "HTTP responses by route pattern (\"\" when no route matched), method and status.",
          {"method", "route", "status"})),
      latency_(registry_.AddHistogram(
          "datasite_http_request_duration_seconds",
          "Time from a request's headers to its response's first byte, by route pattern.",
          {"method", "route"}, obs::LatencyBuckets())),
      upload_bytes_(registry_.AddCounter("datasite_upload_bytes_total",
                                         "Body bytes received by upload routes.", {"route"})) {
  static constexpr const char* kStates[] = {"queued",    "running", "completed",  "errored",
                                            "timed_out", "killed",  "interrupted"};
  // Read from the database (they count the jobs of every replica and worker, and nothing is
  // counted on the jobs' paths), in one pass over the status index, at most once per
  // kJobCountsTtl however often the unauthenticated listener is scraped: the count holds the
  // store, which every request needs.
  registry_.AddGaugeCallback("datasite_jobs",
                             "Jobs by state, counted in the database (at most every 5 s).",
                             {"state"}, [this, &store] {
                               obs::GaugeSamples out;
                               auto counts = JobCounts(store);
                               if (!counts) return out;
                               for (const char* state : kStates) {
                                 int64_t n = 0;
                                 for (const auto& [status, count] : *counts) {
                                   if (status == state) n = count;
                                 }
                                 out.push_back({{state}, static_cast<double>(n)});
                               }
                               return out;
                             });
  registry_.AddGaugeCallback(
      "datasite_job_queue_depth",
      "Jobs queued and waiting for a slot (the database's count, at most every 5 s).", {},
      [this, &store] {
        auto counts = JobCounts(store);
        if (!counts) return obs::GaugeSamples{};
        int64_t queued = 0;
        for (const auto& [status, count] : *counts) {
          if (status == "queued") queued = count;
        }
        return obs::GaugeSamples{{{}, static_cast<double>(queued)}};
      });
  registry_.AddGaugeCallback("datasite_sandbox_slots", "Job slots (sandbox processes) here.", {},
                             [&queue] {
                               return obs::GaugeSamples{{{}, static_cast<double>(queue.workers())}};
                             });
  registry_.AddGaugeCallback(
      "datasite_sandbox_slots_busy", "Job slots of this process running a job now.", {}, [&queue] {
        return obs::GaugeSamples{{{}, static_cast<double>(queue.RunsHere())}};
      });
  registry_
      .AddGauge("datasite_build_info", "The server's version and source commit; always 1.",
                {"version", "commit"})
      .With({services::kVersion, DATASITE_COMMIT})
      .Set(1);
  auto render = [this](http::Request&) {
    http::Response res;
    res.content_type = std::string(obs::Registry::kContentType);
    res.body = Render();
    return res;
  };
  router_.Add(http::Route{.method = "GET", .pattern = "/metrics", .handler = render});
}

ServerMetrics::~ServerMetrics() { Stop(); }

ServerMetrics::Child& ServerMetrics::ChildFor(std::string_view method, std::string_view route,
                                              int status) {
  std::lock_guard lock(mu_);
  // Looked up without building strings: the common case allocates nothing.
  auto it = children_.find(std::make_tuple(method, route, status));
  if (it != children_.end()) return *it->second;
  const std::string m(method), r(route);
  auto child = std::make_unique<Child>(
      Child{requests_.With({m, r, std::to_string(status)}), latency_.With({m, r})});
  return *children_.emplace(std::make_tuple(m, r, status), std::move(child)).first->second;
}

void ServerMetrics::OnResponse(std::string_view method, std::string_view route, int status,
                               std::chrono::steady_clock::duration elapsed) {
  Child& child = ChildFor(method, route, status);
  child.requests.Add();
  child.latency.Observe(std::chrono::duration<double>(elapsed).count());
}

void ServerMetrics::OnUploadBytes(std::string_view route, uint64_t bytes) {
  // Rare next to requests (a call per MiB of an upload): the family's lookup is cheap enough.
  upload_bytes_.With({std::string(route)}).Add(bytes);
}

std::string ServerMetrics::Render() const {
  return registry_.Render() + obs::DefaultRegistry().Render();
}

Status ServerMetrics::Listen(const std::string& host, uint16_t port,
                             const std::vector<std::string>& allowed_hosts) {
  http::ServerOptions options;
  options.host = host;
  options.allowed_hosts = allowed_hosts;
  options.port = port;
  options.io_threads = 1;
  options.request_threads = 1;
  options.heavy_threads = 1;
  options.wait_threads = 1;
  options.upload_threads = 1;
  options.max_connections = 64;
  // A scraper sends its request at once and rarely reuses a connection: a few per address and a
  // short idle time, so that idle sockets from one place can't keep every scrape out.
  options.max_connections_per_address = 8;
  options.idle_timeout = std::chrono::seconds(5);
  options.header_timeout = std::chrono::seconds(5);
  ASSIGN_OR_RETURN(http_, http::NewHttpServer(router_, options));
  http_->Start();
  return Status::Ok();
}

uint16_t ServerMetrics::port() const { return http_ ? http_->port() : 0; }

void ServerMetrics::Stop() {
  if (http_) http_->Shutdown(std::chrono::milliseconds(500));
}

std::optional<std::vector<std::pair<std::string, int64_t>>> ServerMetrics::JobCounts(
    store::Store& store) {
  std::lock_guard lock(job_counts_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (job_counts_ && now - job_counts_at_ < kJobCountsTtl) return job_counts_;
  auto counts = store.CountJobsByStatus();
  if (!counts.ok()) {
    spdlog::warn("metrics: cannot count jobs: {}", counts.status().ToString());
    return std::nullopt;
  }
  job_counts_ = std::move(*counts);
  job_counts_at_ = now;
  return job_counts_;
}

}  // namespace datasite::server
