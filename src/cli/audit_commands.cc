#include "cli/audit_commands.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "cli/session.h"
#include "core/clock.h"
#include "store/audit_log.h"
#include "store/store.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

constexpr int64_t kPage = 1000;

struct Flags {
  CLI::App* audit = nullptr;
  CLI::App* verify = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* prune = nullptr;
  ConnectionFlags connection;
  std::string data_dir;
  std::string database;  // a PostgreSQL URL, read as data_dir's SQLite file is
  std::string head;
  std::string output = "-";
  int64_t after_seq = 0;
  std::string before;
  bool json = false;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

std::string DatabasePath(const std::string& dir) { return dir + "/datasite.db"; }

// The store an offline command reads, read-only: the PostgreSQL database of --database, or the
// SQLite file in --data-dir.
Result<std::unique_ptr<store::Store>> OpenOffline(const Flags& f) {
  if (!f.database.empty()) return store::OpenPostgresStoreReadOnly(f.database);
  return store::OpenSqliteStoreReadOnly(DatabasePath(f.data_dir));
}

// Prints the verdict (as the route's JSON with --json); 0 when the chain verifies, else 1.
int PrintVerdict(const json& v, bool as_json) {
  const bool ok = v.value("ok", false);
  if (as_json) {
    std::cout << v.dump(2) << std::endl;
  } else {
    if (ok) {
      std::cout << "ok: " << v.value("entries", int64_t{0}) << " entries verified";
      if (v.contains("checkpoint_seq") && v["checkpoint_seq"].is_number()) {
        std::cout << " (after the signed checkpoint at seq " << v["checkpoint_seq"].get<int64_t>()
                  << ")";
      }
      std::cout << std::endl;
    } else {
      std::cout << "FAILED";
      if (v.contains("first_bad_seq") && v["first_bad_seq"].is_number()) {
        std::cout << " at seq " << v["first_bad_seq"].get<int64_t>();
      }
      std::cout << ": " << Printable(v.value("reason", std::string())) << std::endl;
    }
    std::cout << "head: seq " << v.value("head_seq", int64_t{0}) << " "
              << Printable(v.value("head", std::string())) << std::endl;
  }
  return ok ? 0 : kExitFailure;
}

std::optional<std::string> Head(const Flags& f) {
  if (f.head.empty()) return std::nullopt;
  return f.head;
}

int VerifyOffline(const Flags& f) {
  auto store = OpenOffline(f);
  if (!store.ok()) return Fail(store.status());
  auto v = store::VerifyAuditLog(**store, Head(f));
  if (!v.ok()) return Fail(v.status());
  return PrintVerdict(store::AuditVerdictJson(*v), f.json);
}

// Writes JSON lines to `out` (a file, or stdout for "-").
int ExportOffline(const Flags& f, std::ostream& out) {
  auto store = OpenOffline(f);
  if (!store.ok()) return Fail(store.status());
  int64_t after = f.after_seq;
  while (true) {
    auto page = (*store)->ListAudit(after, kPage);
    if (!page.ok()) return Fail(page.status());
    for (const auto& e : *page) out << store::AuditEntryJson(e).dump() << "\n";
    if (static_cast<int64_t>(page->size()) < kPage) break;
    after = page->back().seq;
  }
  out.flush();
  return out ? 0 : Fail(InternalError("writing the export failed"));
}

Status ExportOnline(Session& s, const Flags& f, std::ostream& out) {
  int64_t after = f.after_seq;
  while (true) {
    ASSIGN_OR_RETURN(HttpResponse r,
                     s.http().Request("GET", "/api/v1/audit?after_seq=" + std::to_string(after) +
                                                 "&limit=" + std::to_string(kPage)));
    if (r.status / 100 != 2) return s.ErrorFrom(r);
    int64_t n = 0;
    size_t start = 0;
    while (start < r.body.size()) {
      size_t end = r.body.find('\n', start);
      if (end == std::string::npos) end = r.body.size();
      std::string line = r.body.substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;
      json e = json::parse(line, nullptr, false);
      if (e.is_discarded()) return InternalError("the server sent a line that is not JSON");
      after = e.value("seq", after);
      out << line << "\n";
      ++n;
    }
    if (n < kPage) break;
  }
  out.flush();
  return out ? Status::Ok() : InternalError("writing the export failed");
}

// "123" is a seq; "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" a time (UTC).
Result<int64_t> PruneStart(store::Store& store, const std::string& before) {
  if (!before.empty() && before.find_first_not_of("0123456789") == std::string::npos) {
    return std::stoll(before);
  }
  std::tm tm{};
  const char* end = strptime(before.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (end == nullptr || *end != '\0') {
    tm = std::tm{};
    end = strptime(before.c_str(), "%Y-%m-%d", &tm);
  }
  if (end == nullptr || *end != '\0') {
    return InvalidArgumentError(
        "--before takes a seq (a number) or a UTC time "
        "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ), not '" +
        before + "'");
  }
  return store::AuditSeqAtTime(store, static_cast<int64_t>(timegm(&tm)));
}

int PruneOffline(const Flags& f) {
  auto store = store::OpenSqliteStore(DatabasePath(f.data_dir));
  if (!store.ok()) return Fail(store.status());
  auto start = PruneStart(**store, f.before);
  if (!start.ok()) return Fail(start.status(), kExitUsage);
  auto removed = store::PruneAuditLog(**store, *start, static_cast<int64_t>(std::time(nullptr)));
  if (!removed.ok()) return Fail(removed.status());
  auto cp = (*store)->GetAuditCheckpoint();
  if (!cp.ok()) return Fail(cp.status());
  std::cout << "removed " << *removed << " entries";
  if (*cp) std::cout << "; signed checkpoint at seq " << (*cp)->seq << " " << (*cp)->hash;
  std::cout << std::endl;
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.audit = app.add_subcommand("audit", "Verify, export and prune the hash-chained audit log");
  f.audit->require_subcommand(1);

  f.verify = f.audit->add_subcommand(
      "verify", "Check the chain: the first edited, deleted or moved entry, and the head");
  auto* verify_dir =
      f.verify->add_option("--data-dir", f.data_dir,
                           "Verify the database in this storage directory offline (read-only)");
  f.verify
      ->add_option("--database", f.database,
                   "Verify this PostgreSQL database (postgresql://...) directly, read-only; give "
                   "its password by "
                   "PGPASSWORD or ~/.pgpass, not in the URL (command lines are visible to others)")
      ->excludes(verify_dir);
  f.verify->add_option("--head", f.head,
                       "A head printed earlier: fail if it is no longer in the chain (a cut tail)");
  f.verify->add_flag("--json", f.json, "Print the verdict as JSON");
  AddConnectionOptions(f.verify, f.connection);

  f.export_ = f.audit->add_subcommand("export", "Write the entries as JSON lines, oldest first");
  auto* export_dir =
      f.export_->add_option("--data-dir", f.data_dir, "Read this storage directory offline");
  f.export_
      ->add_option("--database", f.database,
                   "Read this PostgreSQL database (postgresql://...) directly, read-only "
                   "(password: PGPASSWORD "
                   "or ~/.pgpass)")
      ->excludes(export_dir);
  f.export_->add_option("--after-seq", f.after_seq, "Only entries after this seq");
  f.export_->add_option("--output,-o", f.output, "File to write ('-': stdout)");
  AddConnectionOptions(f.export_, f.connection);

  f.prune = f.audit->add_subcommand(
      "prune", "Remove the oldest entries (a whole prefix) and keep a signed checkpoint");
  f.prune->add_option("--data-dir", f.data_dir, "The server's storage directory")->required();
  f.prune
      ->add_option("--before", f.before,
                   "Remove entries before this seq, or written before this UTC time "
                   "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)")
      ->required();
}

int RunAuditCommand() {
  Flags& f = GetFlags();
  if (f.audit == nullptr || !f.audit->parsed()) return -1;
  if (f.prune->parsed()) return PruneOffline(f);
  if (f.verify->parsed()) {
    if (!f.data_dir.empty() || !f.database.empty()) return VerifyOffline(f);
    int verdict = 0;
    int rc = WithSession(f.connection, true, [&](Session& s) -> Status {
      std::string target = "/api/v1/audit/verify";
      if (!f.head.empty()) target += "?head=" + UrlEncode(f.head);
      ASSIGN_OR_RETURN(json v, s.Call("GET", target));
      verdict = PrintVerdict(v, f.json);
      return Status::Ok();
    });
    return rc != 0 ? rc : verdict;
  }
  std::ofstream file;
  std::ostream* out = &std::cout;
  if (f.output != "-") {
    file.open(f.output, std::ios::binary | std::ios::trunc);
    if (!file) return Fail(UnavailableError("cannot write " + f.output));
    out = &file;
  }
  if (!f.data_dir.empty() || !f.database.empty()) return ExportOffline(f, *out);
  return WithSession(f.connection, true, [&](Session& s) { return ExportOnline(s, f, *out); });
}

}  // namespace datasite::cli
