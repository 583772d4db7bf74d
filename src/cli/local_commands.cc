#include "cli/local_commands.h"

#include <signal.h>

#include <cstring>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "core/local_servers.h"

namespace datasite::cli {

int RunLand(const std::string& name, const std::string& explicit_dir) {
  auto dir = ResolveDataDir(name, explicit_dir);
  if (!dir.ok()) {
    std::cerr << "error: " << dir.status().message() << std::endl;
    return 2;
  }
  // Without --data-dir the name alone finds it, wherever it keeps its storage.
  auto info = explicit_dir.empty() ? FindRunningServerByName(name) : FindRunningServer(*dir);
  if (!info) {
    std::cerr << "error: no running server named " << name << std::endl;
    return 1;
  }
  std::cout << "Stopping " << name << std::endl;
  if (::kill(info->pid, SIGTERM) != 0 && errno != ESRCH) {
    std::cerr << "error: cannot signal pid " << info->pid << ": " << std::strerror(errno)
              << std::endl;
    return 1;
  }
  // The server releases its lock as its very last act.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (IsLocked(info->data_dir)) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "error: " << name << " (pid " << info->pid << ") did not stop within 20 s"
                << std::endl;
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

int RunList() {
  auto servers = ListRunningServers();
  std::printf("%-24s %-8s %-28s %s\n", "NAME", "PID", "URL", "DATA_DIR");
  for (const auto& s : servers) {
    std::printf("%-24s %-8d %-28s %s\n", s.name.c_str(), s.pid, s.url.c_str(), s.data_dir.c_str());
  }
  return 0;
}

}  // namespace datasite::cli
