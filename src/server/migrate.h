// `datasite migrate`: moves a datasite's metadata from SQLite in its data directory to PostgreSQL.
#ifndef DATASITE_SERVER_MIGRATE_H_
#define DATASITE_SERVER_MIGRATE_H_

#include <string>

namespace datasite::server {

struct MigrateOptions {
  std::string from;  // a data directory holding datasite.db; no server may run on it
  std::string to;    // a postgresql:// URL of a database holding no datasite
};

// Copies the database, reporting each table on stderr; returns the process exit code.
int RunMigrate(const MigrateOptions& options);

}  // namespace datasite::server

#endif  // DATASITE_SERVER_MIGRATE_H_
