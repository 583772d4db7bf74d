#include "obs/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace datasite::obs {
namespace internal {

int ThisShard() {
  static std::atomic<int> next{0};
  thread_local const int shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

}  // namespace internal

namespace {

// Sample values as Prometheus parses them: integers without a fraction, "+Inf", "NaN".
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // The shortest text that reads back as the same double ("0.1", not "0.10000000000000001").
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

// HELP text escapes backslash and newline; label values also the double quote.
std::string Escape(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="1",b="2"}`, with `extra` (already formatted, e.g. `le="0.5"`) last; "" without labels.
std::string Labels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                   std::string_view extra = {}) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + Escape(values[i], true) + "\"";
  }
  if (!extra.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra;
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

uint64_t Counter::Value() const {
  uint64_t sum = 0;
  for (const Shard& s : shards_) sum += s.value.load(std::memory_order_relaxed);
  return sum;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  for (Shard& s : shards_) {
    s.counts = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  }
}

void Histogram::Observe(double v) {
  // The first bucket whose upper bound is >= v ("le"); past the last one, +Inf.
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  Shard& s = shards_[internal::ThisShard()];
  s.counts[i].fetch_add(1, std::memory_order_relaxed);
  s.sum.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1, 0);
  for (const Shard& s : shards_) {
    for (size_t i = 0; i < out.size(); ++i) out[i] += s.counts[i].load(std::memory_order_relaxed);
  }
  return out;
}

double Histogram::Sum() const {
  double sum = 0;
  for (const Shard& s : shards_) sum += s.sum.load(std::memory_order_relaxed);
  return sum;
}

Family<Counter>& Registry::AddCounter(std::string name, std::string help,
                                      std::vector<std::string> label_names) {
  auto e = std::make_unique<Entry>();
  e->name = std::move(name);
  e->help = std::move(help);
  e->type = "counter";
  e->counters = std::make_unique<Family<Counter>>(std::move(label_names),
                                                  [] { return std::make_unique<Counter>(); });
  entries_.push_back(std::move(e));
  return *entries_.back()->counters;
}

Family<Gauge>& Registry::AddGauge(std::string name, std::string help,
                                  std::vector<std::string> label_names) {
  auto e = std::make_unique<Entry>();
  e->name = std::move(name);
  e->help = std::move(help);
  e->type = "gauge";
  e->gauges = std::make_unique<Family<Gauge>>(std::move(label_names),
                                              [] { return std::make_unique<Gauge>(); });
  entries_.push_back(std::move(e));
  return *entries_.back()->gauges;
}

Family<Histogram>& Registry::AddHistogram(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          std::vector<double> bounds) {
  auto e = std::make_unique<Entry>();
  e->name = std::move(name);
  e->help = std::move(help);
  e->type = "histogram";
  e->histograms = std::make_unique<Family<Histogram>>(
      std::move(label_names), [bounds] { return std::make_unique<Histogram>(bounds); });
  entries_.push_back(std::move(e));
  return *entries_.back()->histograms;
}

void Registry::AddGaugeCallback(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::function<GaugeSamples()> collect) {
  auto e = std::make_unique<Entry>();
  e->name = std::move(name);
  e->help = std::move(help);
  e->type = "gauge";
  e->callback_labels = std::move(label_names);
  e->callback = std::move(collect);
  entries_.push_back(std::move(e));
}

std::string Registry::Render() const {
  std::string out;
  for (const auto& e : entries_) {
    out += "# HELP " + e->name + " " + Escape(e->help, false) + "\n";
    out += "# TYPE " + e->name + " " + e->type + "\n";
    if (e->counters) {
      e->counters->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
        out += e->name + Labels(e->counters->label_names(), values) + " " +
               FormatValue(static_cast<double>(c.Value())) + "\n";
      });
    } else if (e->gauges) {
      e->gauges->ForEach([&](const std::vector<std::string>& values, const Gauge& g) {
        out += e->name + Labels(e->gauges->label_names(), values) + " " + FormatValue(g.Value()) +
               "\n";
      });
    } else if (e->histograms) {
      e->histograms->ForEach([&](const std::vector<std::string>& values, const Histogram& h) {
        const auto& names = e->histograms->label_names();
        const std::vector<uint64_t> counts = h.BucketCounts();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < counts.size(); ++i) {
          cumulative += counts[i];
          const std::string le =
              "le=\"" + (i < h.bounds().size() ? FormatValue(h.bounds()[i]) : "+Inf") + "\"";
          out += e->name + "_bucket" + Labels(names, values, le) + " " +
                 FormatValue(static_cast<double>(cumulative)) + "\n";
        }
        out += e->name + "_sum" + Labels(names, values) + " " + FormatValue(h.Sum()) + "\n";
        out += e->name + "_count" + Labels(names, values) + " " +
               FormatValue(static_cast<double>(cumulative)) + "\n";
      });
    } else if (e->callback) {
      for (const auto& [values, v] : e->callback()) {
        out += e->name + Labels(e->callback_labels, values) + " " + FormatValue(v) + "\n";
      }
    }
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace {

struct Defaults {
  Registry registry;
  Family<Counter>& logins = registry.AddCounter(
      "datasite_logins_total", "Password logins by result (ok, failed).", {"result"});
  Counter& logins_ok = logins.With({"ok"});
  Counter& logins_failed = logins.With({"failed"});
  Family<Counter>& grant_refusals = registry.AddCounter(
      "datasite_grant_refusals_total",
      "Private runs refused under a grant, by reason (rate_limit, ended, inputs).", {"reason"});
  Counter& grant_rate_limit = grant_refusals.With({"rate_limit"});
  Counter& grant_ended = grant_refusals.With({"ended"});
  Counter& grant_inputs = grant_refusals.With({"inputs"});
  Histogram& queue_wait =
      registry
          .AddHistogram("datasite_job_queue_wait_seconds",
                        "Time jobs waited queued before a job slot of this process took them.", {},
                        {0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600})
          .With({});
};

Defaults& TheDefaults() {
  static Defaults defaults;
  return defaults;
}

}  // namespace

Registry& DefaultRegistry() { return TheDefaults().registry; }
Counter& Logins(bool ok) { return ok ? TheDefaults().logins_ok : TheDefaults().logins_failed; }
Histogram& JobQueueWait() { return TheDefaults().queue_wait; }
Counter& GrantRefusals(GrantRefusal why) {
  Defaults& d = TheDefaults();
  switch (why) {
    case GrantRefusal::kRateLimit:
      return d.grant_rate_limit;
    case GrantRefusal::kEnded:
      return d.grant_ended;
    case GrantRefusal::kInputs:
      break;
  }
  return d.grant_inputs;
}

}  // namespace datasite::obs
