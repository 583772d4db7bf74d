#include "obs/metrics.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace datasite::obs {
namespace {

TEST(MetricsTest, CounterWithLabelsRendersOneLinePerChild) {
  Registry r;
  auto& requests = r.AddCounter("t_requests_total", "Requests.", {"route", "status"});
  requests.With({"/a/{id}", "200"}).Add();
  requests.With({"/a/{id}", "200"}).Add(2);
  requests.With({"/b", "404"}).Add();
  EXPECT_EQ(r.Render(),
            "# HELP t_requests_total Requests.\n"
            "# TYPE t_requests_total counter\n"
            "t_requests_total{route=\"/a/{id}\",status=\"200\"} 3\n"
            "t_requests_total{route=\"/b\",status=\"404\"} 1\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  auto& h = r.AddHistogram("t_seconds", "Latency.", {}, {0.5, 1}).With({});
  h.Observe(0.25);
  h.Observe(0.5);  // on a bound: counted in that bucket ("le")
  h.Observe(0.75);
  h.Observe(7);
  EXPECT_EQ(r.Render(),
            "# HELP t_seconds Latency.\n"
            "# TYPE t_seconds histogram\n"
            "t_seconds_bucket{le=\"0.5\"} 2\n"
            "t_seconds_bucket{le=\"1\"} 3\n"
            "t_seconds_bucket{le=\"+Inf\"} 4\n"
            "t_seconds_sum 8.5\n"
            "t_seconds_count 4\n");
}

TEST(MetricsTest, HistogramLabelsComeBeforeLe) {
  Registry r;
  r.AddHistogram("t_h", "H.", {"route"}, {1}).With({"/x"}).Observe(2);
  const std::string text = r.Render();
  EXPECT_NE(text.find("t_h_bucket{route=\"/x\",le=\"1\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_h_bucket{route=\"/x\",le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_h_count{route=\"/x\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.AddGauge("t_g", "Line one\nback\\slash", {"v"}).With({"a\"b\\c\nd"}).Set(1.5);
  EXPECT_EQ(r.Render(),
            "# HELP t_g Line one\\nback\\\\slash\n"
            "# TYPE t_g gauge\n"
            "t_g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
}

TEST(MetricsTest, GaugeCallbackIsReadAtEachRender) {
  Registry r;
  double queued = 1;
  r.AddGaugeCallback("t_jobs", "Jobs.", {"state"}, [&] {
    return GaugeSamples{{{"queued"}, queued}, {{"running"}, 0}};
  });
  EXPECT_NE(r.Render().find("t_jobs{state=\"queued\"} 1\n"), std::string::npos);
  queued = 5;
  const std::string text = r.Render();
  EXPECT_NE(text.find("t_jobs{state=\"queued\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_jobs{state=\"running\"} 0\n"), std::string::npos) << text;
}

TEST(MetricsTest, CountsFromManyThreadsAddUp) {
  Registry r;
  Counter& c = r.AddCounter("t_c", "C.").With({});
  Histogram& h = r.AddHistogram("t_h", "H.", {}, {1}).With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Add();
        h.Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), 120000u);
  EXPECT_EQ(h.BucketCounts()[0], 120000u);
  EXPECT_DOUBLE_EQ(h.Sum(), 60000);
}

TEST(MetricsTest, DefaultRegistryHasLogins) {
  const uint64_t before = Logins(false).Value();
  Logins(false).Add();
  EXPECT_EQ(Logins(false).Value(), before + 1);
  EXPECT_NE(DefaultRegistry().Render().find("datasite_logins_total{result=\"failed\"}"),
            std::string::npos);
}

}  // namespace
}  // namespace datasite::obs
