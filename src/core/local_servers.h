// Where local servers keep their storage, and how a running one is found: DATA_DIR/server.json
// describes it and DATA_DIR/server.lock is held (flock) for as long as it runs, so a stale
// server.json is never mistaken for a live server, and two servers never share one data directory.
#ifndef DATASITE_CORE_LOCAL_SERVERS_H_
#define DATASITE_CORE_LOCAL_SERVERS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace datasite {

struct RuntimeInfo {
  std::string name;
  int pid = 0;
  std::string host;
  int port = 0;
  std::string url;
  std::string data_dir;
};

// kInvalidArgument unless `name` is 1-64 of [A-Za-z0-9_.-] and does not start with '.' or '-'.
Status ValidateServerName(const std::string& name);

// $XDG_DATA_HOME/datasite, else $HOME/.local/share/datasite.
Result<std::string> ServersRoot();
// `explicit_dir` when not empty, else ServersRoot()/name.
Result<std::string> ResolveDataDir(const std::string& name, const std::string& explicit_dir);

// An exclusive lock on DATA_DIR/server.lock, released on destruction. Not thread-safe.
class DataDirLock {
 public:
  // kFailedPrecondition when another process holds it.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& data_dir);
  // Like Acquire, but when the holder recorded in DATA_DIR/server.json is a process that is
  // exiting (killed, its main thread already a zombie), waits up to `wait_ms` for the lock: the
  // kernel releases a killed process's locks only once its last thread is gone, and a thread inside
  // fsync can outlive the main one by seconds. A live holder fails at once.
  static Result<std::unique_ptr<DataDirLock>> AcquireAfterExit(const std::string& data_dir,
                                                               int wait_ms);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// True when process `pid` is exiting or has exited but is not yet reaped (state Z or X in
// /proc/PID/stat). False for a live process and for no process at all.
bool ProcessIsExiting(int pid);

// True when some process holds DATA_DIR/server.lock.
bool IsLocked(const std::string& data_dir);

// Writes DATA_DIR/server.json atomically (temp file + rename).
Status WriteRuntimeInfo(const RuntimeInfo& info);
// The running server in `data_dir`, or nullopt when none runs there.
std::optional<RuntimeInfo> FindRunningServer(const std::string& data_dir);
// Records that the server `name` keeps its storage in `data_dir` when that is not the default
// (ServersRoot()/name, i.e. `launch --data-dir`): ServersRoot()/.elsewhere/NAME holds the path, so
// that `list`, `land NAME` and `--server NAME` find it. A no-op for the default directory.
Status RegisterDataDir(const std::string& name, const std::string& data_dir);
// The running server named `name`: in its default directory, else where RegisterDataDir recorded.
std::optional<RuntimeInfo> FindRunningServerByName(const std::string& name);
// Every running server under ServersRoot() and in the directories recorded by RegisterDataDir, by
// name.
std::vector<RuntimeInfo> ListRunningServers();

}  // namespace datasite

#endif  // DATASITE_CORE_LOCAL_SERVERS_H_
