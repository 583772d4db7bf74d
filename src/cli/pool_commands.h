// `datasite pools list|show|launch|scale|delete` and `datasite images
// list|show|submit|build|remove`: worker pools and the Python environments they run (issue 19,
// routes under /api/v1/worker_pools and /api/v1/worker_images) from the command line (docs/API.md,
// "The `datasite` command line").
#ifndef DATASITE_CLI_POOL_COMMANDS_H_
#define DATASITE_CLI_POOL_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `pools` and `images` subcommands and their own subcommands to `app`. Call once, before
// app.parse. Not thread-safe.
void AddPoolCommands(CLI::App& app);

// After app.parse: runs the pools or images command that was parsed and returns its exit code (0;
// 1 for a refusal, e.g. a pool name taken; 2 for a usage error), or -1 when none was parsed.
int RunPoolCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_POOL_COMMANDS_H_
