// `datasite audit verify|export|prune`: the operator's tools for the hash-chained audit log
// (store/audit_log.h). With `--data-dir DIR` they work offline on the server's database file
// (verify and export open it read-only); without it, verify and export ask a server through its
// admin routes (docs/API.md, "Audit log"). Prune is offline only: it needs the server's signing
// key.
#ifndef DATASITE_CLI_AUDIT_COMMANDS_H_
#define DATASITE_CLI_AUDIT_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

// Adds the `audit` subcommand and its own subcommands to `app`. Call once, before app.parse. Not
// thread-safe.
void AddAuditCommands(CLI::App& app);

// After app.parse: runs the audit command that was parsed and returns its exit code (0; 1 for a
// failure or a chain that does not verify; 2 for a usage error), or -1 when none was parsed.
int RunAuditCommand();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_AUDIT_COMMANDS_H_
