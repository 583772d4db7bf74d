// The metrics a server process serves to Prometheus (--metrics-address), and the listener that
// serves them. See docs/DEPLOY.md, "Metrics and logs", for the names and who may read them.
#ifndef DATASITE_SERVER_METRICS_H_
#define DATASITE_SERVER_METRICS_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "core/status.h"
#include "http/router.h"
#include "http/server.h"
#include "obs/metrics.h"

namespace datasite::jobs {
class JobQueue;
}  // namespace datasite::jobs
namespace datasite::store {
class Store;
}  // namespace datasite::store

namespace datasite::server {

// "HOST:PORT" (an IP address; [::1]:PORT for IPv6) into `host` and `port`; kInvalidArgument
// otherwise.
Status ParseListenAddress(const std::string& address, std::string* host, uint16_t* port);

// The HTTP metrics (an observer for the API's HttpServer), the jobs' gauges read from the store at
// each scrape, build info, and the counters of obs::DefaultRegistry(); served by a listener of its
// own without authentication. Safe for concurrent use once started.
class ServerMetrics : public http::RequestObserver {
 public:
  // `store` and `queue` must outlive it.
  ServerMetrics(store::Store& store, jobs::JobQueue& queue);
  ~ServerMetrics() override;

  void OnResponse(std::string_view method, std::string_view route, int status,
                  std::chrono::steady_clock::duration elapsed) override;
  void OnUploadBytes(std::string_view route, uint64_t bytes) override;

  // The exposition text: this registry's families, then the default registry's.
  std::string Render() const;

  // Serves GET /metrics on `host`:`port` (0: a free one) until Stop, to requests for an IP
  // address, localhost or one of `allowed_hosts` (as the API's port: see http::AllowedHosts).
  Status Listen(const std::string& host, uint16_t port,
                const std::vector<std::string>& allowed_hosts);
  uint16_t port() const;
  void Stop();

 private:
  struct Child;
  Child& ChildFor(std::string_view method, std::string_view route, int status);
  // The jobs by status, read from the store at most once per kJobCountsTtl; nullopt when the
  // store fails.
  std::optional<std::vector<std::pair<std::string, int64_t>>> JobCounts(store::Store& store);
  static constexpr std::chrono::seconds kJobCountsTtl{5};

  std::mutex job_counts_mu_;
  std::optional<std::vector<std::pair<std::string, int64_t>>> job_counts_;  // job_counts_mu_
  std::chrono::steady_clock::time_point job_counts_at_;                     // job_counts_mu_
  obs::Registry registry_;
  obs::Family<obs::Counter>& requests_;
  obs::Family<obs::Histogram>& latency_;
  obs::Family<obs::Counter>& upload_bytes_;
  std::mutex mu_;
  // Orders (method, route, status) keys, and finds them by views (so a lookup builds no string).
  // Spelled out: clang's tuple comparison does not mix std::string and std::string_view members.
  struct KeyLess {
    using is_transparent = void;
    using View = std::tuple<std::string_view, std::string_view, int>;
    static View Of(const std::tuple<std::string, std::string, int>& k) {
      return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
    }
    static const View& Of(const View& v) { return v; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return Of(a) < Of(b);
    }
  };
  // (method, route, status) -> its counters. Guarded by mu_; children never move.
  std::map<std::tuple<std::string, std::string, int>, std::unique_ptr<Child>, KeyLess> children_;
  http::Router router_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace datasite::server

#endif  // DATASITE_SERVER_METRICS_H_
