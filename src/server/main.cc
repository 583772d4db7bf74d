// The `datasite` binary: `launch` runs a server, `serve` an API replica and `worker` its jobs; the
// other subcommands are a CLI.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/admin_commands.h"
#include "cli/audit_commands.h"
#include "cli/dataset_commands.h"
#include "cli/dp_commands.h"
#include "cli/local_commands.h"
#include "cli/pool_commands.h"
#include "cli/request_commands.h"
#include "cli/sync_commands.h"
#include "server/blobs_migrate.h"
#include "server/flags.h"
#include "server/launch.h"
#include "server/migrate.h"
#include "server/worker.h"
#include "services/settings.h"

int main(int argc, char** argv) {
  using datasite::server::AddServerCommand;
  using datasite::server::LaunchOptions;
  using datasite::server::ServerRole;
  CLI::App app{"datasite: a Datasite server and its command line"};
  app.require_subcommand(1);

  LaunchOptions launch, serve;
  auto* l = AddServerCommand(app, ServerRole::kAllInOne, launch);
  auto* api = AddServerCommand(app, ServerRole::kApiReplica, serve);
  datasite::server::WorkerOptions worker;
  auto* w = datasite::server::AddWorkerCommand(app, worker);

  datasite::server::MigrateOptions migrate;
  auto* mig = app.add_subcommand(
      "migrate",
      "Move a stopped datasite's metadata from SQLite in its data directory to an empty "
      "PostgreSQL database (blobs and job results stay in the directory)");
  mig->add_option("--from", migrate.from, "The data directory")->required();
  mig->add_option("--to", migrate.to, "postgresql://USER[:PASSWORD]@HOST:PORT/DB, empty")
      ->required();

  datasite::server::BlobsMigrateOptions blobs_migrate;
  auto* blobs = app.add_subcommand("blobs", "Move a datasite's blobs between stores");
  blobs->require_subcommand(1);
  auto* blobs_mig = blobs->add_subcommand(
      "migrate",
      "Copy a stopped datasite's blobs from its directory into an S3-compatible bucket, under the "
      "same ids, each checked against the SHA-256 recorded at upload (credentials from "
      "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the URL's credentials file; nothing is "
      "deleted). Run again, it copies only what the bucket lacks");
  blobs_mig
      ->add_option("--from", blobs_migrate.from,
                   "The data directory, or with --database the servers' --storage-dir")
      ->required();
  blobs_mig
      ->add_option("--to", blobs_migrate.to,
                   "s3://BUCKET/PREFIX?endpoint=URL&region=R[&credentials=FILE], as --blob")
      ->required();
  blobs_mig->add_option("--database", blobs_migrate.database,
                        "The servers' PostgreSQL URL (default: SQLite in --from)");

  std::string land_name, land_dir;
  auto* d = app.add_subcommand("land", "Stop a local server");
  d->add_option("name", land_name, "Server name")->required();
  d->add_option("--data-dir", land_dir, "Storage directory, if it was given at launch");

  auto* ls = app.add_subcommand("list", "List the local servers that run");
  auto* ver = app.add_subcommand("version", "Print the version");
  datasite::cli::AddDatasetCommands(app);
  datasite::cli::AddRequestCommands(app);
  datasite::cli::AddAdminCommands(app);
  datasite::cli::AddAuditCommands(app);
  datasite::cli::AddSyncCommands(app);
  datasite::cli::AddDpCommands(app);
  datasite::cli::AddPoolCommands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\nRun with --help for usage." << std::endl;
    return 2;
  }

  if (l->parsed()) return datasite::server::RunLaunch(std::move(launch));
  if (api->parsed()) return datasite::server::RunLaunch(std::move(serve));
  if (w->parsed()) return datasite::server::RunWorker(std::move(worker));
  if (mig->parsed()) return datasite::server::RunMigrate(migrate);
  if (blobs_mig->parsed()) return datasite::server::RunBlobsMigrate(blobs_migrate);
  if (d->parsed()) return datasite::cli::RunLand(land_name, land_dir);
  if (ls->parsed()) return datasite::cli::RunList();
  if (ver->parsed()) {
    std::cout << "datasite " << datasite::services::kVersion << std::endl;
    return 0;
  }
  if (int rc = datasite::cli::RunDatasetCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunRequestCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunAdminCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunAuditCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunSyncCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunDpCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunPoolCommand(); rc >= 0) return rc;
  return 0;
}
