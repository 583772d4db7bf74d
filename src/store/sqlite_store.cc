// SQLite implementation of Store. One connection, serialized by a mutex; WAL journal with
// synchronous=FULL so that every acknowledged write survives a crash or power loss.
#include <sqlite3.h>

#include <mutex>

#include "store/store.h"

namespace datasite::store {
namespace {

// The schema, one entry per version. Never edit a released entry: append a new one.
constexpr const char* kMigrations[] = {
    // Version 1: accounts, sessions, settings, identity, audit.
    R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  role INTEGER NOT NULL,
  institution TEXT NOT NULL DEFAULT '',
  website TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  is_root INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE sessions (
  token_hash BLOB PRIMARY KEY,
  user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
  role INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE settings (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  organization TEXT NOT NULL,
  description TEXT NOT NULL,
  deployed_on TEXT NOT NULL,
  signup_enabled INTEGER NOT NULL,
  notifications_enabled INTEGER NOT NULL,
  admin_email TEXT NOT NULL,
  server_type TEXT NOT NULL,
  server_side_type TEXT NOT NULL,
  association_request_auto_approval INTEGER NOT NULL,
  allow_guest_sessions INTEGER NOT NULL,
  welcome_markdown TEXT NOT NULL
);
CREATE TABLE server_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  server_id TEXT NOT NULL,
  verify_key BLOB NOT NULL,
  signing_key BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL
);
)sql",
};

// A prepared statement; finalized on destruction. Not thread-safe.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(const std::string& v) {
    Check(sqlite3_bind_text(stmt_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& BindBlob(const std::string& v) {
    Check(sqlite3_bind_blob(stmt_, ++idx_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& Bind(int64_t v) {
    Check(sqlite3_bind_int64(stmt_, ++idx_, v));
    return *this;
  }
  Stmt& Bind(bool v) { return Bind(static_cast<int64_t>(v ? 1 : 0)); }
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  Stmt& BindNull() {
    Check(sqlite3_bind_null(stmt_, ++idx_));
    return *this;
  }

  // Result<bool>: true when a row is available.
  Result<bool> Step() {
    if (rc_ != SQLITE_OK) return Error();
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    rc_ = rc;
    return Error();
  }
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  std::string Text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) const {
    auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }

  int rc() const { return rc_; }
  int extended_rc() const { return sqlite3_extended_errcode(db_); }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && rc_ == SQLITE_OK) rc_ = rc;
  }
  Status Error() const {
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE ||
        sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return AlreadyExistsError(sqlite3_errmsg(db_));
    }
    int primary = rc_ & 0xff;
    if (primary == SQLITE_FULL) return ResourceExhaustedError("database: disk full");
    if (primary == SQLITE_READONLY) return UnavailableError("database: read-only");
    if (primary == SQLITE_BUSY) return UnavailableError("database: busy");
    return InternalError(std::string("database: ") + sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
  int idx_ = 0;
};

constexpr const char* kUserColumns =
    "id, email, name, role, institution, website, password_hash, is_root, created_at, updated_at";

User ReadUser(const Stmt& s) {
  User u;
  u.id = s.Text(0);
  u.email = s.Text(1);
  u.name = s.Text(2);
  u.role = static_cast<int>(s.Int(3));
  u.institution = s.Text(4);
  u.website = s.Text(5);
  u.password_hash = s.Text(6);
  u.is_root = s.Int(7) != 0;
  u.created_at = s.Int(8);
  u.updated_at = s.Int(9);
  return u;
}

class SqliteStore : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status Init() {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(Exec("PRAGMA synchronous=FULL"));
    RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
    sqlite3_busy_timeout(db_, 5000);
    return Migrate();
  }

  Result<std::optional<Identity>> GetIdentity() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT server_id, verify_key, signing_key, created_at FROM server_identity");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Identity>();
    return std::optional<Identity>(Identity{s.Text(0), s.Blob(1), s.Blob(2), s.Int(3)});
  }

  Status PutIdentity(const Identity& id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "INSERT OR REPLACE INTO server_identity (singleton, server_id, verify_key, signing_key, "
           "created_at) VALUES (1, ?, ?, ?, ?)");
    return s.Bind(id.server_id)
        .BindBlob(id.verify_key)
        .BindBlob(id.signing_key)
        .Bind(id.created_at)
        .Run();
  }

  Result<std::optional<Settings>> GetSettings() override {
    std::lock_guard lock(mu_);
    Stmt s(
        db_,
        "SELECT id, name, organization, description, deployed_on, signup_enabled, "
        "notifications_enabled, admin_email, server_type, server_side_type, "
        "association_request_auto_approval, allow_guest_sessions, welcome_markdown FROM settings");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return std::optional<Settings>();
    Settings st;
    st.id = s.Text(0);
    st.name = s.Text(1);
    st.organization = s.Text(2);
    st.description = s.Text(3);
    st.deployed_on = s.Text(4);
    st.signup_enabled = s.Int(5) != 0;
    st.notifications_enabled = s.Int(6) != 0;
    st.admin_email = s.Text(7);
    st.server_type = s.Text(8);
    st.server_side_type = s.Text(9);
    st.association_request_auto_approval = s.Int(10) != 0;
    st.allow_guest_sessions = s.Int(11) != 0;
    st.welcome_markdown = s.Text(12);
    return std::optional<Settings>(std::move(st));
  }

  Status PutSettings(const Settings& st) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "INSERT OR REPLACE INTO settings (singleton, id, name, organization, description, "
           "deployed_on, "
           "signup_enabled, notifications_enabled, admin_email, server_type, server_side_type, "
           "association_request_auto_approval, allow_guest_sessions, welcome_markdown) "
           "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    return s.Bind(st.id)
        .Bind(st.name)
        .Bind(st.organization)
        .Bind(st.description)
        .Bind(st.deployed_on)
        .Bind(st.signup_enabled)
        .Bind(st.notifications_enabled)
        .Bind(st.admin_email)
        .Bind(st.server_type)
        .Bind(st.server_side_type)
        .Bind(st.association_request_auto_approval)
        .Bind(st.allow_guest_sessions)
        .Bind(st.welcome_markdown)
        .Run();
  }

  Status InsertUser(const User& u) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, (std::string("INSERT INTO users (") + kUserColumns +
                 ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                    .c_str());
    return s.Bind(u.id)
        .Bind(u.email)
        .Bind(u.name)
        .Bind(u.role)
        .Bind(u.institution)
        .Bind(u.website)
        .Bind(u.password_hash)
        .Bind(u.is_root)
        .Bind(u.created_at)
        .Bind(u.updated_at)
        .Run();
  }

  Result<User> GetUserById(const std::string& id) override { return GetUserWhere("id", id); }
  Result<User> GetUserByEmail(const std::string& email) override {
    return GetUserWhere("email", email);
  }

  Result<UserPage> ListUsers(const std::string& search, int64_t offset, int64_t limit) override {
    std::lock_guard lock(mu_);
    // instr() rather than LIKE so that '%' and '_' in the search text are literal.
    const char* where =
        " WHERE (?1 = '' OR instr(lower(email), lower(?1)) > 0 OR "
        "instr(lower(name), lower(?1)) > 0)";
    UserPage page;
    {
      Stmt c(db_, (std::string("SELECT count(*) FROM users") + where).c_str());
      c.Bind(search);
      ASSIGN_OR_RETURN(bool row, c.Step());
      page.total = row ? c.Int(0) : 0;
    }
    Stmt s(db_, (std::string("SELECT ") + kUserColumns + " FROM users" + where +
                 " ORDER BY created_at, rowid LIMIT ?2 OFFSET ?3")
                    .c_str());
    s.Bind(search).Bind(limit).Bind(offset);
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      page.items.push_back(ReadUser(s));
    }
    return page;
  }

  Status UpdateUser(const User& u) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "UPDATE users SET email = ?, name = ?, role = ?, institution = ?, website = ?, "
           "password_hash = ?, updated_at = ? WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(u.email)
                        .Bind(u.name)
                        .Bind(u.role)
                        .Bind(u.institution)
                        .Bind(u.website)
                        .Bind(u.password_hash)
                        .Bind(u.updated_at)
                        .Bind(u.id)
                        .Run());
    if (sqlite3_changes(db_) == 0) return NotFoundError("user not found");
    return Status::Ok();
  }

  Status DeleteUser(const std::string& id) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM users WHERE id = ?");
    RETURN_IF_ERROR(s.Bind(id).Run());
    if (sqlite3_changes(db_) == 0) return NotFoundError("user not found");
    return Status::Ok();
  }

  Status InsertSession(const Session& ss) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "INSERT INTO sessions (token_hash, user_id, role, created_at, expires_at) VALUES (?, ?, "
           "?, ?, ?)");
    s.BindBlob(ss.token_hash);
    if (ss.user_id) {
      s.Bind(*ss.user_id);
    } else {
      s.BindNull();
    }
    return s.Bind(ss.role).Bind(ss.created_at).Bind(ss.expires_at).Run();
  }

  Result<Session> GetSession(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "SELECT user_id, role, created_at, expires_at FROM sessions WHERE token_hash = ?");
    s.BindBlob(token_hash);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("session not found");
    Session out;
    out.token_hash = token_hash;
    if (!s.IsNull(0)) out.user_id = s.Text(0);
    out.role = static_cast<int>(s.Int(1));
    out.created_at = s.Int(2);
    out.expires_at = s.Int(3);
    return out;
  }

  Status DeleteSession(const std::string& token_hash) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM sessions WHERE token_hash = ?");
    return s.BindBlob(token_hash).Run();
  }

  Status DeleteUserSessions(const std::string& user_id, const std::string& keep) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?");
    return s.Bind(user_id).BindBlob(keep).Run();
  }

  Status DeleteExpiredSessions(int64_t now) override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "DELETE FROM sessions WHERE expires_at <= ?");
    return s.Bind(now).Run();
  }

  Status AppendAudit(const AuditEvent& e) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)");
    return s.Bind(e.at).Bind(e.actor).Bind(e.action).Bind(e.target).Bind(e.detail).Run();
  }

  Result<std::vector<AuditEvent>> RecentAudit(int64_t limit) override {
    std::lock_guard lock(mu_);
    Stmt s(db_,
           "SELECT at, actor, action, target, detail FROM audit_events ORDER BY seq DESC LIMIT ?");
    s.Bind(limit);
    std::vector<AuditEvent> out;
    while (true) {
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4)});
    }
    return out;
  }

  Status CheckIntegrity() override {
    std::lock_guard lock(mu_);
    Stmt s(db_, "PRAGMA integrity_check");
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return InternalError("integrity_check returned nothing");
    std::string report = s.Text(0);
    if (report != "ok") return InternalError("database integrity check failed: " + report);
    return Status::Ok();
  }

 private:
  // REQUIRES: mu_ held.
  Status Exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    if ((rc & 0xff) == SQLITE_READONLY) return UnavailableError("database is read-only: " + msg);
    if ((rc & 0xff) == SQLITE_FULL) return ResourceExhaustedError("disk full: " + msg);
    return InternalError("database: " + msg);
  }

  // REQUIRES: mu_ held.
  Status Migrate() {
    int64_t version = 0;
    {
      Stmt s(db_, "PRAGMA user_version");
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (row) version = s.Int(0);
    }
    const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
    if (version > latest) {
      return FailedPreconditionError("database schema version " + std::to_string(version) +
                                     " is newer than this datasite (" + std::to_string(latest) +
                                     ")");
    }
    for (int64_t v = version; v < latest; ++v) {
      RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
      Status st = Exec(kMigrations[v]);
      if (st.ok()) st = Exec(("PRAGMA user_version = " + std::to_string(v + 1)).c_str());
      if (!st.ok()) {
        (void)Exec("ROLLBACK");
        return st;
      }
      RETURN_IF_ERROR(Exec("COMMIT"));
    }
    return Status::Ok();
  }

  Result<User> GetUserWhere(const char* column, const std::string& value) {
    std::lock_guard lock(mu_);
    Stmt s(
        db_,
        (std::string("SELECT ") + kUserColumns + " FROM users WHERE " + column + " = ?").c_str());
    s.Bind(value);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return NotFoundError("user not found");
    return ReadUser(s);
  }

  std::mutex mu_;
  sqlite3* db_;  // Guarded by mu_.
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return UnavailableError("cannot open database " + path + ": " + msg);
  }
  auto store = std::make_unique<SqliteStore>(db);
  RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace datasite::store
