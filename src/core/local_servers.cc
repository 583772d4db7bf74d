#include "core/local_servers.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstring>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace datasite {

namespace fs = std::filesystem;

Status ValidateServerName(const std::string& name) {
  auto bad = [&] {
    return InvalidArgumentError(
        "server name '" + name.substr(0, 80) +
        "' must be 1 to 64 letters, digits, '_', '.' or '-', not starting with "
        "'.' or '-'");
  };
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return bad();
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return bad();
  }
  return Status::Ok();
}

Result<std::string> ServersRoot() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/datasite";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.local/share/datasite";
  return FailedPreconditionError("neither XDG_DATA_HOME nor HOME is set; pass --data-dir");
}

Result<std::string> ResolveDataDir(const std::string& name, const std::string& explicit_dir) {
  if (!explicit_dir.empty()) {
    std::error_code ec;
    auto abs = fs::absolute(explicit_dir, ec);
    if (ec) return InvalidArgumentError("bad --data-dir: " + ec.message());
    return abs.lexically_normal().string();
  }
  RETURN_IF_ERROR(ValidateServerName(name));
  ASSIGN_OR_RETURN(std::string root, ServersRoot());
  return root + "/" + name;
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& data_dir) {
  std::string path = data_dir + "/server.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return UnavailableError("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return FailedPreconditionError("another datasite server is running on " + data_dir);
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

Result<std::unique_ptr<DataDirLock>> DataDirLock::AcquireAfterExit(const std::string& data_dir,
                                                                   int wait_ms) {
  auto lock = Acquire(data_dir);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (!lock.ok() && lock.status().code() == StatusCode::kFailedPrecondition &&
         std::chrono::steady_clock::now() < deadline) {
    auto holder = FindRunningServer(data_dir);
    if (!holder || !ProcessIsExiting(holder->pid)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock = Acquire(data_dir);
  }
  return lock;
}

DataDirLock::~DataDirLock() { ::close(fd_); }

bool ProcessIsExiting(int pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  // "PID (COMM) STATE ...": COMM may hold spaces and parentheses, so the state follows the last
  // ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  char state = line[close + 2];
  return state == 'Z' || state == 'X';
}

bool IsLocked(const std::string& data_dir) {
  std::string path = data_dir + "/server.lock";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return locked;
}

Status WriteRuntimeInfo(const RuntimeInfo& info) {
  nlohmann::json j = {{"name", info.name}, {"pid", info.pid}, {"host", info.host},
                      {"port", info.port}, {"url", info.url}, {"data_dir", info.data_dir}};
  std::string tmp = info.data_dir + "/server.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    if (!out) return UnavailableError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, info.data_dir + "/server.json", ec);
  if (ec) return UnavailableError("cannot write server.json: " + ec.message());
  return Status::Ok();
}

std::optional<RuntimeInfo> FindRunningServer(const std::string& data_dir) {
  if (!IsLocked(data_dir)) return std::nullopt;
  std::ifstream in(data_dir + "/server.json");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  RuntimeInfo info;
  info.name = j.value("name", "");
  info.pid = j.value("pid", 0);
  info.host = j.value("host", "");
  info.port = j.value("port", 0);
  info.url = j.value("url", "");
  info.data_dir = data_dir;
  if (info.pid <= 0) return std::nullopt;
  return info;
}

namespace {

// Where RegisterDataDir records data directories that are not the default. Server names never
// start with '.', so no server's default directory is this one.
std::string ElsewhereDir(const std::string& root) { return root + "/.elsewhere"; }

// The directory recorded for `name`, or "".
std::string RecordedDataDir(const std::string& root, const std::string& name) {
  std::ifstream in(ElsewhereDir(root) + "/" + name);
  std::string dir;
  if (!in || !std::getline(in, dir)) return "";
  return dir;
}

}  // namespace

Status RegisterDataDir(const std::string& name, const std::string& data_dir) {
  RETURN_IF_ERROR(ValidateServerName(name));
  ASSIGN_OR_RETURN(std::string root, ServersRoot());
  std::error_code ec;
  if (fs::weakly_canonical(root + "/" + name, ec) == fs::weakly_canonical(data_dir, ec)) {
    return Status::Ok();
  }
  const std::string dir = ElsewhereDir(root);
  fs::create_directories(dir, ec);
  if (ec) return UnavailableError("cannot create " + dir + ": " + ec.message());
  const std::string tmp = dir + "/." + name + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << data_dir << "\n";
    if (!out) return UnavailableError("cannot write " + tmp);
  }
  fs::rename(tmp, dir + "/" + name, ec);
  if (ec) return UnavailableError("cannot record the data directory: " + ec.message());
  return Status::Ok();
}

std::optional<RuntimeInfo> FindRunningServerByName(const std::string& name) {
  if (!ValidateServerName(name).ok()) return std::nullopt;
  auto root = ServersRoot();
  if (!root.ok()) return std::nullopt;
  if (auto info = FindRunningServer(*root + "/" + name)) return info;
  std::string recorded = RecordedDataDir(*root, name);
  if (recorded.empty()) return std::nullopt;
  auto info = FindRunningServer(recorded);
  // The directory may since hold another server (launched there under another name).
  if (!info || info->name != name) return std::nullopt;
  return info;
}

std::vector<RuntimeInfo> ListRunningServers() {
  std::vector<RuntimeInfo> out;
  auto root = ServersRoot();
  if (!root.ok()) return out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(*root, ec)) {
    if (!entry.is_directory(ec) || entry.path().filename().string().rfind('.', 0) == 0) continue;
    if (auto info = FindRunningServer(entry.path().string())) out.push_back(*info);
  }
  for (const auto& entry : fs::directory_iterator(ElsewhereDir(*root), ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !ValidateServerName(name).ok()) continue;
    auto info = FindRunningServerByName(name);
    if (!info) continue;
    bool seen = std::any_of(out.begin(), out.end(),
                            [&](const RuntimeInfo& r) { return r.data_dir == info->data_dir; });
    if (!seen) out.push_back(*info);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace datasite
