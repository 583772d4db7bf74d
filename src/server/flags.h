// The flags of the server subcommands (`launch`, `serve`, `worker`). Every flag is also read from
// an environment variable that --help shows; a flag on the command line wins over it.
#ifndef DATASITE_SERVER_FLAGS_H_
#define DATASITE_SERVER_FLAGS_H_

#include <string>
#include <string_view>

#include "server/launch.h"
#include "server/worker.h"

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::server {

enum class ServerRole {
  kAllInOne,    // `launch`: serves the API and runs jobs in its own slots
  kApiReplica,  // `serve`: serves the API; jobs run in `datasite worker` processes
};

// Adds `launch` or `serve` to `app`, with defaults for `role` written into `options`, which
// parsing fills and which must outlive it. Both take the same flags, read from DATASITE_<FLAG>
// (--database: DATASITE_DATABASE_URL).
CLI::App* AddServerCommand(CLI::App& app, ServerRole role, LaunchOptions& options);

// Adds `worker` to `app`; its flags are read from DATASITE_WORKER_<FLAG> (--database:
// DATASITE_DATABASE_URL, as the server's).
CLI::App* AddWorkerCommand(CLI::App& app, WorkerOptions& options);

// The variable a flag is read from: EnvName("DATASITE_", "--job-timeout") is
// "DATASITE_JOB_TIMEOUT".
std::string EnvName(std::string_view prefix, std::string_view flag);

}  // namespace datasite::server

#endif  // DATASITE_SERVER_FLAGS_H_
