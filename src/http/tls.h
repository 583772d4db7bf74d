// The server side of TLS: an OpenSSL context built from a certificate chain and a private key, with
// modern protocols and ciphers only. Used by HttpServer; Boost.Asio's ssl headers stay in .cc
// files.
#ifndef DATASITE_HTTP_TLS_H_
#define DATASITE_HTTP_TLS_H_

#include <memory>
#include <string>

#include "core/status.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace datasite::http {

// The TLS 1.2 cipher suites offered: ECDHE key exchange with an AEAD cipher only (forward secrecy,
// no CBC). TLS 1.3 keeps OpenSSL's default suites, which are all AEAD.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// kPermissionDenied when `key_file` may be read or written by its group or by others (as ssh
// refuses such a private key): anyone who can read it can impersonate the server. kNotFound when
// it is missing.
Status CheckKeyFilePermissions(const std::string& key_file);

// A server context: TLS 1.2 and 1.3 only, kTls12Ciphers, no compression, no renegotiation, with the
// PEM certificate chain `cert_file` (the server's certificate first) and the PEM key `key_file`,
// which must match it and pass CheckKeyFilePermissions. kInvalidArgument (or the permission
// check's error) saying which file is wrong and why. The context is immutable once returned; a
// reload builds a new one.
Result<std::shared_ptr<boost::asio::ssl::context>> NewServerTlsContext(const std::string& cert_file,
                                                                       const std::string& key_file);

}  // namespace datasite::http

#endif  // DATASITE_HTTP_TLS_H_
