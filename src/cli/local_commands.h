// CLI commands about local servers: `datasite land`, `datasite list`.
#ifndef DATASITE_CLI_LOCAL_COMMANDS_H_
#define DATASITE_CLI_LOCAL_COMMANDS_H_

#include <string>

namespace datasite::cli {

// Each returns the process exit code.
int RunLand(const std::string& name, const std::string& data_dir);
int RunList();

}  // namespace datasite::cli

#endif  // DATASITE_CLI_LOCAL_COMMANDS_H_
