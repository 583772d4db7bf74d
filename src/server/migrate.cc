#include "server/migrate.h"

#include <cstdio>
#include <filesystem>

#include "core/local_servers.h"
#include "server/app.h"
#include "store/sql.h"
#include "store/store.h"

namespace datasite::server {

int RunMigrate(const MigrateOptions& o) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
  };
  if (!store::IsPostgresUrl(o.to)) return fail("--to must be a postgresql:// URL");
  const std::string db = DatabasePath(o.from);
  if (!std::filesystem::exists(db)) return fail("no datasite database in " + o.from);
  if (auto running = FindRunningServer(o.from)) {
    return fail("a server runs on " + o.from + " (pid " + std::to_string(running->pid) +
                "): stop it first (datasite land " + running->name + ")");
  }
  std::fprintf(stderr, "Copying %s to %s\n", db.c_str(), store::sql::RedactUrl(o.to).c_str());
  auto copied = store::CopySqliteToPostgres(db, o.to, [](const std::string& table, int64_t rows) {
    std::fprintf(stderr, "  %-24s %lld rows\n", table.c_str(), static_cast<long long>(rows));
  });
  if (!copied.ok()) return fail(copied.status().ToString() + " (nothing was copied)");
  std::fprintf(stderr,
               "Copied %lld rows. Blobs and job results stay in %s: launch with\n"
               "  datasite launch --name NAME --data-dir %s --database URL\n",
               static_cast<long long>(*copied), o.from.c_str(), o.from.c_str());
  return 0;
}

}  // namespace datasite::server
