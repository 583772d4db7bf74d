#include "http/tls.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace datasite::http {
namespace {

namespace ssl = boost::asio::ssl;

// OpenSSL's reason for the last failure on this thread, emptying its error queue.
std::string OpenSslError() {
  std::string reason;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    reason = buf;  // the last one is the most specific
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

// Whether a PEM file holds an encrypted key (PKCS#8's "ENCRYPTED PRIVATE KEY", or the older
// "Proc-Type: 4,ENCRYPTED" header).
bool IsEncryptedPem(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < 4 && std::getline(in, line); ++i) {
    if (line.find("ENCRYPTED") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

Status CheckKeyFilePermissions(const std::string& key_file) {
  struct stat st;
  if (::stat(key_file.c_str(), &st) != 0) {
    const int err = errno;
    std::string reason = std::strerror(err);
    if (err == ENOENT) return NotFoundError("TLS key file " + key_file + ": " + reason);
    return PermissionDeniedError("cannot read TLS key file " + key_file + ": " + reason);
  }
  // Whoever owns the file may read or replace it: this server's user, or root.
  if (st.st_uid != ::geteuid() && st.st_uid != 0) {
    return PermissionDeniedError("TLS key file " + key_file + " belongs to user " +
                                 std::to_string(st.st_uid) +
                                 ", who may read or replace it: it must belong to the user the "
                                 "server runs as (or root)");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDeniedError("TLS key file " + key_file + " has mode " + mode +
                                 ": its group or others may use it, and whoever reads it can "
                                 "impersonate this server; make it readable by its owner only "
                                 "(chmod 600 " +
                                 key_file + ")");
  }
  return Status::Ok();
}

Result<std::shared_ptr<ssl::context>> NewServerTlsContext(const std::string& cert_file,
                                                          const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return InvalidArgumentError("TLS needs both a certificate file and a key file");
  }
  RETURN_IF_ERROR(CheckKeyFilePermissions(key_file));
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return InternalError("cannot configure TLS: " + OpenSslError());
  }
  // Compression leaks secrets through lengths (CRIME); renegotiation started by a client costs the
  // server a handshake per request for nothing.
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // An encrypted key would make OpenSSL ask for its passphrase on the terminal, which blocks the
  // start (or, at a SIGHUP reload, the signal loop): no passphrase is given, so loading fails.
  SSL_CTX_set_default_passwd_cb(native, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    return InvalidArgumentError("cannot use TLS certificate file " + cert_file + ": " +
                                OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // A key pair from another certificate is the likely mistake at a renewal: say so plainly.
    const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    std::string reason = OpenSslError();
    if (!mismatch && IsEncryptedPem(key_file)) {
      reason += " (the key is encrypted: give the server one without a passphrase)";
    }
    if (mismatch) {
      return InvalidArgumentError("TLS key file " + key_file + " does not match certificate " +
                                  cert_file);
    }
    return InvalidArgumentError("cannot use TLS key file " + key_file + ": " + reason);
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return InvalidArgumentError("TLS key file " + key_file + " does not match certificate " +
                                cert_file + ": " + OpenSslError());
  }
  return ctx;
}

}  // namespace datasite::http
