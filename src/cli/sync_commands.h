// `datasite sync identity | peer add | peer list | diff | export | import`: keeping a low side and
// a high side in step with signed bundles, over their HTTP API (docs/API.md, "Sync"; the design is
// docs/SYNC.md). Every command needs an admin account on the server(s) it talks to.
#ifndef DATASITE_CLI_SYNC_COMMANDS_H_
#define DATASITE_CLI_SYNC_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `sync` subcommand and its own subcommands to `app`. The parsed values are kept in this
// module until RunSyncCommand. Call once, before app.parse. Not thread-safe.
void AddSyncCommands(CLI::App& app);

// After app.parse: runs the sync command that was parsed and returns its exit code (0; 1 for a
// refusal or failure, with `error: MESSAGE` on stderr; 2 for a usage error), or -1 when none was
// parsed.
int RunSyncCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_SYNC_COMMANDS_H_
