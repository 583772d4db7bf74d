// Times trivial sandbox jobs (not a test; no assertions): the median and spread of one Run() of
// `def f(data): return data["a"].sum()` on a 10,000-row CSV, back to back and with 20 ms between
// jobs, then the throughput of `slots` threads running such jobs back to back, then `slots` threads
// running `def f(k): return k` back to back, with the CPU time and minor page faults per job of all
// processes beside those of a plain fork + exit of the same warm Python (pandas and numpy imported)
// measured in the same run.
//
//   sandbox_bench [runs=200] [slots=2] [preload]
//
// `preload`: modules the templates import before their first fork, separated by commas (a worker
// pool's warm-up, e.g. sklearn,sklearn.linear_model).
//
// Also prints the CPU time per job over all processes (load-independent, unlike the wall times) and
// the load average, since other work on the machine inflates every wall time.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

namespace {

using datasite::sandbox::JobSpec;
using datasite::sandbox::Outcome;
using SteadyClock = std::chrono::steady_clock;

// What this process, its live descendants (the sandboxes) and their reaped children (the job
// processes) have used so far, from /proc.
struct Usage {
  double cpu_seconds = 0;  // utime stime cutime cstime
  double faults = 0;       // minflt cminflt
};

Usage TreeUsage(pid_t pid) {
  Usage u;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return u;
  std::istringstream fields(line.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 17 && fields >> f; ++i) {
    if (i == 10 || i == 11) u.faults += std::stod(f);
    if (i >= 14) ticks += std::stod(f);
  }
  u.cpu_seconds = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  // Children hang off the thread that forked them (the sandbox forks bwrap on its own thread).
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream children(task.path() / "children");
    pid_t child;
    while (children >> child) {
      Usage c = TreeUsage(child);
      u.cpu_seconds += c.cpu_seconds;
      u.faults += c.faults;
    }
  }
  return u;
}

double TreeCpuSeconds(pid_t pid) { return TreeUsage(pid).cpu_seconds; }
double TreeFaults(pid_t pid) { return TreeUsage(pid).faults; }

// The templates' own minor faults and those of the children they reaped (the jobs): the
// sandbox's bwrap processes are this process's children, the templates theirs.
std::pair<double, double> TemplateFaults() {
  auto children = [](pid_t pid) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
      std::ifstream list(task.path() / "children");
      pid_t child;
      while (list >> child) out.push_back(child);
    }
    return out;
  };
  double own = 0, reaped = 0;
  for (pid_t bwrap : children(getpid())) {
    for (pid_t tmpl : children(bwrap)) {
      std::ifstream stat("/proc/" + std::to_string(tmpl) + "/stat");
      std::string line;
      std::getline(stat, line);
      size_t close = line.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(line.substr(close + 2));
      std::string f;
      for (int i = 3; i <= 11 && fields >> f; ++i) {
        if (i == 10) own += std::stod(f);     // minflt
        if (i == 11) reaped += std::stod(f);  // cminflt
      }
    }
  }
  return {own, reaped};
}

// CPU ms and faults per plain fork + immediate exit of a warm Python (pandas, numpy imported),
// parent and child, over `n` forks; printed by the Python it runs from `dir`.
constexpr char kForkExit[] = R"(import os, resource, sys
import numpy, pandas
def once():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
for _ in range(20):
    once()
n = int(sys.argv[1])
s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(n):
    once()
s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = sum(getattr(b, f) - getattr(a, f) for a, b in ((s0, s1), (c0, c1)) for f in ("ru_utime", "ru_stime"))
faults = s1.ru_minflt - s0.ru_minflt + c1.ru_minflt - c0.ru_minflt
print("%.2f ms of CPU, %.0f faults per fork" % (cpu * 1000 / n, faults / n))
)";

std::string ForkExitReference(const std::filesystem::path& dir, int n) {
  std::ofstream(dir / "fork_exit.py") << kForkExit;
  std::string out;
  std::string cmd = "OPENBLAS_NUM_THREADS=1 /usr/bin/python3 " + (dir / "fork_exit.py").string() +
                    " " + std::to_string(n);
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  int slots = argc > 2 ? std::atoi(argv[2]) : 2;
  std::vector<std::string> preload;
  for (std::string rest = argc > 3 ? argv[3] : ""; !rest.empty();) {
    size_t comma = std::min(rest.find(','), rest.size());
    preload.push_back(rest.substr(0, comma));
    rest.erase(0, comma + 1);
  }
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("sandbox-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream csv(dir / "data.csv");
    csv << "a,b,c\n";
    for (int i = 0; i < 10'000; ++i) csv << i << ',' << i * 0.5 << ",name" << i % 97 << '\n';
  }

  auto start = SteadyClock::now();
  auto sandbox = datasite::sandbox::StartSandbox(
      {.python = "/usr/bin/python3", .preload = preload, .slots = slots});
  if (!sandbox.ok()) {
    std::fprintf(stderr, "StartSandbox: %s\n", sandbox.status().ToString().c_str());
    return 1;
  }
  std::printf("start (%d slots): %.0f ms\n%s\n", slots,
              std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count(),
              (*sandbox)->Describe().c_str());

  JobSpec spec;
  spec.source = "def f(data):\n    return data[\"a\"].sum()\n";
  spec.function_name = "f";
  spec.inputs = {{"data", (dir / "data.csv").string(), "csv"}};

  std::vector<double> ms;
  double cpu_before = 0;
  double host_before = 0;
  for (int i = 0; i < runs + 10; ++i) {
    if (i == 10) {
      cpu_before = TreeCpuSeconds(getpid());
      host_before = SelfCpuSeconds();
    }
    auto t = SteadyClock::now();
    auto r = (*sandbox)->Run(spec, (dir / "result").string(), nullptr);
    double took = std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
    if (!r.ok() || r->outcome != Outcome::kOk) {
      std::fprintf(
          stderr, "job failed: %s\n",
          r.ok() ? (r->error + "\n" + r->stderr_text).c_str() : r.status().ToString().c_str());
      return 1;
    }
    if (i >= 10) ms.push_back(took);  // the first jobs warm the page cache
  }
  double cpu_ms = (TreeCpuSeconds(getpid()) - cpu_before) * 1000 / runs;
  std::printf("sequential, %d runs: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, min %.2f ms\n", runs,
              Percentile(ms, 0.5), Percentile(ms, 0.9), Percentile(ms, 0.99), Percentile(ms, 0.0));
  std::printf("CPU per job: %.2f ms in all processes (from /proc), of which %.2f ms in this one\n",
              cpu_ms, (SelfCpuSeconds() - host_before) * 1000 / runs);

  // Callers that leave a gap between jobs (like requests arriving over HTTP): the spare child of
  // each slot is ready when its job comes.
  std::vector<double> spaced;
  for (int i = 0; i < runs; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto t = SteadyClock::now();
    auto r = (*sandbox)->Run(spec, (dir / "result").string(), nullptr);
    spaced.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count());
    if (!r.ok() || r->outcome != Outcome::kOk) return 1;
  }
  std::printf("one job every 20 ms, %d runs: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n", runs,
              Percentile(spaced, 0.5), Percentile(spaced, 0.9), Percentile(spaced, 0.99));

  std::atomic<int> failed{0};
  // Runs `jobs` of `job` back to back on `slots` threads; the seconds it took.
  auto back_to_back = [&](const JobSpec& job, int jobs, const std::string& result_name) {
    std::atomic<int> left{jobs};
    std::vector<std::thread> threads;
    auto begin = SteadyClock::now();
    for (int t = 0; t < slots; ++t) {
      threads.emplace_back([&, t] {
        std::string result = (dir / (result_name + std::to_string(t))).string();
        while (left.fetch_sub(1) > 0) {
          auto r = (*sandbox)->Run(job, result, nullptr);
          if (!r.ok() || r->outcome != Outcome::kOk) failed++;
        }
      });
    }
    for (auto& t : threads) t.join();
    return std::chrono::duration<double>(SteadyClock::now() - begin).count();
  };
  double seconds = back_to_back(spec, runs * 2, "result");
  std::printf("throughput, %d threads, %d jobs: %.1f jobs/s (%d failed)\n", slots, runs * 2,
              runs * 2 / seconds, failed.load());
  // Trivial jobs back to back on every slot: what a job costs beyond its fork and exit.
  JobSpec trivial;
  trivial.source = "def f(k):\n    return k\n";
  trivial.function_name = "f";
  trivial.constants = {{"k", 1}};
  double cpu0 = TreeCpuSeconds(getpid()), faults0 = TreeFaults(getpid());
  auto [template0, jobs0] = TemplateFaults();
  double host0 = SelfCpuSeconds();
  seconds = back_to_back(trivial, runs * 2, "trivial");
  double host_ms = (SelfCpuSeconds() - host0) * 1000 / (runs * 2);
  std::printf(
      "trivial jobs (return k), %d threads, %d jobs: %.1f jobs/s; per job %.2f ms of CPU in the "
      "sandbox (+%.2f ms in this process), %.0f faults\n",
      slots, runs * 2, runs * 2 / seconds,
      (TreeCpuSeconds(getpid()) - cpu0) * 1000 / (runs * 2) - host_ms, host_ms,
      (TreeFaults(getpid()) - faults0) / (runs * 2));
  auto [template1, jobs1] = TemplateFaults();
  std::printf("  faults per job: %.0f in the templates, %.0f in the job children\n",
              (template1 - template0) / (runs * 2), (jobs1 - jobs0) / (runs * 2));
  std::printf("plain fork + exit of the same warm Python: %s\n",
              ForkExitReference(dir, runs).c_str());
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3)
    std::printf("load average now: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
  fs::remove_all(dir);
  return failed.load() == 0 ? 0 : 1;
}
