// `datasite users list|create|set-role|delete` and `datasite settings show|set`: the accounts and
// the settings of a server, over its HTTP API (docs/API.md, "Accounts and users", "Settings").
#ifndef DATASITE_CLI_ADMIN_COMMANDS_H_
#define DATASITE_CLI_ADMIN_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `users` and `settings` subcommands and their own subcommands to `app`. The parsed
// values are kept in this module until RunAdminCommand. Call once, before app.parse. Not
// thread-safe.
void AddAdminCommands(CLI::App& app);

// After app.parse: runs the users or settings command that was parsed and returns its exit code
// (0; 1 for a failure, with `error: MESSAGE` on stderr; 2 for a usage error), or -1 when none was
// parsed.
int RunAdminCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_ADMIN_COMMANDS_H_
