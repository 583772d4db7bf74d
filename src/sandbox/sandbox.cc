// The host side of the sandbox: starts one bubblewrap + template Python process per slot, has it
// fork a child per job, sends each job straight to its child over the child's own socket, relays
// output and results, validates the child's report strictly, enforces timeouts and cancellation.
//
// Threads: Run() is called from any thread; slots are handed out under `mu_`, and a slot's
// descriptors and process are touched only by the one Run() holding it (or by StartSandbox/the
// destructor).
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "core/random.h"
#include "sandbox/runner_py.h"
#include "sandbox/seccomp_filters.h"
#include "sandbox/unique_fd.h"

namespace datasite::sandbox {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uid_t kSandboxUid = 65534;  // nobody
constexpr uint32_t kMaxMessageFromSandbox = 64 << 10;
constexpr size_t kMaxJobMessage = size_t{64} << 20;
constexpr size_t kMaxInputs = 64;
constexpr size_t kLogTail = 4096;
constexpr milliseconds kStartTimeout{60'000};
constexpr milliseconds kKillGrace{2'000};
constexpr milliseconds kPollInterval{10};
constexpr milliseconds kSendTimeout{60'000};  // a child that takes no job within this is lost
// Resize waits this long for a template to clone before it starts a fresh one.
constexpr milliseconds kCloneWait{2'000};

std::string ErrnoText(const std::string& what) { return what + ": " + strerror(errno); }

std::string MiB(uint64_t bytes) {
  uint64_t mib = bytes >> 20;
  if (mib << 20 == bytes) return std::to_string(mib) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::string Seconds(milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

// A process this module started; killed and reaped when destroyed. Not thread-safe.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&& other) noexcept {
    if (this != &other) {
      KillAndWait();
      pid_ = std::exchange(other.pid_, -1);
    }
    return *this;
  }
  ~ChildProcess() { KillAndWait(); }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // The wait status once the process has ended, without blocking.
  std::optional<int> TryWait() {
    if (pid_ <= 0) return std::nullopt;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    return std::nullopt;
  }

  int Wait() {
    int status = 0;
    while (pid_ > 0 && waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }

  void KillAndWait() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }

 private:
  pid_t pid_ = -1;
};

// Runs functions on one thread that lives as long as this object, for callers whose own thread
// may end sooner. Safe for concurrent use; calls run one at a time.
class Launcher {
 public:
  Launcher() : thread_([this] { Loop(); }) {}
  ~Launcher() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  pid_t Run(std::function<pid_t()> fn) {
    std::packaged_task<pid_t()> task(std::move(fn));
    std::future<pid_t> result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  void Loop() {
    while (true) {
      std::packaged_task<pid_t()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<pid_t()>> tasks_;  // REQUIRES: mu_ held
  bool stop_ = false;                              // REQUIRES: mu_ held
  std::thread thread_;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> MakePipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return InternalError(ErrnoText("pipe2"));
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (fcntl(p.read.get(), F_SETFL, O_NONBLOCK) != 0) return InternalError(ErrnoText("fcntl"));
  return p;
}

// Moves `fd` to a number >= 10 so the child's dup2 onto 0..4 can't clobber it.
Result<UniqueFd> HighFd(UniqueFd fd) {
  if (fd.get() >= 10) return fd;
  UniqueFd high(fcntl(fd.get(), F_DUPFD_CLOEXEC, 10));
  if (!high.valid()) return InternalError(ErrnoText("fcntl(F_DUPFD)"));
  return high;
}

// Reads what is available from a non-blocking `fd` into `out`, keeping at most `cap` bytes in total
// (the rest is read and dropped). Returns false at end of file or on an error.
bool Drain(int fd, std::string& out, uint64_t cap, uint64_t* total = nullptr) {
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (total != nullptr) *total += static_cast<uint64_t>(n);
      if (out.size() < cap) out.append(buf, std::min<size_t>(n, cap - out.size()));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

void KeepTail(std::string& log) {
  if (log.size() > 2 * kLogTail) log.erase(0, log.size() - kLogTail);
}

Status WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InternalError(ErrnoText("write"));
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return UnavailableError(ErrnoText("sending to the sandbox"));
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string Frame(const std::string& body) {
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + body;
}

// Sends one framed message; `fds` ride along with its first bytes.
Status SendMessage(int sock, const std::string& body, const std::vector<int>& fds = {}) {
  std::string framed = Frame(body);
  size_t sent = 0;
  if (!fds.empty()) {
    iovec iov{framed.data(), framed.size()};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    ssize_t n;
    do {
      n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return UnavailableError(ErrnoText("sending a job to the sandbox"));
    sent = static_cast<size_t>(n);
  }
  return SendAll(sock, framed.data() + sent, framed.size() - sent);
}

std::string FindBubblewrap() {
  std::vector<std::string> dirs;
  if (const char* path = getenv("PATH")) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) dirs.push_back(p.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    std::string candidate = dir + "/bwrap";
    if (candidate[0] == '/' && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `argv` (no sandbox; used for `bwrap --version`) and returns its first line of output.
std::string FirstLineOf(const std::vector<std::string>& argv) {
  auto pipe = MakePipe();
  if (!pipe.ok()) return "";
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return "";
  if (pid == 0) {
    dup2(pipe->write.get(), 1);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) dup2(null, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  ChildProcess child(pid);
  pipe->write.reset();
  fcntl(pipe->read.get(), F_SETFL, 0);
  std::string out;
  char buf[512];
  ssize_t n;
  while (out.size() < 4096 && (n = read(pipe->read.get(), buf, sizeof buf)) > 0) out.append(buf, n);
  child.Wait();
  return out.substr(0, out.find('\n'));
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 200) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

Status ValidateSpec(const JobSpec& spec) {
  if (!IsIdentifier(spec.function_name))
    return InvalidArgumentError("function_name must be a Python identifier, got '" +
                                spec.function_name.substr(0, 100) + "'");
  if (spec.source.size() > kMaxJobMessage / 2)
    return InvalidArgumentError("the source is too long");
  if (!spec.constants.is_object()) return InvalidArgumentError("constants must be a JSON object");
  if (!spec.policy.is_null() &&
      (!spec.policy.is_object() || !spec.policy.contains("source") ||
       !spec.policy["source"].is_string() ||
       spec.policy["source"].get_ref<const std::string&>().size() > kMaxJobMessage / 4))
    return InvalidArgumentError("policy must be null or an object with the policies' source");
  if (spec.inputs.size() > kMaxInputs)
    return InvalidArgumentError("at most " + std::to_string(kMaxInputs) + " inputs per job");
  std::vector<std::string> names;
  for (const Input& in : spec.inputs) {
    if (!IsIdentifier(in.name))
      return InvalidArgumentError("input name must be a Python identifier, got '" +
                                  in.name.substr(0, 100) + "'");
    if (in.format != "csv" && in.format != "json" && in.format != "npy" && in.format != "raw")
      return InvalidArgumentError("input '" + in.name + "' has unknown format '" + in.format +
                                  "' (csv, json, npy or raw)");
    if (!in.meta.empty() && (in.format != "csv" || in.meta.size() > kMaxResultMetaBytes ||
                             !nlohmann::json::parse(in.meta, nullptr, false).is_object()))
      return InvalidArgumentError("input '" + in.name + "' has a sidecar that is not a CSV's");
    names.push_back(in.name);
  }
  for (const auto& [key, value] : spec.constants.items()) {
    if (!IsIdentifier(key))
      return InvalidArgumentError("constant name must be a Python identifier, got '" +
                                  key.substr(0, 100) + "'");
    names.push_back(key);
  }
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  if (dup != names.end()) return InvalidArgumentError("argument '" + *dup + "' is given twice");
  const Limits& l = spec.limits;
  if (l.memory_bytes < (uint64_t{64} << 20))
    return InvalidArgumentError("limits.memory_bytes must be at least 64 MiB");
  if (l.wall_timeout.count() <= 0) return InvalidArgumentError("limits.wall_timeout must be > 0");
  if (l.cpu_seconds == 0) return InvalidArgumentError("limits.cpu_seconds must be > 0");
  if (l.max_open_files < 16) return InvalidArgumentError("limits.max_open_files must be >= 16");
  return Status::Ok();
}

// `s` cut to at most `max` bytes without splitting a UTF-8 sequence (the sandbox sends valid
// UTF-8).
std::string CutUtf8(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  s.resize(end);
  return s;
}

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

// `text` on one line of printable ASCII (others as '?'), cut at `max` bytes.
std::string OneLine(const std::string& text, size_t max) {
  std::string out = text.substr(0, max);
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = c == '\n' ? ' ' : '?';
  return out;
}

const char* SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  return name != nullptr ? name : "?";
}

Result<std::vector<UniqueFd>> OpenInputs(const JobSpec& spec);

// One template process and its descriptors. Only the Run() that holds the slot touches it.
struct Slot {
  ChildProcess bwrap;
  UniqueFd ctrl;  // our end of the socket to the template (its fd 3)
  UniqueFd log;   // bwrap's and the template's own stdout + stderr (non-blocking)
  std::string log_tail;
  std::string inbox;      // bytes received on `ctrl` not yet parsed
  bool busy = false;      // REQUIRES: mu_ held (both fields)
  uint64_t released = 0;  // when the slot was last released, in releases
  uint64_t next_job_id = 1;
  nlohmann::json hello;
  // The child spawned for the next job: our end of its channel, and its number (0: none). It is
  // spawned as soon as the job before has its child, so its fork runs beside that job.
  UniqueFd spare;
  uint64_t spare_id = 0;
  // The template was forked from another slot's (Resize): it has no bubblewrap of its own and
  // ends with that one's (the first template is the sandbox's pid 1).
  std::atomic<bool> cloned{false};  // atomic: ClonedSlots reads it while its holder may write it
  bool retired = false;             // REQUIRES: mu_ held. Removed once released (Resize down).
};

class SandboxImpl final : public Sandbox {
 public:
  SandboxImpl(Options options, std::string bwrap, std::string warm_filter)
      : options_(std::move(options)),
        bwrap_(std::move(bwrap)),
        warm_filter_(std::move(warm_filter)) {}

  ~SandboxImpl() override {
    // Clones first: each ends with the template it was forked from.
    for (auto& slot : slots_)
      if (slot->cloned) Stop(*slot);
    for (auto& slot : slots_) Stop(*slot);
  }

  Status StartAll() {
    auto first = std::make_unique<Slot>();
    RETURN_IF_ERROR(Start(*first));
    const nlohmann::json& h = first->hello;
    if (h.contains("preload_error")) {
      std::string error =
          h["preload_error"].is_string() ? h["preload_error"].get<std::string>() : "";
      return FailedPreconditionError("the environment's warm-up import failed: " +
                                     OneLine(error, 500));
    }
    environment_ = {{"python", h.value("python", "")},
                    {"packages", h.value("packages", nlohmann::json::array())},
                    {"modules", h.value("modules", nlohmann::json::array())}};
    {
      std::lock_guard lock(mu_);
      slots_.push_back(std::move(first));
    }
    // The first slots each start a bubblewrap of their own (Resize clones): no slot's jobs then
    // depend on another's template.
    for (int i = 1; i < options_.slots; ++i) {
      auto slot = std::make_unique<Slot>();
      RETURN_IF_ERROR(Start(*slot));
      std::lock_guard lock(mu_);
      slots_.push_back(std::move(slot));
    }
    std::string version = FirstLineOf({bwrap_, "--version"});
    describe_ =
        (version.empty() ? "bubblewrap" : version) +
        " (user, mount, pid, network, ipc, uts and cgroup namespaces; read-only /usr; no host "
        "files), uid 65534, no capabilities, seccomp (sandbox-wide deny list, AF_UNIX sockets "
        "only; per job: no exec, no new processes, no memfd, no mounts), per job a fresh fork of "
        "a template that never sees job data, a private /tmp of " +
        MiB(options_.scratch_bytes) + " and " + std::to_string(options_.scratch_files) +
        " files, rlimits (address space, CPU, open files, file size, no core), python " +
        h.value("python", "?") + " with pandas " + h.value("pandas", "?") + " and numpy " +
        h.value("numpy", "?") +
        (options_.env_root.empty() ? "" : " (environment " + options_.env_root + ")");
    return Status::Ok();
  }

  Status Resize(int slots) override;
  int Slots() const override {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& slot : slots_) n += slot->retired ? 0 : 1;
    return n;
  }
  int ClonedSlots() const override {
    std::lock_guard lock(mu_);
    int n = 0;
    for (const auto& slot : slots_) n += !slot->retired && slot->cloned ? 1 : 0;
    return n;
  }
  nlohmann::json Environment() const override { return environment_; }

  Result<JobResult> Run(const JobSpec& spec, const std::string& result_path,
                        const std::atomic<bool>* cancel) override;

  std::string Describe() const override { return describe_; }

 private:
  Status Start(Slot& slot);
  void Stop(Slot& slot);
  bool Alive(Slot& slot);
  JobResult RunOnSlot(Slot& slot, const JobSpec& spec, const std::string& body,
                      std::vector<UniqueFd>& inputs, int result_fd, const std::atomic<bool>* cancel,
                      bool* untouched, bool* code_started);
  Status Spawn(Slot& slot);
  // Forks a template for `to` from the one of `from` (held by the caller), and waits for it.
  Status Clone(Slot& from, Slot& to);
  Status AwaitHello(Slot& slot, milliseconds timeout);
  bool ReadCtrl(Slot& slot, uint64_t id, std::optional<nlohmann::json>* exited);
  std::vector<std::string> BwrapArgs() const;
  bool BindsEnvironment() const {
    return !options_.env_root.empty() && options_.env_root.rfind("/usr/", 0) != 0;
  }
  Status Diagnose(Slot& slot, const std::string& what);

  // Hands out the free slot that has been idle longest: its spare child has had the most time to
  // get ready, so back-to-back callers alternate between slots.
  // With a `deadline` (not the epoch), nullptr once it passes without a free slot.
  Slot* Acquire(SteadyClock::time_point deadline) {
    std::unique_lock lock(mu_);
    while (true) {
      Slot* best = nullptr;
      for (auto& slot : slots_) {
        if (!slot->busy && !slot->retired && (best == nullptr || slot->released < best->released))
          best = slot.get();
      }
      if (best != nullptr) {
        best->busy = true;
        return best;
      }
      if (deadline == SteadyClock::time_point{}) {
        free_.wait(lock);
      } else if (free_.wait_until(lock, deadline) == std::cv_status::timeout &&
                 SteadyClock::now() >= deadline) {
        return nullptr;
      }
    }
  }
  void Release(Slot& slot) {
    std::unique_ptr<Slot> gone;
    {
      std::lock_guard lock(mu_);
      slot.busy = false;
      slot.released = ++releases_;
      if (slot.retired) {
        auto it = std::find_if(slots_.begin(), slots_.end(),
                               [&slot](const auto& s) { return s.get() == &slot; });
        gone = std::move(*it);
        slots_.erase(it);
      }
    }
    if (gone) Stop(*gone);
    free_.notify_one();
  }

  const Options options_;
  Launcher launcher_;  // forks every bwrap (see Start)
  const std::string bwrap_;
  const std::string warm_filter_;
  std::string describe_;
  nlohmann::json environment_;  // set by StartAll
  std::mutex resize_mu_;        // one Resize at a time
  mutable std::mutex mu_;
  std::condition_variable free_;
  uint64_t releases_ = 0;                     // REQUIRES: mu_ held
  std::vector<std::unique_ptr<Slot>> slots_;  // REQUIRES: mu_ held (a slot itself: see Slot)
};

std::vector<std::string> SandboxImpl::BwrapArgs() const {
  // clang-format off
  std::vector<std::string> args = {bwrap_,
      "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--as-pid-1",
      "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL", "--hostname", "sandbox",
      "--clearenv",
      "--setenv", "HOME", "/tmp",
      "--setenv", "OPENBLAS_NUM_THREADS", "1",
      "--setenv", "HDF5_USE_FILE_LOCKING", "FALSE",  // jobs may not lock files (seccomp_filters.cc)
      "--setenv", "OMP_NUM_THREADS", "1",
      "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
      "--setenv", "LANG", "C.UTF-8",
      "--setenv", "DATASITE_PRELOAD", Join(options_.preload, ","),
      "--ro-bind", "/usr", "/usr",
      "--symlink", "usr/bin", "/bin",
      "--symlink", "usr/lib", "/lib",
      "--symlink", "usr/lib64", "/lib64",
      "--symlink", "usr/sbin", "/sbin",
      "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
      "--proc", "/proc",
      "--dev", "/dev",
      "--dir", "/tmp",  // each job mounts its own tmpfs here, in a namespace of its own
      "--remount-ro", "/dev",
      "--remount-ro", "/",
      "--chdir", "/tmp",
      "--seccomp", "4"};
  // clang-format on
  if (BindsEnvironment()) {
    // Before the remounts: bubblewrap makes the mount point in its own root. (bubblewrap runs as
    // the sandbox's uid and resolves the path: every directory above it must let others search.)
    auto at = std::find(args.begin(), args.end(), "--remount-ro");
    args.insert(at, {"--ro-bind", options_.env_root, options_.env_root});
  }
  for (std::string a : {std::string("--"), options_.python, std::string("-I"), std::string("-B"),
                        std::string("-c"), std::string(kRunnerPy)})
    args.push_back(std::move(a));
  return args;
}

Status SandboxImpl::Start(Slot& slot) {
  Stop(slot);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return InternalError(ErrnoText("socketpair"));
  UniqueFd ours(sv[0]);
  ASSIGN_OR_RETURN(UniqueFd theirs, HighFd(UniqueFd(sv[1])));
  ASSIGN_OR_RETURN(Pipe log, MakePipe());
  ASSIGN_OR_RETURN(log.write, HighFd(std::move(log.write)));
  UniqueFd filter(memfd_create("sandbox-seccomp", MFD_CLOEXEC));
  if (!filter.valid()) return InternalError(ErrnoText("memfd_create"));
  RETURN_IF_ERROR(WriteAll(filter.get(), warm_filter_.data(), warm_filter_.size()));
  if (lseek(filter.get(), 0, SEEK_SET) != 0) return InternalError(ErrnoText("lseek"));
  ASSIGN_OR_RETURN(filter, HighFd(std::move(filter)));
  UniqueFd null(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) return InternalError(ErrnoText("open /dev/null"));
  ASSIGN_OR_RETURN(null, HighFd(std::move(null)));

  std::vector<std::string> argv = BwrapArgs();
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  char path_env[] = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  const bool drop_root = geteuid() == 0;

  // bwrap --die-with-parent ties the sandbox to the thread that forks it: fork on launcher_.
  pid_t pid = launcher_.Run([&]() -> pid_t {
    pid_t child = fork();
    if (child < 0) return -errno;  // errno belongs to the launcher thread
    if (child > 0) return child;
    // Only async-signal-safe calls from here to exec.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(null.get(), 0) < 0 || dup2(log.write.get(), 1) < 0 || dup2(log.write.get(), 2) < 0 ||
        dup2(theirs.get(), 3) < 0 || dup2(filter.get(), 4) < 0)
      _exit(126);
    close_range(5, ~0u, 0);
    setsid();
    if (drop_root) {
      // As root, the sandbox's uid would map to host root, the owner of the server's files; as
      // nobody it owns nothing outside the sandbox.
      if (setgroups(0, nullptr) != 0 || setgid(kSandboxUid) != 0 || setuid(kSandboxUid) != 0) {
        static const char kMsg[] = "datasite: dropping to uid 65534 failed\n";
        (void)!write(2, kMsg, sizeof kMsg - 1);
        _exit(126);
      }
    }
    execve(args[0], args.data(), envp);
    static const char kMsg[] = "datasite: exec of bwrap failed\n";
    (void)!write(2, kMsg, sizeof kMsg - 1);
    _exit(127);
  });
  if (pid < 0) return InternalError(std::string("fork: ") + strerror(-pid));
  slot.bwrap = ChildProcess(pid);
  slot.ctrl = std::move(ours);
  slot.log = std::move(log.read);
  slot.log_tail.clear();
  slot.inbox.clear();
  theirs.reset();
  log.write.reset();

  RETURN_IF_ERROR(AwaitHello(slot, kStartTimeout));
  ASSIGN_OR_RETURN(std::string job_filter, JobFilterBpf());
  nlohmann::json init = {{"type", "init"},
                         {"job_filter", HexEncode(job_filter)},
                         {"scratch_bytes", options_.scratch_bytes},
                         {"scratch_files", options_.scratch_files}};
  RETURN_IF_ERROR(SendMessage(slot.ctrl.get(), init.dump()));
  return Spawn(slot);
}

// Waits for the template's hello on `slot.ctrl` (reading its log meanwhile, if it has one).
Status SandboxImpl::AwaitHello(Slot& slot, milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  bool ctrl_open = true;
  while (true) {
    auto message = internal::PopMessage(slot.inbox);
    if (!message.ok()) return Diagnose(slot, message.status().message());
    if (message->has_value()) {
      slot.hello = std::move(**message);
      break;
    }
    if (!ctrl_open) return Diagnose(slot, "the sandbox's Python exited while starting");
    auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0)
      return Diagnose(slot, "the sandbox's Python did not start within " + Seconds(timeout));
    pollfd fds[2] = {{slot.ctrl.get(), POLLIN, 0}, {slot.log.get(), POLLIN, 0}};
    int n = poll(fds, slot.log.valid() ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return InternalError(ErrnoText("poll"));
    if (slot.log.valid() && fds[1].revents != 0) {
      if (!Drain(slot.log.get(), slot.log_tail, kLogTail * 4)) slot.log.reset();
    }
    if (fds[0].revents != 0) {
      char buf[65536];
      ssize_t got = recv(slot.ctrl.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (got > 0) slot.inbox.append(buf, got);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) ctrl_open = false;
    }
  }
  if (!internal::HelloPid(slot.hello))
    return Diagnose(slot, "the sandbox's Python sent no valid hello");
  return Status::Ok();
}

Status SandboxImpl::Clone(Slot& from, Slot& to) {
  Stop(to);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return InternalError(ErrnoText("socketpair"));
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);
  RETURN_IF_ERROR(SendMessage(from.ctrl.get(), R"({"type":"clone"})", {theirs.get()}));
  theirs.reset();
  to.ctrl = std::move(ours);
  to.cloned = true;
  to.log.reset();
  to.log_tail.clear();
  to.inbox.clear();
  RETURN_IF_ERROR(AwaitHello(to, kStartTimeout));
  return Spawn(to);
}

Status SandboxImpl::Resize(int slots) {
  if (slots < 1 || slots > kMaxSlots)
    return InvalidArgumentError("slots must be between 1 and " + std::to_string(kMaxSlots));
  std::lock_guard resizing(resize_mu_);
  std::vector<std::unique_ptr<Slot>> idle_surplus;
  int have = 0;
  {
    std::lock_guard lock(mu_);
    for (const auto& slot : slots_) have += slot->retired ? 0 : 1;
    // Fewer: idle slots go now, busy ones when their job ends (Release), newest first.
    for (auto it = slots_.rbegin(); it != slots_.rend() && have > slots; ++it) {
      if ((*it)->retired) continue;
      (*it)->retired = true;
      --have;
    }
    for (auto it = slots_.begin(); it != slots_.end();) {
      if ((*it)->retired && !(*it)->busy) {
        idle_surplus.push_back(std::move(*it));
        it = slots_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& slot : idle_surplus)
    if (slot->cloned) Stop(*slot);
  idle_surplus.clear();
  if (have >= slots) return Status::Ok();
  // More: each forked from a template not busy with a job, held meanwhile like a job's slot
  // (so only this thread touches its descriptors); a fresh start when none answers.
  std::vector<std::unique_ptr<Slot>> fresh;
  Slot* from = Acquire(SteadyClock::now() + kCloneWait);
  Status status = Status::Ok();
  for (int i = have; i < slots && status.ok(); ++i) {
    auto slot = std::make_unique<Slot>();
    Status cloned = from != nullptr && Alive(*from) ? Clone(*from, *slot)
                                                    : FailedPreconditionError("no template");
    if (!cloned.ok()) {
      slot->cloned = false;
      status = Start(*slot);
    }
    if (status.ok()) fresh.push_back(std::move(slot));
  }
  if (from != nullptr) Release(*from);
  {
    std::lock_guard lock(mu_);
    for (auto& slot : fresh) slots_.push_back(std::move(slot));
  }
  free_.notify_all();
  return status;
}

Status SandboxImpl::Spawn(Slot& slot) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return InternalError(ErrnoText("socketpair"));
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);
  timeval send_timeout{kSendTimeout.count() / 1000, 0};
  setsockopt(ours.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
  uint64_t id = slot.next_job_id++;
  nlohmann::json spawn = {{"type", "spawn"}, {"id", id}};
  RETURN_IF_ERROR(SendMessage(slot.ctrl.get(), spawn.dump(), {theirs.get()}));
  slot.spare = std::move(ours);
  slot.spare_id = id;
  return Status::Ok();
}

Status SandboxImpl::Diagnose(Slot& slot, const std::string& what) {
  if (slot.log.valid()) Drain(slot.log.get(), slot.log_tail, kLogTail * 4);
  Stop(slot);
  const std::string& log = slot.log_tail;
  std::string detail = log.empty() ? "" : ": " + log.substr(0, 1000);
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
  if (log.find("No module named 'pandas'") != std::string::npos ||
      log.find("No module named 'numpy'") != std::string::npos)
    return FailedPreconditionError(options_.python +
                                   " lacks pandas or numpy: apt-get install python3-pandas "
                                   "python3-numpy" +
                                   detail);
  if (log.find("bwrap: Can't find source path") != std::string::npos &&
      log.find("Permission denied") != std::string::npos)
    return FailedPreconditionError(
        "the sandbox's uid 65534 can't reach the environment " + options_.env_root +
        " (every directory above it must be searchable by others)" + detail);
  if (log.find("bwrap:") != std::string::npos)
    return FailedPreconditionError(
        "bubblewrap could not set up the sandbox (are user namespaces enabled? sysctl "
        "kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)" +
        detail);
  return FailedPreconditionError(what + detail);
}

void SandboxImpl::Stop(Slot& slot) {
  slot.ctrl.reset();  // the template exits when its socket closes
  slot.spare.reset();
  slot.spare_id = 0;
  slot.bwrap.KillAndWait();
  slot.cloned = false;
}

bool SandboxImpl::Alive(Slot& slot) {
  if (!slot.ctrl.valid()) return false;
  // A clone's template has no process of ours to wait for: its socket closes when it ends.
  if (!slot.cloned && (!slot.bwrap.running() || slot.bwrap.TryWait().has_value())) return false;
  if (slot.log.valid() && !Drain(slot.log.get(), slot.log_tail, kLogTail * 4)) slot.log.reset();
  KeepTail(slot.log_tail);
  // Between jobs the template sends only `exited` for the job before.
  return ReadCtrl(slot, 0, nullptr);
}

// Reads what the template has sent: `exited` of job `id` goes to `exited`, that of earlier jobs
// is dropped. False when the template is gone or broke the protocol.
bool SandboxImpl::ReadCtrl(Slot& slot, uint64_t id, std::optional<nlohmann::json>* exited) {
  while (true) {
    char buf[4096];
    ssize_t got = recv(slot.ctrl.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (got > 0) {
      slot.inbox.append(buf, static_cast<size_t>(got));
      continue;
    }
    if (got == 0 || (errno != EAGAIN && errno != EINTR)) return false;
    if (errno == EAGAIN) break;
  }
  while (true) {
    auto message = internal::PopMessage(slot.inbox);
    if (!message.ok()) return false;
    if (!message->has_value()) return true;
    std::optional<uint64_t> of = internal::ExitedJob(**message);
    if (!of) return false;
    if (*of == id && exited != nullptr) *exited = std::move(**message);
  }
}

Result<JobResult> SandboxImpl::Run(const JobSpec& spec, const std::string& result_path,
                                   const std::atomic<bool>* cancel) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  ASSIGN_OR_RETURN(std::vector<UniqueFd> inputs, OpenInputs(spec));
  nlohmann::json input_specs = nlohmann::json::array();
  for (const Input& in : spec.inputs) {
    input_specs.push_back({{"name", in.name}, {"format", in.format}});
    if (!in.meta.empty()) input_specs.back()["meta"] = nlohmann::json::parse(in.meta);
  }
  const Limits& l = spec.limits;
  nlohmann::json job = {{"type", "job"},
                        {"source", spec.source},
                        {"function", spec.function_name},
                        {"function_line", spec.function_line},
                        {"inputs", std::move(input_specs)},
                        {"constants", spec.constants},
                        {"limits",
                         {{"memory_bytes", l.memory_bytes},
                          {"cpu_seconds", l.cpu_seconds},
                          {"open_files", l.max_open_files},
                          {"file_bytes", l.memory_bytes},
                          {"max_result_bytes", l.max_result_bytes}}}};
  if (!spec.policy.is_null()) job["policy"] = spec.policy;
  if (!spec.endpoint.is_null()) job["endpoint"] = spec.endpoint;
  if (!spec.endpoints.empty()) {
    nlohmann::json bound = nlohmann::json::array();
    for (const EndpointArg& e : spec.endpoints)
      bound.push_back({{"name", e.name}, {"path", e.path}, {"params", e.params}});
    job["endpoints"] = std::move(bound);
  }
  std::string body;
  try {
    body = job.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    return InvalidArgumentError("the source or a constant is not valid UTF-8");
  }
  if (body.size() > kMaxJobMessage)
    return InvalidArgumentError("the job's source and constants are over 64 MiB");
  UniqueFd result(open(result_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (!result.valid()) return InvalidArgumentError(ErrnoText("result file " + result_path));

  Slot* free = Acquire(spec.finish_by);
  if (free == nullptr)
    return Status(StatusCode::kDeadlineExceeded, "no sandbox slot came free in time");
  Slot& slot = *free;
  // A job that must end by a time runs for what is left of it once it has its slot.
  JobSpec bounded;
  const JobSpec* run = &spec;
  if (spec.finish_by != SteadyClock::time_point{}) {
    const auto left = std::chrono::duration_cast<milliseconds>(spec.finish_by - SteadyClock::now());
    if (left.count() <= 0) {
      Release(slot);
      return Status(StatusCode::kDeadlineExceeded, "no time was left to run the job");
    }
    if (left < spec.limits.wall_timeout) {
      bounded = spec;
      bounded.limits.wall_timeout = left;
      run = &bounded;
    }
  }
  struct Lease {
    SandboxImpl* self;
    Slot* slot;
    ~Lease() { self->Release(*slot); }
  } lease{this, &slot};

  for (int attempt = 1;; ++attempt) {
    if (!Alive(slot)) {
      Status started = Start(slot);
      if (!started.ok())
        return UnavailableError("the sandbox is down and could not be restarted: " +
                                started.message());
    }
    if (attempt > 1) {
      ASSIGN_OR_RETURN(inputs, OpenInputs(spec));
    }
    if (!slot.spare.valid() && !Spawn(slot).ok()) {
      Stop(slot);
      if (attempt == 1) continue;
      return UnavailableError("the sandbox's template process is gone");
    }
    bool untouched = false;
    bool code_started = false;
    JobResult out =
        RunOnSlot(slot, *run, body, inputs, result.get(), cancel, &untouched, &code_started);
    out.started = code_started;
    // A template or spare that died before the job got going (killed from outside between jobs)
    // is replaced and the job sent once more.
    if (untouched && attempt == 1) continue;
    if (out.outcome != Outcome::kOk && ftruncate(result.get(), 0) != 0) {
      // The result is unusable either way; the caller ignores the file on any other outcome.
    }
    // The next job's child was spawned while this one ran (RunOnSlot); a slot that lost it, or
    // its template, starts again.
    if (!Alive(slot) || (!slot.spare.valid() && !Spawn(slot).ok())) {
      Status restarted = Start(slot);  // so the next job finds a template and a spare
      (void)restarted;                 // a failure is retried, and reported, by the next Run()
    }
    return out;
  }
}

Result<std::vector<UniqueFd>> OpenInputs(const JobSpec& spec) {
  std::vector<UniqueFd> inputs;
  for (const Input& in : spec.inputs) {
    UniqueFd fd(open(in.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
      if (errno == ENOENT) return NotFoundError("input '" + in.name + "': no file " + in.path);
      return InvalidArgumentError(ErrnoText("input '" + in.name + "': " + in.path));
    }
    struct stat st {};
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
      return InvalidArgumentError("input '" + in.name + "': " + in.path + " is not a regular file");
    inputs.push_back(std::move(fd));
  }
  return inputs;
}

JobResult SandboxImpl::RunOnSlot(Slot& slot, const JobSpec& spec, const std::string& body,
                                 std::vector<UniqueFd>& inputs, int result_fd,
                                 const std::atomic<bool>* cancel, bool* untouched,
                                 bool* code_started) {
  const Limits& limits = spec.limits;
  JobResult out;
  auto failure = [&out](std::string error) {
    out.outcome = Outcome::kSandboxFailure;
    out.error = std::move(error);
    return out;
  };
  const uint64_t id = slot.spare_id;
  UniqueFd channel = std::move(slot.spare);
  slot.spare_id = 0;
  auto out_pipe = MakePipe();
  auto err_pipe = MakePipe();
  auto res_pipe = MakePipe();
  if (!out_pipe.ok() || !err_pipe.ok() || !res_pipe.ok()) return failure("out of pipes");
  fcntl(res_pipe->read.get(), F_SETPIPE_SZ, 1 << 20);  // fewer wake-ups for big results; may fail
  // Room for what the job prints while the host hands a chunk to spec.on_stdout; may fail.
  if (spec.on_stdout) fcntl(out_pipe->read.get(), F_SETPIPE_SZ, 1 << 18);

  std::vector<int> fds = {out_pipe->write.get(), err_pipe->write.get(), res_pipe->write.get()};
  for (const UniqueFd& fd : inputs) fds.push_back(fd.get());
  // Straight to the child: the template never holds a byte of the job.
  Status sent = SendMessage(channel.get(), body, fds);
  out_pipe->write.reset();
  err_pipe->write.reset();
  res_pipe->write.reset();
  inputs.clear();
  fcntl(channel.get(), F_SETFL, O_NONBLOCK);
  // The next job's child is forked while this one runs. (A failure to ask is found by Run().)
  if (sent.ok()) (void)Spawn(slot);

  enum { kCtrl, kLog, kChannel, kOut, kErr, kRes, kCount };
  int fd_of[kCount] = {slot.ctrl.get(),      slot.log.get(),       channel.get(),
                       out_pipe->read.get(), err_pipe->read.get(), res_pipe->read.get()};
  bool open[kCount] = {true, slot.log.valid(), true, true, true, true};
  std::string channel_inbox;
  // Descriptors received with the job's messages, not yet taken, each with the channel offset at
  // which the bytes it came with end (a read stops after such bytes, so the message it came with
  // is the one that ends there or earlier: a message ending before it is not carrying it).
  std::deque<std::pair<UniqueFd, uint64_t>> channel_fds;
  uint64_t channel_received = 0;
  bool started = false;
  std::optional<JobResult> reported;  // the child's `done`, validated
  std::optional<nlohmann::json> exited;
  std::optional<Outcome> kill_reason;
  uint64_t result_written = 0;
  uint64_t stdout_total = 0, stderr_total = 0;
  // A log handed to its JobSpec callback while the job runs (see JobSpec::on_stdout).
  struct LiveLog {
    const std::function<void(std::string_view)>& sink;
    const std::string& text;
    size_t streamed = 0;               // bytes of `text` given to `sink`
    SteadyClock::time_point due = {};  // when the bytes not yet given are due; unset: none wait
  };
  LiveLog live_logs[] = {{spec.on_stdout, out.stdout_text}, {spec.on_stderr, out.stderr_text}};
  // Hands what gathered to the callbacks when it is due.
  auto stream_logs = [&](SteadyClock::time_point now) {
    for (LiveLog& log : live_logs) {
      if (!log.sink || log.text.size() == log.streamed) continue;
      if (log.due == SteadyClock::time_point{}) log.due = now + spec.stdout_interval;
      if (now < log.due && log.text.size() - log.streamed < spec.stdout_chunk_bytes) continue;
      log.sink(std::string_view(log.text).substr(log.streamed));
      log.streamed = log.text.size();
      log.due = {};
    }
  };
  std::string write_error;
  // The wall clock of the job starts when its code does (`started`); until then the child has
  // kSendTimeout to take the job.
  auto deadline = SteadyClock::now() + kSendTimeout;
  SteadyClock::time_point give_up{};  // after a kill, or after the report while pipes drain
  bool warm_lost = false;

  bool kill_sent = false;
  auto send_kill = [&]() {
    if (kill_sent) return;
    kill_sent = true;
    nlohmann::json kill = {{"type", "kill"}, {"id", id}};
    if (!SendMessage(slot.ctrl.get(), kill.dump()).ok()) warm_lost = true;
  };
  auto request_kill = [&](Outcome reason) {
    if (kill_reason) return;
    kill_reason = reason;
    send_kill();
    give_up = SteadyClock::now() + kKillGrace;
  };
  // After a well-formed report the runner has closed its pipes and exits by itself; a child whose
  // pipes are still open this long after its report is killed. (Every child is sent `kill` once
  // its job is over, so none runs on beside the next job.)
  SteadyClock::time_point kill_after{};
  // Answers one endpoint call of the job's (JobSpec::on_call) while the job waits for it: what the
  // call printed joins the job's logs, its result goes over as a descriptor.
  int calls = 0;
  auto answer_call = [&](EndpointCall& call) {
    if (kill_reason || reported) return;  // a job being stopped gets no more answers
    EndpointAnswer answer;
    call.time_left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    if (call.time_left.count() <= 0) {
      answer.error = "the job's wall-clock time is up";
    } else if (++calls > kMaxEndpointCalls) {
      answer.error =
          "a job may make at most " + std::to_string(kMaxEndpointCalls) + " endpoint calls";
    } else {
      answer = spec.on_call(call);
    }
    auto append = [&limits](std::string& log, const std::string& more, uint64_t& total) {
      total += more.size();
      if (log.size() >= limits.max_log_bytes) return;
      log += CutUtf8(more, limits.max_log_bytes - log.size());
    };
    // What the job printed before the call (it flushed before asking) comes first.
    if (open[kOut])
      open[kOut] = Drain(fd_of[kOut], out.stdout_text, limits.max_log_bytes, &stdout_total);
    if (open[kErr])
      open[kErr] = Drain(fd_of[kErr], out.stderr_text, limits.max_log_bytes, &stderr_total);
    append(out.stdout_text, answer.stdout_text, stdout_total);
    append(out.stderr_text, answer.stderr_text, stderr_total);
    nlohmann::json reply = {{"type", "answer"}};
    std::vector<int> fds;
    if (answer.stop_job) {
      request_kill(Outcome::kKilled);  // unanswered: the job gets nothing more
      return;
    }
    if (!answer.error.empty() || !answer.result.valid()) {
      reply["error"] = answer.error.empty() ? "the call gave no result" : answer.error;
    } else {
      reply["format"] = answer.format;
      if (!answer.meta.empty()) {
        reply["meta"] = nlohmann::json::parse(answer.meta, nullptr, false);
        if (reply["meta"].is_discarded()) reply.erase("meta");
      }
      lseek(answer.result.get(), 0, SEEK_SET);
      fds.push_back(answer.result.get());
    }
    // The runner waits for this answer with nothing else in flight, so it fits the socket's
    // buffer at once: a job that leaves answers unread (calls written ahead, never read) fills it,
    // and is a malformed report, not a host blocked on it (the channel stays non-blocking).
    Status sent = SendMessage(
        channel.get(), reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), fds);
    if (!sent.ok()) {
      reported = internal::MalformedReport();
      give_up = SteadyClock::now() + kKillGrace;
      send_kill();
    }
  };
  // Answers one request of the job's for a TCP connection (JobSpec::on_connect), which came with
  // the job's end of it: ok, or why not.
  int connects = 0;
  auto answer_connect = [&](ConnectRequest& request) {
    if (kill_reason || reported) return;
    request.time_left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
    nlohmann::json reply = {{"type", "answer"}};
    int type = 0;
    socklen_t size = sizeof type;
    if (request.time_left.count() <= 0) {
      reply["error"] = "the job's wall-clock time is up";
    } else if (++connects > kMaxConnects) {
      reply["error"] = "a job may open at most " + std::to_string(kMaxConnects) + " connections";
    } else if (getsockopt(request.socket.get(), SOL_SOCKET, SO_DOMAIN, &type, &size) != 0 ||
               type != AF_UNIX ||
               getsockopt(request.socket.get(), SOL_SOCKET, SO_TYPE, &type, &size) != 0 ||
               type != SOCK_STREAM) {
      reply["error"] = "a connection's end must be a Unix stream socket";
    } else if (Status st = spec.on_connect(request); !st.ok()) {
      reply["error"] = st.message();
    }
    Status sent = SendMessage(channel.get(),
                              reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!sent.ok()) {  // as for a call's answer: a job that does not read them is malformed
      reported = internal::MalformedReport();
      give_up = SteadyClock::now() + kKillGrace;
      send_kill();
    }
  };
  // Takes the child's messages off its channel: at most `started`, then one `done`. Anything else,
  // or anything after `done`, makes the report malformed; the child is then killed.
  auto read_channel = [&]() {
    char buf[16384];
    while (open[kChannel]) {
      // A connect request carries the job's end of its connection (SCM_RIGHTS); a read stops
      // after the bytes that came with descriptors, which queue in order for the requests.
      iovec iov{buf, sizeof buf};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t got = recvmsg(channel.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && errno == EAGAIN) break;
      if (got <= 0) {
        open[kChannel] = false;
        break;
      }
      channel_received += static_cast<uint64_t>(got);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; ++i) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          channel_fds.emplace_back(UniqueFd(fd), channel_received);
        }
      }
      if (reported) continue;  // the child is being killed; what follows is dropped
      if ((msg.msg_flags & MSG_CTRUNC) || channel_fds.size() > 4) {
        reported = internal::MalformedReport();  // descriptors no request asked to send
        give_up = SteadyClock::now() + kKillGrace;
        send_kill();
        continue;
      }
      channel_inbox.append(buf, static_cast<size_t>(got));
      while (!reported) {
        auto message = internal::PopMessage(channel_inbox);
        if (message.ok() && !message->has_value()) break;
        // Descriptors come only with connect requests (one each), and only to a job given
        // on_connect: with any other message they make it malformed.
        const uint64_t message_end = channel_received - channel_inbox.size();
        const bool carries_fd = !channel_fds.empty() && channel_fds.front().second <= message_end;
        if (message.ok() && carries_fd &&
            !(started && spec.on_connect && internal::DecodeConnect(**message)))
          message = InternalError("descriptors with a message that takes none");
        if (message.ok() && !started && internal::IsStarted(**message)) {
          started = true;
          deadline = SteadyClock::now() + limits.wall_timeout;
          continue;
        }
        if (message.ok() && started && spec.on_call) {
          if (std::optional<EndpointCall> call = internal::DecodeCall(**message)) {
            answer_call(*call);
            continue;
          }
        }
        if (message.ok() && started && spec.on_connect && carries_fd) {
          if (std::optional<ConnectRequest> request = internal::DecodeConnect(**message)) {
            request->socket = std::move(channel_fds.front().first);
            channel_fds.pop_front();
            answer_connect(*request);
            continue;
          }
        }
        const bool malformed = !message.ok();
        reported = malformed ? internal::MalformedReport()
                             : internal::DecodeReport(**message, limits, started);
        give_up = SteadyClock::now() + kKillGrace;
        if (malformed || reported->error == internal::MalformedReport().error) {
          send_kill();  // a job that forges reports has no more to do
        } else {
          kill_after = SteadyClock::now() + kPollInterval * 5;
        }
      }
    }
  };

  if (!sent.ok()) {
    read_channel();  // a child that could not set itself up said why before it ended
    if (!reported) warm_lost = true;
  }

  while (!warm_lost) {
    const bool pipes_open = open[kOut] || open[kErr] || open[kRes];
    if ((reported || exited || kill_reason) && !pipes_open) break;
    auto now = SteadyClock::now();
    stream_logs(now);
    if (!kill_reason && !reported && !exited) {
      if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
        request_kill(Outcome::kKilled);
      } else if (now >= deadline) {
        request_kill(started ? Outcome::kTimeout : Outcome::kSandboxFailure);
        if (!started) write_error = "the sandbox's child did not take the job";
      }
    }
    if (kill_after != SteadyClock::time_point{} && now >= kill_after) send_kill();
    if (give_up != SteadyClock::time_point{} && now >= give_up) {
      if (!exited) warm_lost = true;  // a child that does not die: restart the template
      break;
    }
    milliseconds wait = kPollInterval;
    if (cancel == nullptr && !kill_reason && !reported)
      wait = std::max(milliseconds(1),
                      std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1));
    if (give_up != SteadyClock::time_point{})
      wait =
          std::min(wait, std::chrono::duration_cast<milliseconds>(give_up - now) + milliseconds(1));
    if (kill_after != SteadyClock::time_point{} && !kill_sent)
      wait = std::min(wait,
                      std::chrono::duration_cast<milliseconds>(kill_after - now) + milliseconds(1));
    for (const LiveLog& log : live_logs) {
      if (log.due == SteadyClock::time_point{}) continue;
      wait = std::min(
          wait, std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(log.due - now) +
                                              milliseconds(1)));
    }
    pollfd pfds[kCount];
    for (int i = 0; i < kCount; ++i) pfds[i] = {open[i] ? fd_of[i] : -1, POLLIN, 0};
    int n = poll(pfds, kCount, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (n < 0 && errno != EINTR) return failure(ErrnoText("poll"));
    if (n <= 0) continue;
    if (pfds[kLog].revents != 0) {
      if (!Drain(fd_of[kLog], slot.log_tail, kLogTail * 4)) open[kLog] = false;
      KeepTail(slot.log_tail);
    }
    if (pfds[kOut].revents != 0) {
      open[kOut] = Drain(fd_of[kOut], out.stdout_text, limits.max_log_bytes, &stdout_total);
      stream_logs(SteadyClock::now());
    }
    if (pfds[kErr].revents != 0) {
      open[kErr] = Drain(fd_of[kErr], out.stderr_text, limits.max_log_bytes, &stderr_total);
      stream_logs(SteadyClock::now());
    }
    if (pfds[kRes].revents != 0) {
      char buf[65536];
      while (true) {
        ssize_t got = read(fd_of[kRes], buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) break;
        if (got <= 0) {
          open[kRes] = false;
          break;
        }
        if (result_written + static_cast<uint64_t>(got) > limits.max_result_bytes) {
          request_kill(Outcome::kResourceLimit);
          open[kRes] = false;  // stop reading; the killed child's pipe end closes anyway
          break;
        }
        if (write_error.empty()) {
          Status w = WriteAll(result_fd, buf, static_cast<size_t>(got));
          if (!w.ok()) {
            write_error = w.message();
            request_kill(Outcome::kSandboxFailure);
          }
        }
        result_written += static_cast<uint64_t>(got);
      }
    }
    if (pfds[kChannel].revents != 0) read_channel();
    if (pfds[kCtrl].revents != 0) {
      if (!ReadCtrl(slot, id, &exited)) warm_lost = true;
      // A report written just before the child ended is in the channel already.
      if (exited) read_channel();
    }
  }
  if (warm_lost) {
    Stop(slot);
  } else if (!exited) {
    // A child has nothing left to do after its report, and normally is exiting already; one that
    // runs on (a forged report) must not run beside the next job for long.
    send_kill();
  }
  *code_started = started;
  *untouched = warm_lost && !started && !reported && !kill_reason && stdout_total == 0 &&
               stderr_total == 0 && result_written == 0;

  if (kill_reason == Outcome::kTimeout) {
    out.outcome = Outcome::kTimeout;
    out.error = "wall-clock timeout of " + Seconds(limits.wall_timeout);
    return out;
  }
  if (kill_reason == Outcome::kKilled) {
    out.outcome = Outcome::kKilled;
    out.error = "cancelled";
    return out;
  }
  if (kill_reason == Outcome::kResourceLimit) {
    out.outcome = Outcome::kResourceLimit;
    out.error = "the result is larger than the limit of " + MiB(limits.max_result_bytes);
    return out;
  }
  if (kill_reason == Outcome::kSandboxFailure)
    return failure(started ? "writing the result failed: " + write_error : write_error);
  JobResult decoded;
  if (reported) {
    decoded = std::move(*reported);
    const uint64_t meta_bytes = decoded.result_meta.size();  // the claimed size, see DecodeReport
    if (decoded.outcome == Outcome::kOk && decoded.result_bytes + meta_bytes != result_written) {
      decoded = JobResult{};
      decoded.outcome = Outcome::kError;
      decoded.error = "the result was garbled (the function wrote to the sandbox's result pipe)";
    } else if (decoded.outcome == Outcome::kOk && meta_bytes > 0) {
      // The sidecar follows the result's bytes: take it off the end of the file.
      ssize_t got = pread(result_fd, decoded.result_meta.data(), meta_bytes,
                          static_cast<off_t>(decoded.result_bytes));
      if (got != static_cast<ssize_t>(meta_bytes) ||
          ftruncate(result_fd, static_cast<off_t>(decoded.result_bytes)) != 0)
        return failure(ErrnoText("reading the result's sidecar"));
    }
  } else if (exited) {
    decoded = internal::DecodeExit(*exited, limits);
  } else {
    return failure(warm_lost ? "the sandbox's template process died during the job; it is restarted"
                             : "the sandbox's child did not report the job's end");
  }
  decoded.stdout_text = std::move(out.stdout_text);
  decoded.stderr_text = std::move(out.stderr_text);
  return decoded;
}

}  // namespace

Result<std::unique_ptr<Sandbox>> StartSandbox(const Options& options) {
  if (options.slots < 1 || options.slots > kMaxSlots)
    return InvalidArgumentError("slots must be between 1 and " + std::to_string(kMaxSlots));
  for (const std::string& module : options.preload) {
    bool ok = !module.empty();
    for (size_t at = 0; ok && at <= module.size();) {
      size_t dot = std::min(module.find('.', at), module.size());
      ok = IsIdentifier(module.substr(at, dot - at));
      at = dot + 1;
    }
    if (!ok) return InvalidArgumentError("'" + module + "' is not a module name");
  }
  const std::string& root = options.env_root;
  for (const char* hidden : {"/tmp", "/proc", "/dev", "/sys"}) {
    // Each of these is the sandbox's own: an environment there would be hidden by it.
    const std::string h = hidden;
    if (root == h || root.rfind(h + "/", 0) == 0)
      return InvalidArgumentError("an environment can't be under " + h +
                                  " (the sandbox mounts its own there): " + root);
  }
  if (!root.empty()) {
    if (root[0] != '/' || root == "/" || root.back() == '/' ||
        root.find("/../") != std::string::npos || root.find("/./") != std::string::npos ||
        root.find("//") != std::string::npos || root.ends_with("/..") || root.ends_with("/.") ||
        root.find(',') != std::string::npos)
      return InvalidArgumentError(
          "the environment must be an absolute, normalised directory, not '" + root + "'");
    struct stat st;
    if (stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return FailedPreconditionError("the environment '" + root + "' is no directory");
  }
  const bool in_env = !root.empty() && options.python.rfind(root + "/", 0) == 0 &&
                      options.python.find("/../") == std::string::npos;
  std::string bwrap = FindBubblewrap();
  if (bwrap.empty())
    return FailedPreconditionError("bubblewrap is not installed: apt-get install bubblewrap");
  if (!in_env &&
      (options.python.rfind("/usr/", 0) != 0 || options.python.find("/../") != std::string::npos))
    return FailedPreconditionError(
        "python must be an interpreter under /usr (the only tree the "
        "sandbox shows), got '" +
        options.python + "'");
  if (access(options.python.c_str(), X_OK) != 0)
    return FailedPreconditionError("no python at " + options.python +
                                   ": apt-get install python3 python3-pandas python3-numpy");
  if (access("/proc/self/ns/user", F_OK) != 0)
    return FailedPreconditionError("this kernel has no user namespaces, which bubblewrap needs");
  ASSIGN_OR_RETURN(std::string warm_filter, WarmFilterBpf());
  auto sandbox = std::make_unique<SandboxImpl>(options, std::move(bwrap), std::move(warm_filter));
  RETURN_IF_ERROR(sandbox->StartAll());
  return std::unique_ptr<Sandbox>(std::move(sandbox));
}

namespace internal {

Result<std::optional<nlohmann::json>> PopMessage(std::string& buffer) {
  if (buffer.size() < 4) return std::optional<nlohmann::json>();
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i)
    n |= static_cast<uint32_t>(static_cast<unsigned char>(buffer[i])) << (8 * i);
  if (n > kMaxMessageFromSandbox) return InternalError("the sandbox sent an oversized message");
  if (buffer.size() < 4 + size_t{n}) return std::optional<nlohmann::json>();
  nlohmann::json message =
      nlohmann::json::parse(buffer.begin() + 4, buffer.begin() + 4 + n, nullptr,
                            /*allow_exceptions=*/false);
  buffer.erase(0, 4 + size_t{n});
  if (!message.is_object()) return InternalError("the sandbox sent a malformed message");
  return std::optional<nlohmann::json>(std::move(message));
}

namespace {

// The string `message[key]`; empty when there is none or it is no string. (json::value() throws
// on a key of another type, and the sandbox chooses the types.)
std::string StringField(const nlohmann::json& message, const char* key) {
  auto it = message.find(key);
  return it != message.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::optional<int> HelloPid(const nlohmann::json& hello) {
  if (StringField(hello, "type") != "hello" || !hello.contains("pid") ||
      !hello["pid"].is_number_integer())
    return std::nullopt;
  return hello["pid"].get<int>();
}

std::optional<uint64_t> ExitedJob(const nlohmann::json& m) {
  if (StringField(m, "type") != "exited") return std::nullopt;
  auto id = m.find("id");
  if (id == m.end() || !id->is_number_unsigned()) return std::nullopt;
  return id->get<uint64_t>();
}

bool IsStarted(const nlohmann::json& m) {
  return m.is_object() && m.size() == 1 && StringField(m, "type") == "started";
}

namespace {

// Whether `j` nests arrays and objects more than `max` deep, found without recursion (a job's
// message of 64 KiB can nest 32,000 deep; copying or printing it recurses once per level).
bool NestedDeeperThan(const nlohmann::json& j, int max) {
  std::vector<std::pair<const nlohmann::json*, int>> stack = {{&j, 0}};
  while (!stack.empty()) {
    auto [v, depth] = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (depth + 1 > max) return true;
    for (const auto& child : *v) stack.push_back({&child, depth + 1});
  }
  return false;
}

}  // namespace

std::optional<EndpointCall> DecodeCall(const nlohmann::json& m) {
  if (!m.is_object() || m.size() != 4 || StringField(m, "type") != "call") return std::nullopt;
  auto path = m.find("endpoint");
  auto side = m.find("side");
  auto kwargs = m.find("kwargs");
  if (path == m.end() || !path->is_string() || path->get_ref<const std::string&>().empty() ||
      path->get_ref<const std::string&>().size() > 200 || side == m.end() || !side->is_string() ||
      kwargs == m.end() || !kwargs->is_object())
    return std::nullopt;
  if (NestedDeeperThan(*kwargs, kMaxCallDepth)) return std::nullopt;
  EndpointCall call{*path, *side, *kwargs};
  if (call.side != "auto" && call.side != "mock" && call.side != "private") return std::nullopt;
  return call;
}

std::optional<ConnectRequest> DecodeConnect(const nlohmann::json& m) {
  if (!m.is_object() || m.size() != 3 || StringField(m, "type") != "connect") return std::nullopt;
  auto host = m.find("host");
  auto port = m.find("port");
  if (host == m.end() || !host->is_string() || port == m.end() || !port->is_number_integer())
    return std::nullopt;
  const std::string& name = host->get_ref<const std::string&>();
  const int64_t number = port->get<int64_t>();
  if (name.empty() || name.size() > 255 || number < 1 || number > 65535) return std::nullopt;
  return ConnectRequest{name, number};
}

JobResult MalformedReport() {
  JobResult out;
  out.outcome = Outcome::kError;
  out.error =
      "the job sent a malformed report (the channel back to the server carries only the "
      "runner's own status)";
  return out;
}

namespace {

// Whether `m` has exactly the keys `keys` ("type" and "status" included).
bool HasExactly(const nlohmann::json& m, std::initializer_list<const char*> keys) {
  if (m.size() != keys.size()) return false;
  for (const char* key : keys)
    if (!m.contains(key)) return false;
  return true;
}

// The string at `key` when it is one of at most `max` bytes (nlohmann rejects invalid UTF-8 while
// parsing, so it is valid).
std::optional<std::string> BoundedString(const nlohmann::json& m, const char* key, size_t max) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_string()) return std::nullopt;
  const std::string& s = it->get_ref<const std::string&>();
  if (s.size() > max) return std::nullopt;
  return s;
}

// `s` (valid UTF-8) with control characters — C0, DEL and C1, terminal escapes among them —
// written as \xNN or \u00NN, so that an error line shows on a terminal or a page as the text it is.
std::string Printable(const std::string& s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      auto d = static_cast<unsigned char>(s[++i]);
      out += "\\u00";
      out += kHex[d >> 4];
      out += kHex[d & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::optional<uint64_t> Unsigned(const nlohmann::json& m, const char* key) {
  auto it = m.find(key);
  if (it == m.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<uint64_t>();
}

}  // namespace

// What a job's `done` report means. Every field is checked: its keys exactly, their types and
// sizes; anything else is a malformed report, an error of that job. After `started`, the job's own
// code has run in the process that reports, so a claimed sandbox failure is not believed.
JobResult DecodeReport(const nlohmann::json& d, const Limits& limits, bool started) {
  constexpr size_t kMaxErrorBytes = 16 << 10;
  JobResult out;
  if (!d.is_object() || StringField(d, "type") != "done") return MalformedReport();
  const std::string status = StringField(d, "status");
  // Custom policies' state rides on `ok` and on a policy's refusal: a JSON object, small.
  std::string policy_state;
  if (d.contains("policy_state") && (status == "ok" || status == "policy")) {
    const nlohmann::json& state = d["policy_state"];
    if (!state.is_object()) return MalformedReport();
    policy_state = state.dump();
    if (policy_state.size() > kMaxPolicyStateBytes) return MalformedReport();
    nlohmann::json rest = d;
    rest.erase("policy_state");
    JobResult decoded = DecodeReport(rest, limits, started);
    if (decoded.outcome == Outcome::kOk || decoded.outcome == Outcome::kPolicy) {
      decoded.policy_state = std::move(policy_state);
    }
    return decoded;
  }
  if (status == "policy") {
    const std::string refused = StringField(d, "refused");
    std::optional<std::string> error = BoundedString(d, "error", kMaxErrorBytes);
    if (!HasExactly(d, {"type", "status", "refused", "error"}) || !error || !started ||
        (refused != "input" && refused != "output" && refused != "error"))
      return MalformedReport();
    out.outcome = Outcome::kPolicy;
    out.policy_refusal = refused;
    out.error = CutUtf8(Printable(*error), 2000);
    if (out.error.empty()) out.error = "a custom policy refused the run";
    return out;
  }
  if (status == "ok") {
    std::string format = StringField(d, "format");
    std::optional<uint64_t> bytes = Unsigned(d, "bytes");
    // A CSV result may be followed in the pipe by its sidecar, of `meta_bytes`.
    std::optional<uint64_t> meta_bytes = Unsigned(d, "meta_bytes");
    const bool plain = HasExactly(d, {"type", "status", "format", "bytes"});
    const bool with_meta = HasExactly(d, {"type", "status", "format", "bytes", "meta_bytes"}) &&
                           format == "csv" && meta_bytes && *meta_bytes > 0 &&
                           *meta_bytes <= kMaxResultMetaBytes;
    if ((!plain && !with_meta) || !bytes || *bytes > limits.max_result_bytes ||
        (format != "json" && format != "csv" && format != "npy" && format != "bytes"))
      return MalformedReport();
    out.outcome = Outcome::kOk;
    out.result_format = format;
    out.result_bytes = *bytes;
    if (with_meta) out.result_meta.assign(*meta_bytes, '\0');  // filled from the pipe by Run
    return out;
  }
  if (status == "error") {
    std::optional<std::string> error = BoundedString(d, "error", kMaxErrorBytes);
    if (!HasExactly(d, {"type", "status", "error"}) || !error) return MalformedReport();
    out.outcome = Outcome::kError;
    out.error = CutUtf8(Printable(*error), 2000);
    if (out.error.empty()) out.error = "the function failed";
    return out;
  }
  if (status == "memory") {
    if (!HasExactly(d, {"type", "status"})) return MalformedReport();
    out.outcome = Outcome::kResourceLimit;
    out.error = "memory limit of " + MiB(limits.memory_bytes) + " reached";
    return out;
  }
  if (status == "result_limit") {
    if (!HasExactly(d, {"type", "status", "bytes"}) || !Unsigned(d, "bytes"))
      return MalformedReport();
    out.outcome = Outcome::kResourceLimit;
    out.error = "the result is larger than the limit of " + MiB(limits.max_result_bytes);
    return out;
  }
  if (status == "missing_module" && !started) {
    std::optional<std::string> module = BoundedString(d, "module", 200);
    if (!HasExactly(d, {"type", "status", "module"}) || !module || module->empty() ||
        !IsIdentifier(*module))
      return MalformedReport();
    out.outcome = Outcome::kEnvironment;
    out.missing_module = *module;
    out.error = "ModuleNotFoundError: No module named '" + *module + "'";
    return out;
  }
  if (status == "sandbox" && !started) {
    std::optional<std::string> error = BoundedString(d, "error", kMaxErrorBytes);
    if (!HasExactly(d, {"type", "status", "error"}) || !error) return MalformedReport();
    out.outcome = Outcome::kSandboxFailure;
    out.error =
        error->empty() ? "the sandbox failed without saying why" : CutUtf8(Printable(*error), 2000);
    return out;
  }
  return MalformedReport();
}

// What the template's `exited` message says of a child that ended without a report.
JobResult DecodeExit(const nlohmann::json& e, const Limits& limits) {
  JobResult out;
  const std::string memory = "memory limit of " + MiB(limits.memory_bytes) + " reached";
  const std::string cpu = "CPU time limit of " + std::to_string(limits.cpu_seconds) + " s reached";
  double cpu_used = e.contains("cpu_seconds") && e["cpu_seconds"].is_number()
                        ? e["cpu_seconds"].get<double>()
                        : 0;
  if (e.contains("signal") && e["signal"].is_number_integer()) {
    int sig = e["signal"].get<int>();
    if (sig == SIGXCPU || (sig == SIGKILL && cpu_used >= limits.cpu_seconds)) {
      out.outcome = Outcome::kResourceLimit;
      out.error = cpu;
    } else if (sig == SIGKILL) {
      out.outcome = Outcome::kResourceLimit;
      out.error = memory;
    } else if (sig == SIGSYS) {
      out.outcome = Outcome::kError;
      out.error = "the function made a forbidden system call (killed by SIGSYS)";
    } else if (sig == SIGSEGV) {
      out.outcome = Outcome::kError;
      out.error = "the function crashed (SIGSEGV): too deep a recursion, or the memory limit";
    } else {
      out.outcome = Outcome::kError;
      out.error = std::string("the function's process was killed by SIG") + SignalName(sig);
    }
    return out;
  }
  int code = e.contains("exit_code") && e["exit_code"].is_number_integer()
                 ? e["exit_code"].get<int>()
                 : -1;
  out.outcome = Outcome::kError;
  out.error = "the function's process exited (code " + std::to_string(code) + ") before returning";
  return out;
}

}  // namespace internal
}  // namespace datasite::sandbox
