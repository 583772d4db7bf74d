// `datasite dataset list|show|upload|download-mock|delete`: a server's datasets over its HTTP API
// (docs/API.md, "Datasets, assets and blobs").
#ifndef DATASITE_CLI_DATASET_COMMANDS_H_
#define DATASITE_CLI_DATASET_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `dataset` subcommand and its own subcommands to `app`. The parsed values are kept in
// this module until RunDatasetCommand. Call once, before app.parse. Not thread-safe.
void AddDatasetCommands(CLI::App& app);

// After app.parse: runs the dataset command that was parsed and returns its exit code (0; 1 for a
// failure, with `error: MESSAGE` on stderr; 2 for a usage error), or -1 when none was parsed.
int RunDatasetCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_DATASET_COMMANDS_H_
