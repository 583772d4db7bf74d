// `datasite launch`: runs a local server in the foreground, or detached in the background.
#ifndef DATASITE_SERVER_LAUNCH_H_
#define DATASITE_SERVER_LAUNCH_H_

#include <signal.h>

#include <string>

#include "server/app.h"

namespace datasite::server {

struct LaunchOptions {
  std::string name;
  std::string port = "auto";       // a number or "auto"
  std::string host = "127.0.0.1";  // loopback: see AppConfig::host
  bool reset = false;
  bool dev_mode = false;
  bool detach = false;
  // --log-format: text or json (obs::ParseLogFormat).
  std::string log_format = "text";
  std::string data_dir;  // "" = the default for `name`
  // --root-password-file: read by RunLaunch into app.root_password (a container's secret file, so
  // that the password is in no process's environment or command line).
  std::string root_password_file;
  bool root_password_file_given = false;  // even as "": an empty name is an error, not "none"
  AppConfig app;                          // data_dir, host and port are filled by RunLaunch
};

// Returns the process exit code.
int RunLaunch(LaunchOptions options);

// The root password in the file at `path`, its trailing newlines dropped. kInvalidArgument when
// `given` (the --root-password) is not the default (two sources), or the file is unreadable or
// empty; the password itself is in no message.
Result<std::string> ReadRootPasswordFile(const std::string& path, const std::string& given);

// Blocks SIGINT and SIGTERM in this thread (every thread started later inherits the mask), so that
// the caller takes them with sigwait on the set returned; ignores SIGPIPE.
sigset_t BlockStopSignals();

}  // namespace datasite::server

#endif  // DATASITE_SERVER_LAUNCH_H_
