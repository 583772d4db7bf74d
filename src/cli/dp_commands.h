// `datasite dp policy set|show|delete`, `dp query`, `dp cost` and `dp budget [raise|reset]`: the
// differential-privacy routes (src/api/dp_routes.cc) from the command line (docs/API.md, "The
// `datasite` command line"). An asset is named by its id or as DATASET/ASSET.
#ifndef DATASITE_CLI_DP_COMMANDS_H_
#define DATASITE_CLI_DP_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `dp` subcommand and its own subcommands to `app`. Call once, before app.parse. Not
// thread-safe.
void AddDpCommands(CLI::App& app);

// After app.parse: runs the dp command that was parsed and returns its exit code (0; 1 for a
// refusal, e.g. a query the budget can't pay; 2 for a usage error), or -1 when none was parsed.
int RunDpCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_DP_COMMANDS_H_
