// The PostgreSQL engine of sql.h, on libpq: named prepared statements with binary parameters and
// text results, one connection that reconnects on the next call after it was lost (never inside
// a transaction, whose work is then reported lost).
#include <libpq-fe.h>

#include <poll.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/sql.h"

namespace datasite::store::sql {
namespace {

// Type OIDs of the parameters we send (pg_type.h).
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
constexpr Oid kBoolOid = 16;

// Any number: all writers of one database take it, as SQLite's BEGIN IMMEDIATE takes its lock.
constexpr int64_t kWriterLock = 0x64617461;  // "data"

std::string Trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool IsConnectionState(const char* sqlstate) {
  if (sqlstate == nullptr) return true;  // no SQLSTATE: libpq's own failure, as a lost connection
  return std::strncmp(sqlstate, "08", 2) == 0 || std::strcmp(sqlstate, "57P01") == 0 ||
         std::strcmp(sqlstate, "57P02") == 0 || std::strcmp(sqlstate, "57P03") == 0;
}

// A failure as the store reports it. Clients may read kUnavailable and kAlreadyExists messages, so
// those say nothing of the database's address, role or the values in a row.
Status StatusOf(PGconn* conn, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = Trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (msg.empty()) msg = Trimmed(PQerrorMessage(conn));
  if (state == nullptr || IsConnectionState(state) || PQstatus(conn) != CONNECTION_OK) {
    return UnavailableError("the database is unreachable");
  }
  if (std::strcmp(state, "23505") == 0) {
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return AlreadyExistsError(primary ? primary : "duplicate key");
  }
  // Text PostgreSQL can't hold (a NUL byte, bytes that are not UTF-8), which SQLite would take:
  // the caller's input, refused.
  if (std::strcmp(state, "22021") == 0 || std::strcmp(state, "22P05") == 0) {
    return InvalidArgumentError("text must be UTF-8 without NUL characters");
  }
  if (std::strcmp(state, "53100") == 0) return ResourceExhaustedError("database: disk full");
  if (std::strcmp(state, "25006") == 0) return UnavailableError("database: read-only");
  if (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0 ||
      std::strcmp(state, "55P03") == 0) {
    return UnavailableError("database: busy: " + msg);
  }
  return InternalError("database: " + msg);
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

void IgnoreNotice(void*, const char*) {}

// How a connection is made: its name (pg_stat_activity's application_name), and when the kernel
// gives up on it once the database's host stops answering: keepalives from `idle_s` of silence,
// unacknowledged data after `timeout_ms` (rather than the system default of hours), so that
// calls fail as unavailable instead of hanging.
struct ConnectOptions {
  const char* name;
  int connect_s;  // the longest wait for the connection itself
  int idle_s;
  int timeout_ms;
};

PGconn* ConnectTo(const std::string& url, const ConnectOptions& o, bool read_only = false) {
  const std::string connect = std::to_string(o.connect_s);
  const std::string idle = std::to_string(o.idle_s);
  const std::string timeout = std::to_string(o.timeout_ms);
  constexpr const char* kSession =
      "-c client_min_messages=warning -c TimeZone=UTC -c client_encoding=UTF8";
  const std::string read_only_session =
      std::string(kSession) + " -c default_transaction_read_only=on";
  // Before the URL, so that its own settings win. The session settings go as options, so that a
  // reconnection (PQreset) has them too; a read-only session's go after the URL, so that they win.
  const char* keys[] = {"options",
                        "connect_timeout",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        read_only ? "options" : nullptr,
                        nullptr};
  const char* values[] = {kSession,     connect.c_str(),
                          o.name,       "1",
                          idle.c_str(), "1",
                          "3",          timeout.c_str(),
                          url.c_str(),  read_only ? read_only_session.c_str() : nullptr,
                          nullptr};
  return PQconnectdbParams(keys, values, /*expand_dbname=*/1);
}

class PostgresConnection;

class PostgresCursor : public Cursor {
 public:
  PostgresCursor(PostgresConnection* conn, std::string sql);
  ~PostgresCursor() override;

  // Text (which PostgreSQL checks to be UTF-8 without NUL); bytes go through BindBlob.
  void BindText(int i, std::string_view v) override { Set(i, kTextOid, std::string(v)); }
  void BindBlob(int i, std::string_view v) override { Set(i, kByteaOid, std::string(v)); }
  void BindInt(int i, int64_t v) override {
    std::string be(8, '\0');
    for (int b = 0; b < 8; ++b)
      be[b] = static_cast<char>((static_cast<uint64_t>(v) >> (56 - 8 * b)) & 0xff);
    Set(i, kInt8Oid, std::move(be));
  }
  void BindNull(int i) override { Set(i, 0, std::nullopt); }

  Result<bool> Step() override;

  std::string Text(int col) const override {
    if (PQgetisnull(res_.get(), row_, col)) return {};
    const char* v = PQgetvalue(res_.get(), row_, col);
    if (PQftype(res_.get(), col) == kByteaOid) return Unescaped(v);
    return std::string(v, PQgetlength(res_.get(), row_, col));
  }
  std::string Blob(int col) const override { return Text(col); }
  bool IsNull(int col) const override { return PQgetisnull(res_.get(), row_, col) != 0; }
  int64_t Int(int col) const override {
    if (PQgetisnull(res_.get(), row_, col)) return 0;
    const char* v = PQgetvalue(res_.get(), row_, col);
    if (PQftype(res_.get(), col) == kBoolOid) return v[0] == 't' ? 1 : 0;
    return std::strtoll(v, nullptr, 10);
  }

  int ColumnCount() const override { return res_ ? PQnfields(res_.get()) : 0; }
  ValueType Type(int col) const override {
    if (PQgetisnull(res_.get(), row_, col)) return ValueType::kNull;
    switch (PQftype(res_.get(), col)) {
      case kInt8Oid:
      case 23:  // int4
      case 21:  // int2
      case kBoolOid:
        return ValueType::kInt;
      case kTextOid:
      case 1043:  // varchar
        return ValueType::kText;
      case kByteaOid:
        return ValueType::kBlob;
      default:
        return ValueType::kOther;
    }
  }

  bool Reset() override {
    res_.reset();
    row_ = -1;
    ran_ = false;
    values_.clear();
    types_.clear();
    return true;
  }

 private:
  static std::string Unescaped(const char* v) {
    size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(v), &n);
    if (raw == nullptr) return {};
    std::string out(reinterpret_cast<char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  void Set(int i, Oid type, std::optional<std::string> v) {
    if (i < 1) return;
    if (values_.size() < static_cast<size_t>(i)) {
      values_.resize(i);
      types_.resize(i, 0);
    }
    values_[i - 1] = std::move(v);
    types_[i - 1] = type;
  }
  Status PrepareIfNeeded();
  ResultPtr ExecAfterBegin(const std::vector<const char*>& values, const std::vector<int>& lengths,
                           const std::vector<int>& formats);

  PostgresConnection* conn_;
  std::string sql_;   // with $N placeholders
  std::string name_;  // of the server-side prepared statement; empty before the first run
  uint64_t prepared_generation_ = 0;
  std::vector<Oid> prepared_types_;
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  ResultPtr res_;
  int row_ = -1;
  bool ran_ = false;
};

class PostgresConnection : public Connection {
 public:
  PostgresConnection(PGconn* conn, std::string url) : conn_(conn), url_(std::move(url)) {
    PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
  }
  ~PostgresConnection() override { PQfinish(conn_); }

  Engine engine() const override { return Engine::kPostgres; }

  Result<std::unique_ptr<Cursor>> Prepare(const std::string& sql) override {
    return std::unique_ptr<Cursor>(
        std::make_unique<PostgresCursor>(this, ToDollarPlaceholders(sql)));
  }

  Status Exec(const std::string& script) override {
    const bool ends_tx = script.rfind("COMMIT", 0) == 0 ||
                         (script.rfind("ROLLBACK", 0) == 0 && script.rfind("ROLLBACK TO", 0) != 0);
    if (!pending_begin_.empty()) {
      // Nothing was sent: a connection lost meanwhile may be made again, as before a statement.
      RETURN_IF_ERROR(EnsureConnected());
      if (ends_tx) {
        // The transaction ran no statement: the server never saw it, and there is nothing to end.
        pending_begin_.clear();
        in_tx_ = false;
        changes_ = 0;
        return Status::Ok();
      }
      // Its BEGIN goes with this script, in the same round trip.
      return Exec(TakePendingBegin() + "; " + script);
    }
    if (ends_tx && PQstatus(conn_) != CONNECTION_OK) {
      // The transaction died with the connection: nothing to end; the next call reconnects.
      in_tx_ = false;
      return UnavailableError("database connection lost inside a transaction; its work is lost");
    }
    RETURN_IF_ERROR(EnsureConnected());
    ResultPtr res(PQexec(conn_, script.c_str()));
    if (ends_tx) in_tx_ = false;
    const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return StatusOf(conn_, res.get());
    // A COMMIT of a transaction a failed statement aborted answers "ROLLBACK": nothing was
    // written. (SQLite undoes only the failed statement; here the caller must hear it.)
    if (script.rfind("COMMIT", 0) == 0 && std::strcmp(PQcmdStatus(res.get()), "ROLLBACK") == 0) {
      return InternalError(
          "database: the transaction was rolled back: a statement in it failed, and nothing it did "
          "was "
          "kept");
    }
    changes_ = std::strtoll(PQcmdTuples(res.get()), nullptr, 10);
    return Status::Ok();
  }

  int64_t Changes() const override { return changes_; }

  // A transaction begun while commits need not be durable (SetDurableCommits(false): a lease, a
  // lease renewal) does not wait for the WAL flush at its COMMIT; it says so in the same round
  // trip as its BEGIN.
  Status BeginWrite() override {
    return Begin({"SELECT pg_advisory_xact_lock(" + std::to_string(kWriterLock) + ")"});
  }
  Status BeginRowLocking() override { return Begin({}); }

  Result<int64_t> SchemaVersion() override {
    RETURN_IF_ERROR(EnsureConnected());
    RETURN_IF_ERROR(SendPendingBegin());
    ResultPtr res(
        PQexec(conn_, "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 END"));
    if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) return StatusOf(conn_, res.get());
    if (!PQgetisnull(res.get(), 0, 0)) return 0;
    res.reset(PQexec(conn_, "SELECT version FROM schema_version"));
    if (!res || PQresultStatus(res.get()) != PGRES_TUPLES_OK) return StatusOf(conn_, res.get());
    if (PQntuples(res.get()) == 0) return 0;
    return std::strtoll(PQgetvalue(res.get(), 0, 0), nullptr, 10);
  }
  Status SetSchemaVersion(int64_t version) override {
    return Exec(
        "CREATE TABLE IF NOT EXISTS schema_version (singleton BIGINT PRIMARY KEY CHECK "
        "(singleton = 1), version BIGINT NOT NULL); INSERT INTO schema_version VALUES (1, " +
        std::to_string(version) +
        ") ON CONFLICT (singleton) DO UPDATE SET version = " + "excluded.version");
  }

  // Every commit waits for the WAL flush (synchronous_commit stays on) but those of transactions
  // begun while this is false, which lose at most the last few hundred milliseconds of such
  // commits in a crash of the database server (never its consistency).
  Status SetDurableCommits(bool durable) override {
    durable_ = durable;
    return Status::Ok();
  }

  // PostgreSQL keeps its own pages consistent (and checks them with data checksums where the
  // operator turned them on); there is no cheap whole-database check to run from here.
  Result<std::string> IntegrityCheck() override {
    RETURN_IF_ERROR(Exec("SELECT 1"));
    return std::string("ok");
  }

  // The connection, reconnected first when it was lost outside a transaction.
  Status EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
    if (in_tx_ && pending_begin_.empty()) {
      return UnavailableError("database connection lost inside a transaction; its work is lost");
    }
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) return UnavailableError("the database is unreachable");
    ++generation_;
    return Status::Ok();
  }

  PGconn* raw() { return conn_; }
  // Whether the server has a transaction of ours open (one begun but not yet sent has none).
  bool in_transaction() const { return in_tx_ && pending_begin_.empty(); }
  // The statements that open the transaction begun last, not yet sent: they go in the same round
  // trip as its first statement (PostgresCursor::Step) or script (Exec). Empty once sent.
  const std::vector<std::string>& pending_begin() const { return pending_begin_; }
  void sent_pending_begin() { pending_begin_.clear(); }
  // Sends the pending BEGIN on its own (for a raw read that must run inside the transaction).
  Status SendPendingBegin() {
    if (pending_begin_.empty()) return Status::Ok();
    ResultPtr res(PQexec(conn_, TakePendingBegin().c_str()));
    const ExecStatusType st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return StatusOf(conn_, res.get());
    return Status::Ok();
  }
  // The pending BEGIN as one script, no longer pending.
  std::string TakePendingBegin() {
    std::string script;
    for (const std::string& b : pending_begin_) script += (script.empty() ? "" : "; ") + b;
    pending_begin_.clear();
    return script;
  }
  uint64_t generation() const { return generation_; }
  std::string NextName() { return "ds" + std::to_string(++names_); }
  void set_changes(int64_t n) { changes_ = n; }

 private:
  // Opens a transaction whose first statements, after BEGIN (and, while commits need not be
  // durable, the setting that says so), are `then`. Nothing is sent yet: a transaction's BEGIN
  // costs no round trip of its own (its failure is its first statement's), and one that runs no
  // statement costs none at all.
  Status Begin(std::vector<std::string> then) {
    RETURN_IF_ERROR(EnsureConnected());
    pending_begin_ = {"BEGIN"};
    if (!durable_) pending_begin_.push_back("SET LOCAL synchronous_commit TO OFF");
    for (std::string& t : then) pending_begin_.push_back(std::move(t));
    in_tx_ = true;
    return Status::Ok();
  }

  PGconn* conn_;
  std::string url_;
  uint64_t generation_ = 1;
  uint64_t names_ = 0;
  int64_t changes_ = 0;
  bool in_tx_ = false;
  std::vector<std::string> pending_begin_;
  bool durable_ = true;
};

PostgresCursor::PostgresCursor(PostgresConnection* conn, std::string sql)
    : conn_(conn), sql_(std::move(sql)) {}

PostgresCursor::~PostgresCursor() {
  if (!name_.empty() && prepared_generation_ == conn_->generation() &&
      PQstatus(conn_->raw()) == CONNECTION_OK &&
      PQtransactionStatus(conn_->raw()) == PQTRANS_IDLE) {
    PQclear(PQexec(conn_->raw(), ("DEALLOCATE " + name_).c_str()));
  }
}

Status PostgresCursor::PrepareIfNeeded() {
  bool same = prepared_generation_ == conn_->generation() && !name_.empty() &&
              prepared_types_.size() == types_.size();
  for (size_t i = 0; same && i < types_.size(); ++i) {
    if (types_[i] != 0 && prepared_types_[i] != 0 && types_[i] != prepared_types_[i]) same = false;
    if (types_[i] != 0 && prepared_types_[i] == 0) same = false;
  }
  if (same) return Status::Ok();
  std::string name = conn_->NextName();
  ResultPtr res(PQprepare(conn_->raw(), name.c_str(), sql_.c_str(), static_cast<int>(types_.size()),
                          types_.data()));
  const char* state = res ? PQresultErrorField(res.get(), PG_DIAG_SQLSTATE) : nullptr;
  // Outside a transaction only: a failed prepare aborts the transaction it is in. (The store's
  // queries cast such parameters, `CAST(? AS TEXT) IS NULL`; this is the net under them.)
  if (state != nullptr && !conn_->in_transaction() &&
      (std::strcmp(state, "42P18") == 0 || std::strcmp(state, "42P08") == 0)) {
    // A NULL bound where nothing else tells the parameter's type ("? IS NULL OR x = ?"): the
    // store binds NULL only in place of text, so say text.
    std::vector<Oid> typed = types_;
    for (Oid& t : typed) {
      if (t == 0) t = kTextOid;
    }
    res.reset(PQprepare(conn_->raw(), name.c_str(), sql_.c_str(), static_cast<int>(typed.size()),
                        typed.data()));
    if (res && PQresultStatus(res.get()) == PGRES_COMMAND_OK) types_ = typed;
  }
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    Status st = StatusOf(conn_->raw(), res.get());
    if (st.code() != StatusCode::kInternal) return st;
    return InternalError(st.message() + " (in: " + sql_.substr(0, 300) + ")");
  }
  name_ = std::move(name);
  prepared_types_ = types_;
  prepared_generation_ = conn_->generation();
  return Status::Ok();
}

ResultPtr PostgresCursor::ExecAfterBegin(const std::vector<const char*>& values,
                                         const std::vector<int>& lengths,
                                         const std::vector<int>& formats) {
  // One round trip (a pipeline): the transaction's BEGIN statements, then this one. The first
  // failure is the answer; the statements after it are skipped by the server. The caller rolls
  // back on a failure, as after any failed statement in a transaction.
  PGconn* pg = conn_->raw();
  if (PQenterPipelineMode(pg) == 0) return nullptr;  // the BEGIN stays pending
  const std::vector<std::string> begin = conn_->pending_begin();
  conn_->sent_pending_begin();
  bool sent = true;
  for (const std::string& b : begin) {
    sent = sent && PQsendQueryParams(pg, b.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  }
  sent = sent && PQsendQueryPrepared(pg, name_.c_str(), static_cast<int>(values.size()),
                                     values.data(), lengths.data(), formats.data(), 0) == 1;
  sent = sent && PQpipelineSync(pg) == 1;
  ResultPtr answer;  // this statement's result, or the first failure
  bool failed = !sent;
  // Each query's results end with a null; the sync's result ends the pipeline.
  for (size_t query = 0; sent && query <= begin.size(); ++query) {
    for (;;) {
      ResultPtr r(PQgetResult(pg));
      if (!r) break;
      const ExecStatusType st = PQresultStatus(r.get());
      if (failed) continue;
      if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED || st == PGRES_BAD_RESPONSE) {
        failed = true;
        answer = std::move(r);
      } else if (query == begin.size()) {
        answer = std::move(r);
      }
    }
    if (PQstatus(pg) != CONNECTION_OK) break;
  }
  if (sent && PQstatus(pg) == CONNECTION_OK) {
    ResultPtr sync(PQgetResult(pg));  // PGRES_PIPELINE_SYNC
  }
  if (PQexitPipelineMode(pg) == 0) {
    // Results left unread: a broken connection (PQreset, at the next call after the rollback,
    // leaves pipeline mode), or a send that failed on a connection still up, whose answers are
    // read to the end (a new sync) so that it leaves pipeline mode here.
    if (PQstatus(pg) == CONNECTION_OK && PQpipelineSync(pg) == 1) {
      for (int left = 64; left > 0 && PQstatus(pg) == CONNECTION_OK; --left) {
        ResultPtr r(PQgetResult(pg));
        if (r && PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC && PQexitPipelineMode(pg) == 1) {
          break;
        }
      }
    }
    return nullptr;
  }
  return answer;
}

Result<bool> PostgresCursor::Step() {
  if (!ran_) {
    RETURN_IF_ERROR(conn_->EnsureConnected());
    RETURN_IF_ERROR(PrepareIfNeeded());
    std::vector<const char*> values(values_.size());
    std::vector<int> lengths(values_.size()), formats(values_.size(), 1);
    for (size_t i = 0; i < values_.size(); ++i) {
      if (values_[i]) {
        values[i] = values_[i]->data();
        lengths[i] = static_cast<int>(values_[i]->size());
      }
    }
    if (conn_->pending_begin().empty()) {
      res_.reset(PQexecPrepared(conn_->raw(), name_.c_str(), static_cast<int>(values.size()),
                                values.data(), lengths.data(), formats.data(), 0));
    } else {
      res_ = ExecAfterBegin(values, lengths, formats);
    }
    ran_ = true;
    const ExecStatusType st = res_ ? PQresultStatus(res_.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      Status error = StatusOf(conn_->raw(), res_.get());
      res_.reset();
      return error;
    }
    conn_->set_changes(std::strtoll(PQcmdTuples(res_.get()), nullptr, 10));
  }
  if (!res_) return false;
  ++row_;
  return row_ < PQntuples(res_.get());
}

class PostgresListener : public Listener {
 public:
  PostgresListener(std::string url, std::vector<std::string> channels, NotifyFn on_notify,
                   std::function<void()> on_reconnect)
      : url_(std::move(url)),
        channels_(std::move(channels)),
        on_notify_(std::move(on_notify)),
        on_reconnect_(std::move(on_reconnect)) {}
  ~PostgresListener() override {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    if (conn_ != nullptr) PQfinish(conn_);
  }

  bool healthy() const override { return healthy_.load(); }

  Status Start() {
    RETURN_IF_ERROR(Connect());
    healthy_ = true;
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

 private:
  Status Connect() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = ConnectTo(
        url_, {.name = "datasite-listener", .connect_s = 3, .idle_s = 2, .timeout_ms = 3000});
    if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
      return UnavailableError("database unreachable: " +
                              Trimmed(conn_ ? PQerrorMessage(conn_) : "out of memory"));
    }
    PQsetNoticeProcessor(conn_, IgnoreNotice, nullptr);
    for (const std::string& channel : channels_) {
      ResultPtr res(PQexec(conn_, ("LISTEN " + channel).c_str()));
      if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) return StatusOf(conn_, res.get());
    }
    return Status::Ok();
  }

  // Waits for notifications; every kProbeEvery it sends a query and expects the answer within
  // kProbeDeadline, so that a connection that went silent (a stalled server, a half-open TCP
  // connection, which deliver no error) is found within about a second, not at the kernel's
  // timeout: until then this process would trust caches that may be stale.
  void Run() {
    using Clock = std::chrono::steady_clock;
    constexpr auto kProbeEvery = std::chrono::milliseconds(500);
    constexpr auto kProbeDeadline = std::chrono::milliseconds(1000);
    auto next_probe = Clock::now() + kProbeEvery;
    std::optional<Clock::time_point> probe_sent;
    while (!stopping_) {
      if (!healthy_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (stopping_) break;
        if (Connect().ok()) {
          probe_sent.reset();
          next_probe = Clock::now() + kProbeEvery;
          on_reconnect_();  // first: until it has run, no cache is trusted
          healthy_ = true;
        }
        continue;
      }
      const auto now = Clock::now();
      if (probe_sent && now - *probe_sent > kProbeDeadline) {
        healthy_ = false;  // no answer: the caches stop being trusted at once
        continue;
      }
      if (!probe_sent && now >= next_probe) {
        if (PQsendQuery(conn_, "SELECT 1") == 0) {
          healthy_ = false;
          continue;
        }
        PQflush(conn_);
        probe_sent = now;
      }
      pollfd p{PQsocket(conn_), POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);  // wakes to see stopping_ and the probe's deadline
      if (ready < 0 && errno != EINTR) healthy_ = false;
      if (ready <= 0) continue;
      if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
        healthy_ = false;
        continue;
      }
      // The probe's answer, when it has come whole.
      while (probe_sent && PQisBusy(conn_) == 0) {
        PGresult* r = PQgetResult(conn_);
        if (r == nullptr) {
          probe_sent.reset();
          next_probe = Clock::now() + kProbeEvery;
          break;
        }
        PQclear(r);
      }
      while (PGnotify* n = PQnotifies(conn_)) {
        on_notify_(n->relname, n->extra ? n->extra : "");
        PQfreemem(n);
      }
    }
  }

  const std::string url_;
  const std::vector<std::string> channels_;
  const NotifyFn on_notify_;
  const std::function<void()> on_reconnect_;
  PGconn* conn_ = nullptr;  // used by the thread only, once started
  std::atomic<bool> healthy_{false};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace

std::string ToDollarPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int highest = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // a literal or a quoted identifier, to its closing quote
      size_t end = sql.find(c, i + 1);
      if (end == std::string_view::npos) end = sql.size() - 1;
      out.append(sql.substr(i, end - i + 1));
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {  // a comment, to the line end
      size_t end = sql.find('\n', i);
      if (end == std::string_view::npos) end = sql.size() - 1;
      out.append(sql.substr(i, end - i + 1));
      i = end;
    } else if (c == '?') {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') n = n * 10 + (sql[j++] - '0');
      if (j == i + 1) n = highest + 1;
      highest = std::max(highest, n);
      out += '$';
      out += std::to_string(n);
      i = j - 1;
    } else {
      out += c;
    }
  }
  return out;
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  // scheme://user:password@host/... -> scheme://user:***@host/...
  const size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    const size_t at = out.find('@', scheme + 3);
    const size_t colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out = out.substr(0, colon + 1) + "***" + out.substr(at);
    }
  }
  // Every ...password=VALUE (password, sslpassword) up to the next '&' or space.
  for (size_t from = 0;;) {
    const size_t pw = out.find("password=", from);
    if (pw == std::string::npos) break;
    const size_t value = pw + 9;
    size_t end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
    from = value + 3;
  }
  return out;
}

Result<std::unique_ptr<Listener>> ListenPostgres(const std::string& url,
                                                 std::vector<std::string> channels,
                                                 NotifyFn on_notify,
                                                 std::function<void()> on_reconnect) {
  auto l = std::make_unique<PostgresListener>(url, std::move(channels), std::move(on_notify),
                                              std::move(on_reconnect));
  RETURN_IF_ERROR(l->Start());
  return std::unique_ptr<Listener>(std::move(l));
}

Result<std::unique_ptr<Connection>> OpenPostgres(const std::string& url, bool read_only) {
  PGconn* conn = ConnectTo(
      url, {.name = "datasite", .connect_s = 10, .idle_s = 5, .timeout_ms = 15000}, read_only);
  if (conn == nullptr) return UnavailableError("cannot connect to the database: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    if (msg.find("password authentication failed") != std::string::npos ||
        msg.find("no password supplied") != std::string::npos ||
        msg.find("role \"") != std::string::npos) {
      return PermissionDeniedError("the database refused our credentials (" + RedactUrl(url) +
                                   "): " + msg);
    }
    return UnavailableError("cannot connect to the database at " + RedactUrl(url) + ": " + msg);
  }
  return std::unique_ptr<Connection>(std::make_unique<PostgresConnection>(conn, url));
}

}  // namespace datasite::store::sql
