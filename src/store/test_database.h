// For tests: the database a test runs against, on the engine the test run names. By default a
// fresh SQLite file in a temporary directory; with DATASITE_TEST_ENGINE=postgres a fresh database
// on the PostgreSQL server named by DATASITE_TEST_POSTGRES_URL (scripts/pg.sh starts one), created
// here and dropped at the end. One suite, run once per engine (see src/store/CMakeLists.txt).
#ifndef DATASITE_STORE_TEST_DATABASE_H_
#define DATASITE_STORE_TEST_DATABASE_H_

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "store/store.h"

namespace datasite::store {

inline bool TestEngineIsPostgres() {
  const char* e = std::getenv("DATASITE_TEST_ENGINE");
  return e != nullptr && std::string(e) == "postgres";
}

class TestDatabase {
 public:
  TestDatabase() {
    std::string tmpl = ::testing::TempDir() + "datasite_test_XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    if (!TestEngineIsPostgres()) {
      location_ = dir_ + "/datasite.db";
      return;
    }
    const char* url = std::getenv("DATASITE_TEST_POSTGRES_URL");
    if (url == nullptr || *url == '\0') {
      ADD_FAILURE() << "DATASITE_TEST_ENGINE=postgres needs DATASITE_TEST_POSTGRES_URL: start a "
                       "server with `bash scripts/pg.sh start DIR` and export the URL it prints";
      return;
    }
    admin_url_ = url;
    static std::atomic<int> counter{0};
    std::random_device rd;
    name_ = "t" + std::to_string(getpid()) + "_" + std::to_string(++counter) + "_" +
            std::to_string(rd() % 1000000);
    if (!Admin("CREATE DATABASE " + name_)) return;
    // The admin URL with its database name replaced by ours.
    std::string base = admin_url_;
    std::string query;
    if (size_t q = base.find('?'); q != std::string::npos) {
      query = base.substr(q);
      base.resize(q);
    }
    const size_t slash = base.find('/', base.find("://") + 3);
    location_ = (slash == std::string::npos ? base : base.substr(0, slash)) + "/" + name_ + query;
  }

  ~TestDatabase() {
    if (!name_.empty()) Admin("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  bool postgres() const { return !admin_url_.empty(); }
  // The SQLite file or the PostgreSQL URL.
  const std::string& location() const { return location_; }
  // A temporary directory of the test's own, removed at the end.
  const std::string& dir() const { return dir_; }

  // Runs `sql` (one or more statements) on the database behind the store's back, as another
  // program could; a failure fails the test.
  void Run(const std::string& sql) const {
    if (postgres()) {
      PGconn* c = PQconnectdb(location_.c_str());
      PGresult* r = PQexec(c, sql.c_str());
      EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << sql << ": " << PQresultErrorMessage(r);
      PQclear(r);
      PQfinish(c);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(location_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  Result<std::unique_ptr<Store>> Open() const {
    if (postgres()) return OpenPostgresStore(location_);
    return OpenSqliteStore(location_);
  }

 private:
  bool Admin(const std::string& sql) {
    PGconn* c = PQconnectdb(admin_url_.c_str());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
      PGresult* r = PQexec(c, sql.c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      if (!ok) ADD_FAILURE() << sql << ": " << PQresultErrorMessage(r);
      PQclear(r);
    } else {
      ADD_FAILURE() << "cannot reach the test PostgreSQL: " << PQerrorMessage(c);
    }
    PQfinish(c);
    return ok;
  }

  std::string dir_;
  std::string location_;
  std::string admin_url_;
  std::string name_;
};

}  // namespace datasite::store

#endif  // DATASITE_STORE_TEST_DATABASE_H_
