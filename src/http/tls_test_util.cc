#include "http/tls_test_util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>

namespace datasite::http {

bool WriteSelfSignedForTest(const std::string& cert, const std::string& key) {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x509 = X509_new();
  bool ok = pkey != nullptr && x509 != nullptr;
  if (ok) {
    X509_set_version(x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x509), 1);
    X509_gmtime_adj(X509_getm_notBefore(x509), 0);
    X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
    X509_set_pubkey(x509, pkey);
    X509_NAME* name = X509_get_subject_name(x509);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(x509, name);
    ok = X509_sign(x509, pkey, EVP_sha256()) > 0;
  }
  FILE* f = ok ? std::fopen(cert.c_str(), "w") : nullptr;
  ok = f != nullptr && PEM_write_X509(f, x509) == 1;
  if (f != nullptr) std::fclose(f);
  f = ok ? std::fopen(key.c_str(), "w") : nullptr;
  ok = f != nullptr && PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (f != nullptr) std::fclose(f);
  X509_free(x509);
  EVP_PKEY_free(pkey);
  return ok && ::chmod(key.c_str(), 0600) == 0;
}

void TlsFilesTest::SetUp() {
  char tmpl[] = "/tmp/tls_test_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  dir_ = tmpl;
  cert_ = dir_ + "/cert.pem";
  key_ = dir_ + "/key.pem";
  ASSERT_TRUE(WriteSelfSignedForTest(cert_, key_));
}

void TlsFilesTest::TearDown() { std::filesystem::remove_all(dir_); }

}  // namespace datasite::http
