// `datasite requests list|show|approve|deny`, `datasite jobs list|show|logs|kill|release` and
// `datasite grants list|show|revoke`: code requests, the jobs that run code and the grants of
// repeated use, over a server's HTTP API (docs/API.md, "Code, requests and jobs").
#ifndef DATASITE_CLI_REQUEST_COMMANDS_H_
#define DATASITE_CLI_REQUEST_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `requests`, `jobs` and `grants` subcommands and their own subcommands to `app`. The
// parsed values are kept in this module until RunRequestCommand. Call once, before app.parse. Not
// thread-safe.
void AddRequestCommands(CLI::App& app);

// After app.parse: runs the requests, jobs or grants command that was parsed and returns its exit
// code (0; 1 for a failure, with `error: MESSAGE` on stderr; 2 for a usage error), or -1 when none
// was parsed.
int RunRequestCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_REQUEST_COMMANDS_H_
