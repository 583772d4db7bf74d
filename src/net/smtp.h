// Outgoing mail over SMTP (libcurl). The first piece of the outgoing-network module: outgoing HTTP
// (webhooks, the gateway) will live beside it and share its libcurl set-up.
#ifndef DATASITE_NET_SMTP_H_
#define DATASITE_NET_SMTP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace datasite::net {

enum class SmtpSecurity {
  kStartTls,  // smtp:// then STARTTLS, required (CURLUSESSL_ALL)
  kTls,       // smtps://: TLS from the first byte
  kNone,      // plain text: for a relay on this machine only (the caller checks)
};

// "starttls" | "tls" | "none"; nullopt-like kInvalidArgument otherwise.
Result<SmtpSecurity> ParseSmtpSecurity(const std::string& name);

struct SmtpServer {
  std::string host;
  int64_t port = 587;
  SmtpSecurity security = SmtpSecurity::kStartTls;
  std::string username;  // "" sends no AUTH
  std::string password;  // a secret: never logged
  int64_t timeout_ms = 20'000;
};

struct MailMessage {
  std::string from;  // an address
  std::string to;    // an address
  std::string subject;
  std::string text;  // the text/plain part
  std::string html;  // the text/html part; "" sends text only
};

// The RFC 5322 message for `m`: headers (CR and LF removed from their values, a non-ASCII subject
// encoded) and a multipart/alternative body in base64.
std::string FormatMessage(const MailMessage& m, int64_t unix_seconds,
                          const std::string& message_id);

// Sends mail. Blocks for the whole SMTP exchange, so never call it on a request thread.
// Safe for concurrent use.
class MailTransport {
 public:
  virtual ~MailTransport() = default;
  // kUnavailable when the server can't be reached or refuses (worth a retry); kInvalidArgument
  // for an address it refuses.
  virtual Status Send(const SmtpServer& server, const MailMessage& message) = 0;
};

std::unique_ptr<MailTransport> NewCurlMailTransport();

}  // namespace datasite::net

#endif  // DATASITE_NET_SMTP_H_
