// A small Prometheus metrics registry: counters, gauges and fixed-bucket histograms with labels,
// rendered in the text exposition format 0.0.4.
//
// The hot path (Counter::Add, Histogram::Observe) is lock-free: each metric keeps one slot per
// shard, a thread always adds to the same shard, and a scrape sums the shards. Looking a labelled
// child up (Family::With) takes the family's mutex: callers on a hot path keep the reference.
#ifndef DATASITE_OBS_METRICS_H_
#define DATASITE_OBS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace datasite::obs {

inline constexpr int kShards = 8;

namespace internal {
// This thread's shard, 0..kShards-1, fixed at its first use.
int ThisShard();
}  // namespace internal

// A count that only goes up. Safe for concurrent use.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    shards_[internal::ThisShard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Value() const;

 private:
  struct alignas(64) Shard {
    std::atomic<uint64_t> value{0};
  };
  Shard shards_[kShards];
};

// A value set from outside. Safe for concurrent use.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted into fixed buckets (upper bounds, ascending), with their sum. Safe for
// concurrent use.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Per bucket (the last one is +Inf), not cumulative; and the sum of all observations.
  std::vector<uint64_t> BucketCounts() const;
  double Sum() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<uint64_t>[]> counts;
    std::atomic<double> sum{0};
  };
  std::vector<double> bounds_;
  Shard shards_[kShards];
};

// The children of one metric name, one per combination of label values. Safe for concurrent use.
template <class Metric>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}
  // The child with these label values (as many as label names), made at its first use. The
  // reference stays valid as long as the family.
  Metric& With(const std::vector<std::string>& values) {
    std::lock_guard lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Calls `fn(values, metric)` for every child, in label order.
  template <class Fn>
  void ForEach(Fn fn) const {
    std::lock_guard lock(mu_);
    for (const auto& [values, metric] : children_) fn(values, *metric);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;  // guarded by mu_
};

// A gauge's samples computed at scrape time (label values, value), e.g. counted in the database.
using GaugeSamples = std::vector<std::pair<std::vector<std::string>, double>>;

// Owns the metric families and renders them. Adding families is not thread-safe (do it at
// start-up); using them and Render are safe for concurrent use.
class Registry {
 public:
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> label_names = {});
  Family<Gauge>& AddGauge(std::string name, std::string help,
                          std::vector<std::string> label_names = {});
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> label_names, std::vector<double> bounds);
  // A gauge whose samples `collect` computes at each scrape (on the scraping thread).
  void AddGaugeCallback(std::string name, std::string help, std::vector<std::string> label_names,
                        std::function<GaugeSamples()> collect);

  // The text exposition format 0.0.4 (ContentType()), families in the order they were added.
  std::string Render() const;
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct Entry {
    std::string name, help, type;
    std::unique_ptr<Family<Counter>> counters;
    std::unique_ptr<Family<Gauge>> gauges;
    std::unique_ptr<Family<Histogram>> histograms;
    std::vector<std::string> callback_labels;
    std::function<GaugeSamples()> callback;
  };
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Bucket bounds for request latencies in seconds: 1 ms to 10 s.
std::vector<double> LatencyBuckets();

// The metrics counted wherever they happen (logins, job queue waits), whether or not a scrape
// ever reads them: the process's one registry, which the metrics listener renders.
Registry& DefaultRegistry();
// Logins by result ("ok" or "failed"), in DefaultRegistry().
Counter& Logins(bool ok);
// Private runs refused under a grant (a request approved for repeated use), by reason:
// "rate_limit" (a window was full), "ended" (revoked or expired), "inputs" (the caller's code
// binds other data), in DefaultRegistry().
enum class GrantRefusal { kRateLimit, kEnded, kInputs };
Counter& GrantRefusals(GrantRefusal why);
// Seconds jobs waited queued before a slot of this process took them, in DefaultRegistry().
Histogram& JobQueueWait();

}  // namespace datasite::obs

#endif  // DATASITE_OBS_METRICS_H_
