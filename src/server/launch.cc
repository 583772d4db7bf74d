#include "server/launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "auth/password.h"
#include "core/local_servers.h"
#include "core/random.h"
#include "http/request_policy.h"
#include "obs/log_format.h"

namespace datasite::server {
namespace {

namespace fs = std::filesystem;

// What --reset removes: only the files a server writes, never anything else found in the directory.
// The log stays: a detached server has opened it already, and it tells what happened before the
// reset.
Status ResetDataDir(const std::string& dir) {
  std::error_code ec;
  for (const char* name : {"datasite.db", "datasite.db-wal", "datasite.db-shm",
                           "datasite.db-journal", "server.json", "blobs"}) {
    fs::remove_all(fs::path(dir) / name, ec);
    if (ec)
      return UnavailableError("cannot remove " + (fs::path(dir) / name).string() + ": " +
                              ec.message());
  }
  return Status::Ok();
}

Result<uint16_t> ParsePort(const std::string& port) {
  if (port == "auto") return static_cast<uint16_t>(0);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError("--port must be a number from 1 to 65535 or 'auto', not '" + port +
                                "'");
  }
  int p = std::stoi(port);
  if (p < 1 || p > 65535) return InvalidArgumentError("--port must be from 1 to 65535");
  return static_cast<uint16_t>(p);
}

// Sends one line to the launching parent (detached mode) and closes the pipe.
void Report(int fd, const std::string& line) {
  if (fd < 0) return;
  std::string s = line + "\n";
  ssize_t unused = ::write(fd, s.data(), s.size());
  (void)unused;
  ::close(fd);
}

// Runs the server until SIGINT/SIGTERM. `report_fd` is the detached parent's pipe, or -1.
int Serve(LaunchOptions& o, int report_fd) {
  auto fail = [&](const Status& st) {
    if (report_fd >= 0) {
      Report(report_fd, "error: " + st.message());
    } else {
      std::cerr << "error: " << st.message() << std::endl;
    }
    spdlog::error("launch failed: {}", st.message());
    return 1;
  };
  if (!InitCrypto()) return fail(InternalError("libsodium failed to initialize"));

  sigset_t signals = BlockStopSignals();
  const bool tls = !o.app.tls_cert_file.empty();
  if (tls) {
    // With TLS, SIGHUP reloads the certificate (without, it stops the server as it always did).
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }

  // A restart right after a crash may find the killed server still releasing its files.
  auto lock = DataDirLock::AcquireAfterExit(o.app.data_dir, 15000);
  if (!lock.ok() && lock.status().code() != StatusCode::kFailedPrecondition) {
    // The lock file can't even be opened (a read-only or full file system, permissions).
    return fail(UnavailableError("cannot use the data directory: " + lock.status().message()));
  }
  if (!lock.ok()) {
    auto info = FindRunningServer(o.app.data_dir);
    // Without --name (`serve`), the running server's own record names it.
    const std::string name = !o.name.empty() ? o.name : info ? info->name : "";
    std::string msg = name.empty() ? "a server is already running on " + o.app.data_dir
                                   : "a server named " + name + " is already running";
    if (info) msg += " (pid " + std::to_string(info->pid) + ", " + info->url + ")";
    if (!name.empty()) msg += "; stop it with: datasite land " + name;
    return fail(FailedPreconditionError(msg));
  }
  if (o.reset && !o.app.database.empty()) {
    return fail(InvalidArgumentError(
        "--reset wipes the data directory only, and a --database is not in it: drop and create "
        "that database yourself, then launch without --reset"));
  }
  if (o.reset) {
    Status st = ResetDataDir(o.app.data_dir);
    if (!st.ok()) return fail(st);
  }
  auto app = App::Start(o.app);
  if (!app.ok()) return fail(app.status());
  if (o.name.empty()) o.name = (*app)->name();  // kept from the database
  uint16_t port = (*app)->port();
  std::string url_host = o.host == "0.0.0.0" || o.host == "::"   ? "localhost"
                         : o.host.find(':') != std::string::npos ? "[" + o.host + "]"
                                                                 : o.host;
  RuntimeInfo info{o.name,
                   static_cast<int>(::getpid()),
                   o.host,
                   port,
                   (tls ? "https://" : "http://") + url_host + ":" + std::to_string(port),
                   o.app.data_dir};
  if (Status st = WriteRuntimeInfo(info); !st.ok()) return fail(st);
  if (Status st = RegisterDataDir(o.name, o.app.data_dir); !st.ok()) {
    spdlog::warn("list, land and --server will not find {} by name: {}", o.name, st.ToString());
  }
  std::string where = o.host + ":" + std::to_string(port);
  std::string lines = "Starting " + o.name + " server on " + where + "\n" +
                      "You have launched a development server at " +
                      (tls ? "https://" : "http://") + where +
                      ". It is intended only for local use.";
  spdlog::info("{} serving on {} with data in {}", o.name, where, o.app.data_dir);
  if (o.app.accounts.password_rules == auth::PasswordRules::kDevelopment) {
    lines +=
        "\nDev mode: short and common passwords are accepted here, with a warning; such "
        "accounts keep this server on loopback.";
  } else if (o.dev_mode) {
    spdlog::warn(
        "dev mode on {}: passwords follow the standard rules, as other machines can reach it",
        o.host);
  }
  if (report_fd >= 0) {
    Report(report_fd, "ok\n" + lines);
  } else {
    std::cout << lines << std::endl;
  }

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    if (Status st = (*app)->ReloadTls(); !st.ok()) {
      spdlog::error("SIGHUP: TLS certificate not reloaded, the old one stays: {}", st.message());
    } else {
      spdlog::info("SIGHUP: TLS certificate reloaded from {}", o.app.tls_cert_file);
    }
  }
  spdlog::info("received signal {}; shutting down", sig);
  (*app)->Stop(std::chrono::seconds(10));
  std::error_code ec;
  fs::remove(fs::path(o.app.data_dir) / "server.json", ec);
  spdlog::info("stopped");
  return 0;
}

}  // namespace

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

Result<std::string> ReadRootPasswordFile(const std::string& path, const std::string& given) {
  if (given != services::kDefaultRootPassword) {
    return InvalidArgumentError(
        "--root-password (DATASITE_ROOT_PASSWORD) and --root-password-file "
        "(DATASITE_ROOT_PASSWORD_FILE) are both given: give one");
  }
  // A regular file of a few KiB: a directory, a FIFO or /dev/zero is refused, not read forever.
  constexpr size_t kMaxBytes = 4096;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return InvalidArgumentError("--root-password-file " + path +
                                " can't be read: " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > static_cast<off_t>(kMaxBytes)) {
    ::close(fd);
    return InvalidArgumentError("--root-password-file " + path +
                                " must be a regular file of at most 4096 bytes");
  }
  std::string password(kMaxBytes, '\0');
  const ssize_t got = ::read(fd, password.data(), password.size());
  const int read_errno = errno;
  ::close(fd);
  if (got < 0) {
    return InvalidArgumentError("--root-password-file " + path +
                                " can't be read: " + std::strerror(read_errno));
  }
  password.resize(static_cast<size_t>(got));
  // An editor or `echo` ends the file with a newline that is not part of the password.
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
    password.pop_back();
  }
  if (password.empty()) return InvalidArgumentError("--root-password-file " + path + " is empty");
  return password;
}

int RunLaunch(LaunchOptions o) {
  auto fail = [](const Status& st) {
    std::cerr << "error: " << st.message() << std::endl;
    return 2;
  };
  if (!o.name.empty()) {
    if (Status st = ValidateServerName(o.name); !st.ok()) return fail(st);
  } else if (o.data_dir.empty()) {
    // The default data directory is the name's.
    return fail(InvalidArgumentError(
        "give --name, or the --data-dir of a datasite that started before (its name is kept)"));
  }
  if (o.root_password_file_given && o.root_password_file.empty()) {
    return fail(InvalidArgumentError(
        "--root-password-file (DATASITE_ROOT_PASSWORD_FILE) is empty: name the file holding the "
        "root password"));
  }
  if (!o.root_password_file.empty()) {
    auto password = ReadRootPasswordFile(o.root_password_file, o.app.root_password);
    if (!password.ok()) return fail(password.status());
    o.app.root_password = std::move(*password);
  }
  auto dir = ResolveDataDir(o.name, o.data_dir);
  if (!dir.ok()) return fail(dir.status());
  auto port = ParsePort(o.port);
  if (!port.ok()) return fail(port.status());
  if (o.app.workers < 0 || o.app.workers > 256)
    return fail(InvalidArgumentError("--workers must be 0 to 256"));
  if (o.app.job_timeout_seconds < 1 || o.app.job_timeout_seconds > 7 * 24 * 3600)
    return fail(InvalidArgumentError("--job-timeout must be 1 to 604800 seconds"));
  if (o.app.job_limits.memory_bytes < (uint64_t{64} << 20))
    return fail(InvalidArgumentError("--job-memory-bytes must be at least 64 MiB"));
  if (o.app.job_limits.cpu_seconds < 1)
    return fail(InvalidArgumentError("--job-cpu-seconds must be at least 1"));
  if (o.app.job_limits.max_result_bytes < 1)
    return fail(InvalidArgumentError("--max-result-bytes must be at least 1"));
  if (!http::IsAddressLiteral(o.host)) {
    return fail(InvalidArgumentError(
        "--host must be an IP address (127.0.0.1, ::1, 0.0.0.0), not '" + o.host + "'"));
  }
  for (const auto& name : o.app.allowed_hosts) {
    if (Status st = http::ValidateAllowedHost(name); !st.ok()) return fail(st);
  }
  if (Status st = ValidateStorageDir(o.app.storage_dir, o.app.database); !st.ok()) return fail(st);
  if (o.app.tls_cert_file.empty() != o.app.tls_key_file.empty()) {
    return fail(InvalidArgumentError("--tls-cert and --tls-key go together: give both or neither"));
  }
  if (!o.app.tls_cert_file.empty()) {
    // Absolute, so that a reload reads the same files whatever the directory then.
    o.app.tls_cert_file = fs::absolute(o.app.tls_cert_file).string();
    o.app.tls_key_file = fs::absolute(o.app.tls_key_file).string();
  }
  std::error_code ec;
  fs::create_directories(*dir, ec);
  if (ec)
    return fail(UnavailableError("cannot create data directory " + *dir + ": " + ec.message()));
  ::chmod(dir->c_str(), 0700);
  o.app.data_dir = *dir;
  o.app.host = o.host;
  o.app.port = *port;
  if (!o.name.empty()) o.app.launch.name = o.name;
  // Dev mode relaxes the password rules only where no other machine can reach the server.
  const bool dev_passwords = o.dev_mode && OnlyThisMachine(o.app);
  o.app.accounts.password_rules =
      dev_passwords ? auth::PasswordRules::kDevelopment : auth::PasswordRules::kStandard;

  auto parsed_format = obs::ParseLogFormat(o.log_format);
  if (!parsed_format.ok()) return fail(parsed_format.status());
  const obs::LogFormat log_format = *parsed_format;
  if (!o.detach) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("datasite"));
    spdlog::set_level(o.dev_mode ? spdlog::level::debug : spdlog::level::info);
    obs::SetLogFormat(log_format);
    return Serve(o, -1);
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(InternalError("pipe failed"));
  pid_t pid = ::fork();
  if (pid < 0) return fail(InternalError("fork failed"));
  if (pid == 0) {
    ::close(fds[0]);
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR);
    ::dup2(null_fd, STDIN_FILENO);
    std::string log_path = o.app.data_dir + "/server.log";
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, STDOUT_FILENO);
    ::dup2(log_fd >= 0 ? log_fd : null_fd, STDERR_FILENO);
    spdlog::set_default_logger(spdlog::stderr_color_mt("datasite"));
    spdlog::set_level(o.dev_mode ? spdlog::level::debug : spdlog::level::info);
    obs::SetLogFormat(log_format);
    _exit(Serve(o, fds[1]));
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (out.rfind("ok\n", 0) == 0) {
    std::cout << out.substr(3) << std::flush;
    return 0;
  }
  if (out.empty())
    out = "error: the server exited during start-up; see " + o.app.data_dir + "/server.log\n";
  std::cerr << out << std::flush;
  return 1;
}

}  // namespace datasite::server
