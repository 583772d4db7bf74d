// What hash-chaining the audit log costs: N appends through the store's AppendAudit (read the
// head, hash, insert, in one transaction) against N plain inserts of the same rows with no chain
// (the log before the chain), each as its own durable transaction (synchronous=FULL, as the
// server runs) and all N inside one transaction (the hashing and the head read without the
// fsyncs). Prints the median per-append microseconds of R runs and the ratios.
//   build/bench/audit_chain [N=500] [R=5] [DIR=/tmp]
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "store/store.h"

namespace {

using datasite::store::AuditEvent;
using datasite::store::Store;
using Clock = std::chrono::steady_clock;

AuditEvent Event(int i) {
  return {1700000000 + i, "user:2b0e6f5c-5d4e-4a8a-9d3c-1f2e3d4c5b6a", "request.approve",
          "request:7c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f", "code:" + std::to_string(i)};
}

std::string FreshDir(const std::string& base) {
  std::string tmpl = base + "/audit_bench_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) std::exit(1);
  return tmpl;
}

// Microseconds per append through the store (the chain).
double Chained(const std::string& base, int n, bool one_tx) {
  std::string dir = FreshDir(base);
  auto store = datasite::store::OpenSqliteStore(dir + "/datasite.db");
  if (!store.ok()) std::exit(1);
  (void)(*store)->PutIdentity({"bench-server", std::string(32, 'k'), std::string(64, 's'), 0});
  auto start = Clock::now();
  if (one_tx) {
    (void)(*store)->InTransaction([&](Store& tx) {
      for (int i = 0; i < n; ++i) (void)tx.AppendAudit(Event(i));
      return datasite::Status::Ok();
    });
  } else {
    for (int i = 0; i < n; ++i) (void)(*store)->AppendAudit(Event(i));
  }
  double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
  store->reset();
  std::filesystem::remove_all(dir);
  return us;
}

// Microseconds per append as the log was before the chain: one prepared INSERT, no head read, no
// hash, on a database made by the same store (same schema and pragmas).
double Plain(const std::string& base, int n, bool one_tx) {
  std::string dir = FreshDir(base);
  std::string path = dir + "/datasite.db";
  {
    auto store = datasite::store::OpenSqliteStore(path);
    if (!store.ok()) std::exit(1);
  }
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(
      db,
      "INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, "
      "?, ?)",
      -1, &st, nullptr);
  auto start = Clock::now();
  if (one_tx) sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  for (int i = 0; i < n; ++i) {
    AuditEvent e = Event(i);
    if (!one_tx) sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    sqlite3_bind_int64(st, 1, e.at);
    sqlite3_bind_text(st, 2, e.actor.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, e.action.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, e.target.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, e.detail.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_step(st);
    sqlite3_reset(st);
    if (!one_tx) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  if (one_tx) sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / n;
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::filesystem::remove_all(dir);
  return us;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 500;
  int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string base = argc > 3 ? argv[3] : "/tmp";
  for (bool one_tx : {false, true}) {
    std::vector<double> plain, chained;
    for (int r = 0; r < runs; ++r) {  // interleaved, so drift in the machine hits both alike
      plain.push_back(Plain(base, n, one_tx));
      chained.push_back(Chained(base, n, one_tx));
    }
    double p = Median(plain), c = Median(chained);
    std::printf(
        "%s: plain %.1f us/append, chained %.1f us/append, ratio %.2fx (median of %d runs "
        "of %d)\n",
        one_tx ? "one transaction" : "own transaction each", p, c, c / p, runs, n);
  }
  return 0;
}
