// Test helpers for the TLS tests (tls_test.cc, server_tls_test.cc): a self-signed certificate and
// its key written as PEM files, and a fixture that gives each test a fresh pair in its own folder.
#ifndef DATASITE_HTTP_TLS_TEST_UTIL_H_
#define DATASITE_HTTP_TLS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <string>

namespace datasite::http {

// Writes a new self-signed P-256 certificate for 127.0.0.1 ("localhost") to `cert` and its key
// to `key` (mode 0600); false when OpenSSL or the file system fails.
bool WriteSelfSignedForTest(const std::string& cert, const std::string& key);

// Fixture: each test gets a temporary folder `dir_` holding `cert_` (cert.pem) and `key_`
// (key.pem, mode 0600), a fresh self-signed pair; the folder is removed after the test.
// Subclasses that override SetUp/TearDown call these first/last. Not thread-safe.
class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string dir_, cert_, key_;
};

}  // namespace datasite::http

#endif  // DATASITE_HTTP_TLS_TEST_UTIL_H_
