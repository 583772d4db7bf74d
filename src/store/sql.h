// The SQL engines under the store: one small interface over SQLite and PostgreSQL (libpq), so that
// the store's queries are written once. Only src/store/ uses it.
//
// The store writes its queries in SQLite's dialect where the two agree, with `?` / `?N`
// placeholders (rewritten to `$N` for PostgreSQL) and a few functions each engine is given when
// it lacks them (see sql_functions in sql_sqlite.cc and the PostgreSQL baseline schema).
#ifndef DATASITE_STORE_SQL_H_
#define DATASITE_STORE_SQL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace datasite::store::sql {

enum class Engine { kSqlite, kPostgres };

// What a column of a row holds (SQLite's storage classes; PostgreSQL's values map onto them).
enum class ValueType { kNull, kInt, kText, kBlob, kOther };

// One prepared statement. Bind by position (1-based), then Step through the rows. Not
// thread-safe; valid while its Connection lives.
class Cursor {
 public:
  virtual ~Cursor() = default;

  virtual void BindText(int index, std::string_view v) = 0;
  virtual void BindBlob(int index, std::string_view v) = 0;
  virtual void BindInt(int index, int64_t v) = 0;
  virtual void BindNull(int index) = 0;

  // True when a row is available. The first call runs the statement.
  virtual Result<bool> Step() = 0;

  virtual std::string Text(int col) const = 0;
  virtual std::string Blob(int col) const = 0;
  virtual bool IsNull(int col) const = 0;
  // An integer column; a boolean reads as 0 or 1.
  virtual int64_t Int(int col) const = 0;
  virtual int ColumnCount() const = 0;
  virtual ValueType Type(int col) const = 0;

  // Forgets the bindings and the rows, for reuse. False when the statement can't be reused.
  virtual bool Reset() = 0;
};

// One connection. Not thread-safe: the store serializes its use.
class Connection {
 public:
  virtual ~Connection() = default;

  virtual Engine engine() const = 0;

  // A statement for `sql`. Errors in the SQL may surface only at the first Step.
  virtual Result<std::unique_ptr<Cursor>> Prepare(const std::string& sql) = 0;
  // Runs a script of one or more statements without parameters.
  virtual Status Exec(const std::string& script) = 0;
  // Rows inserted, updated or deleted by the last statement stepped to its end.
  virtual int64_t Changes() const = 0;

  // Opens a write transaction that excludes every other writer of the database until it ends
  // (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN and a transaction-wide advisory lock), so a
  // transaction that reads and then writes sees no other writer's change in between. On
  // PostgreSQL that leaves out the transactions of BeginRowLocking, which lock rows only.
  virtual Status BeginWrite() = 0;
  // Opens a write transaction that excludes other writers only from the rows it locks
  // (PostgreSQL: BEGIN without the writers' lock, for statements that lock their rows themselves,
  // as `FOR UPDATE SKIP LOCKED` does). SQLite has one writer at a time: the same as BeginWrite.
  virtual Status BeginRowLocking() = 0;

  // The schema version the store's migrations have reached (0 for an empty database).
  virtual Result<int64_t> SchemaVersion() = 0;
  // Records the schema version; inside the migration's transaction.
  virtual Status SetSchemaVersion(int64_t version) = 0;

  // Whether commits wait for the disk (SQLite synchronous=FULL vs NORMAL; PostgreSQL's commits
  // always do here). Turned off only around bulk work that ends with a durable commit.
  virtual Status SetDurableCommits(bool durable) = 0;

  // A consistency check of the whole database: "ok" or what is wrong.
  virtual Result<std::string> IntegrityCheck() = 0;
};

// Hears PostgreSQL notifications (NOTIFY) on a connection of its own, from a thread of its own,
// until destroyed. After the connection was lost and made again it calls `on_reconnect`: whatever
// was notified meanwhile is lost. healthy() is false while it is not listening.
class Listener {
 public:
  virtual ~Listener() = default;
  virtual bool healthy() const = 0;
};
using NotifyFn = std::function<void(const std::string& channel, const std::string& payload)>;
Result<std::unique_ptr<Listener>> ListenPostgres(const std::string& url,
                                                 std::vector<std::string> channels,
                                                 NotifyFn on_notify,
                                                 std::function<void()> on_reconnect);

// Opens (and creates) a SQLite database file.
Result<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, bool read_only);

// Connects to PostgreSQL at a libpq URL ("postgresql://user@host:port/db?..."). `read_only`: every
// transaction of the session is read-only (the server refuses writes: kUnavailable), whatever
// options the URL gives.
Result<std::unique_ptr<Connection>> OpenPostgres(const std::string& url, bool read_only = false);

// The URL with any password replaced by "***", for messages and logs.
std::string RedactUrl(std::string_view url);

// Rewrites SQLite placeholders (`?`, `?N`) to PostgreSQL's (`$N`), leaving string literals,
// quoted identifiers and comments alone.
std::string ToDollarPlaceholders(std::string_view sql);

}  // namespace datasite::store::sql

#endif  // DATASITE_STORE_SQL_H_
