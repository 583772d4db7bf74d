// The SQLite engine of sql.h: one connection in WAL mode with synchronous=FULL, so that every
// acknowledged write survives a crash or power loss.
#include <sqlite3.h>

#include <algorithm>
#include <memory>
#include <string>

#include "store/sql.h"

namespace datasite::store::sql {
namespace {

Status ErrorOf(sqlite3* db, int rc) {
  const int extended = sqlite3_extended_errcode(db);
  if (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return AlreadyExistsError(sqlite3_errmsg(db));
  }
  const int primary = rc & 0xff;
  if (primary == SQLITE_FULL) return ResourceExhaustedError("database: disk full");
  if (primary == SQLITE_READONLY) return UnavailableError("database: read-only");
  if (primary == SQLITE_BUSY) return UnavailableError("database: busy");
  return InternalError(std::string("database: ") + sqlite3_errmsg(db));
}

// Functions PostgreSQL has and SQLite 3.40 lacks, so that one query text serves both.
void Greatest(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  int64_t best = 0;
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) continue;
    const int64_t v = sqlite3_value_int64(argv[i]);
    if (i == 0 || v > best) best = v;
  }
  sqlite3_result_int64(ctx, best);
}
void Least(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  int64_t best = 0;
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) continue;
    const int64_t v = sqlite3_value_int64(argv[i]);
    if (i == 0 || v < best) best = v;
  }
  sqlite3_result_int64(ctx, best);
}
// octet_length(text): its size in bytes (SQLite's length() counts characters).
void OctetLength(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  sqlite3_value_blob(argv[0]);
  sqlite3_result_int64(ctx, sqlite3_value_bytes(argv[0]));
}
// bytes_after(text, n): the bytes of the text after its first n, as a blob.
void BytesAfter(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto* p = static_cast<const char*>(sqlite3_value_blob(argv[0]));
  const int64_t size = sqlite3_value_bytes(argv[0]);
  const int64_t from = std::clamp<int64_t>(sqlite3_value_int64(argv[1]), 0, size);
  sqlite3_result_blob64(ctx, p == nullptr ? "" : p + from, static_cast<sqlite3_uint64>(size - from),
                        SQLITE_TRANSIENT);
}

Status AddFunctions(sqlite3* db) {
  constexpr int kFlags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  struct Fn {
    const char* name;
    int args;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
  };
  for (const Fn& f : {Fn{"greatest", -1, Greatest}, Fn{"least", -1, Least},
                      Fn{"octet_length", 1, OctetLength}, Fn{"bytes_after", 2, BytesAfter}}) {
    int rc = sqlite3_create_function_v2(db, f.name, f.args, kFlags, nullptr, f.fn, nullptr, nullptr,
                                        nullptr);
    if (rc != SQLITE_OK) return ErrorOf(db, rc);
  }
  return Status::Ok();
}

class SqliteCursor : public Cursor {
 public:
  SqliteCursor(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~SqliteCursor() override { sqlite3_finalize(stmt_); }

  void BindText(int i, std::string_view v) override {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void BindBlob(int i, std::string_view v) override {
    Check(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  void BindInt(int i, int64_t v) override { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindNull(int i) override { Check(sqlite3_bind_null(stmt_, i)); }

  Result<bool> Step() override {
    if (rc_ != SQLITE_OK) return ErrorOf(db_, rc_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    rc_ = rc;
    return ErrorOf(db_, rc_);
  }

  std::string Text(int col) const override {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) const override {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  bool IsNull(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  int ColumnCount() const override { return sqlite3_column_count(stmt_); }
  ValueType Type(int col) const override {
    switch (sqlite3_column_type(stmt_, col)) {
      case SQLITE_NULL:
        return ValueType::kNull;
      case SQLITE_INTEGER:
        return ValueType::kInt;
      case SQLITE_TEXT:
        return ValueType::kText;
      case SQLITE_BLOB:
        return ValueType::kBlob;
      default:
        return ValueType::kOther;  // a float: the store writes none
    }
  }

  bool Reset() override {
    if (rc_ != SQLITE_OK) return false;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return true;
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int rc_ = SQLITE_OK;
};

class SqliteConnection : public Connection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  Engine engine() const override { return Engine::kSqlite; }

  Result<std::unique_ptr<Cursor>> Prepare(const std::string& sql) override {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(st);
      return ErrorOf(db_, rc);
    }
    return std::unique_ptr<Cursor>(std::make_unique<SqliteCursor>(db_, st));
  }

  Status Exec(const std::string& script) override {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_READONLY) return UnavailableError("database is read-only: " + msg);
    if ((rc & 0xff) == SQLITE_FULL) return ResourceExhaustedError("disk full: " + msg);
    return InternalError("database: " + msg);
  }

  int64_t Changes() const override { return sqlite3_changes(db_); }

  Status BeginWrite() override { return Exec("BEGIN IMMEDIATE"); }
  Status BeginRowLocking() override { return BeginWrite(); }

  Result<int64_t> SchemaVersion() override {
    ASSIGN_OR_RETURN(auto c, Prepare("PRAGMA user_version"));
    ASSIGN_OR_RETURN(bool row, c->Step());
    return row ? c->Int(0) : 0;
  }
  Status SetSchemaVersion(int64_t version) override {
    return Exec("PRAGMA user_version = " + std::to_string(version));
  }

  Status SetDurableCommits(bool durable) override {
    return Exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  }

  Result<std::string> IntegrityCheck() override {
    ASSIGN_OR_RETURN(auto c, Prepare("PRAGMA integrity_check"));
    std::string out;
    for (;;) {
      ASSIGN_OR_RETURN(bool row, c->Step());
      if (!row) break;
      if (!out.empty()) out += "; ";
      out += c->Text(0);
    }
    return out;
  }

  Status Configure(bool read_only) {
    sqlite3_busy_timeout(db_, 5000);
    RETURN_IF_ERROR(AddFunctions(db_));
    if (read_only) return Status::Ok();
    RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
    // Deleted or overwritten content (a blanked reset token, a deleted session) is zeroed in the
    // pages a change writes anyway, so a copy of the file does not keep it in free space. FAST
    // adds no I/O; old page images stay in the WAL until a checkpoint overwrites them.
    RETURN_IF_ERROR(Exec("PRAGMA secure_delete=FAST"));
    // A page cache of up to 64 MiB (grown only as pages are used), so that a large transaction
    // such as a sync apply of 30,000 objects keeps its dirty pages in memory until it commits
    // instead of spilling them to the WAL again and again (the default 2 MiB spilled most of them
    // several times).
    RETURN_IF_ERROR(Exec("PRAGMA cache_size=-65536"));
    // A store method called inside InTransaction runs as a savepoint, whose sub-journal (the
    // pages it changed, for a rollback to the savepoint) SQLite writes to a temporary file past
    // 64 KiB: kept in memory instead, it is freed when the savepoint is released.
    return Exec("PRAGMA temp_store=MEMORY");
  }

 private:
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Connection>> OpenSqlite(const std::string& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return UnavailableError("cannot open database " + path + ": " + msg);
  }
  auto conn = std::make_unique<SqliteConnection>(db);
  RETURN_IF_ERROR(conn->Configure(read_only));
  return std::unique_ptr<Connection>(std::move(conn));
}

}  // namespace datasite::store::sql
