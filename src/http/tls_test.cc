// The server's TLS context: which key files are refused, and which protocols and options it allows.
#include "http/tls.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio/ssl.hpp>

#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "http/tls_test_util.h"

namespace datasite::http {
namespace {

// A fresh certificate and key per test (dir_, cert_, key_).
class TlsContextTest : public TlsFilesTest {};

TEST_F(TlsContextTest, OwnerOnlyKeyIsAccepted) {
  auto ctx = NewServerTlsContext(cert_, key_);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
}

TEST_F(TlsContextTest, KeyReadableByGroupIsRefusedSayingWhy) {
  ::chmod(key_.c_str(), 0640);
  auto ctx = NewServerTlsContext(cert_, key_);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(ctx.status().message().find("mode 0640"), std::string::npos) << ctx.status().message();
  EXPECT_NE(ctx.status().message().find("chmod 600"), std::string::npos) << ctx.status().message();
}

TEST_F(TlsContextTest, KeyReadableByOthersIsRefused) {
  ::chmod(key_.c_str(), 0604);
  EXPECT_EQ(CheckKeyFilePermissions(key_).code(), StatusCode::kPermissionDenied);
}

TEST_F(TlsContextTest, KeyOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "giving a file away needs root";
  ASSERT_EQ(::chown(key_.c_str(), 65534, 65534), 0);
  Status st = CheckKeyFilePermissions(key_);
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("belongs to user 65534"), std::string::npos) << st.message();
}

TEST_F(TlsContextTest, EncryptedKeyIsRefusedWithoutAskingForItsPassphrase) {
  const std::string enc = dir_ + "/enc.pem";
  const std::string cmd =
      "openssl pkey -in " + key_ + " -aes256 -passout pass:secret -out " + enc + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "no openssl command";
  ::chmod(enc.c_str(), 0600);
  auto ctx = NewServerTlsContext(cert_, enc);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("without a passphrase"), std::string::npos)
      << ctx.status().message();
}

TEST_F(TlsContextTest, MissingKeyIsNotFound) {
  EXPECT_EQ(CheckKeyFilePermissions(dir_ + "/none.pem").code(), StatusCode::kNotFound);
}

TEST_F(TlsContextTest, KeyOfAnotherCertificateIsRefused) {
  ASSERT_TRUE(WriteSelfSignedForTest(dir_ + "/other.pem", dir_ + "/other.key"));
  auto ctx = NewServerTlsContext(dir_ + "/other.pem", key_);
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("does not match"), std::string::npos)
      << ctx.status().message();
}

TEST_F(TlsContextTest, GarbageCertificateIsRefusedNamingTheFile) {
  std::ofstream(dir_ + "/bad.pem") << "not a certificate\n";
  auto ctx = NewServerTlsContext(dir_ + "/bad.pem", key_);
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ctx.status().message().find("bad.pem"), std::string::npos) << ctx.status().message();
}

TEST_F(TlsContextTest, OnlyTls12AndLaterWithoutCompressionOrRenegotiation) {
  auto ctx = NewServerTlsContext(cert_, key_);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  SSL_CTX* native = (*ctx)->native_handle();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(native), TLS1_2_VERSION);
  const uint64_t options = SSL_CTX_get_options(native);
  EXPECT_TRUE(options & SSL_OP_NO_COMPRESSION);
  EXPECT_TRUE(options & SSL_OP_NO_RENEGOTIATION);
}

TEST_F(TlsContextTest, Tls12OffersOnlyEcdheWithAead) {
  auto ctx = NewServerTlsContext(cert_, key_);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  SSL* ssl = SSL_new((*ctx)->native_handle());
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl);
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    // TLS 1.3 suites name no key exchange (it is always ephemeral), and all are AEAD.
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;
    std::string cipher_name = SSL_CIPHER_get_name(c);
    EXPECT_EQ(SSL_CIPHER_get_kx_nid(c), NID_kx_ecdhe) << cipher_name;
    EXPECT_TRUE(SSL_CIPHER_is_aead(c)) << cipher_name;
  }
  SSL_free(ssl);
}

}  // namespace
}  // namespace datasite::http
