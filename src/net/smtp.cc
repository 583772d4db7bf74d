#include "net/smtp.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string_view>

#include "net/curl_init.h"

namespace datasite::net {
namespace {

// A header value on one line: CR, LF and other control characters become spaces.
std::string OneLine(std::string_view v) {
  std::string out(v);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

std::string Base64(std::string_view in, bool wrap) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t line = 0;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
    line += 4;
    if (wrap && line >= 76) {
      out += "\r\n";
      line = 0;
    }
  }
  if (wrap && line > 0) out += "\r\n";
  return out;
}

bool IsAscii(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return (c & 0x80) == 0; });
}

// The address between angle brackets, for the envelope.
std::string Envelope(const std::string& address) { return "<" + OneLine(address) + ">"; }

struct Upload {
  std::string_view data;
  size_t offset = 0;
};

size_t ReadBody(char* buffer, size_t size, size_t count, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t n = std::min(size * count, up->data.size() - up->offset);
  std::memcpy(buffer, up->data.data() + up->offset, n);
  up->offset += n;
  return n;
}

class CurlMailTransport : public MailTransport {
 public:
  CurlMailTransport() { InitCurlOnce(); }

  Status Send(const SmtpServer& server, const MailMessage& message) override {
    CURL* curl = curl_easy_init();
    if (!curl) return InternalError("smtp: cannot start libcurl");
    char id[64];
    std::snprintf(id, sizeof(id), "<%lld.%p@datasite>", static_cast<long long>(std::time(nullptr)),
                  static_cast<void*>(curl));
    const std::string body = FormatMessage(message, std::time(nullptr), id);
    Upload upload{body};
    const std::string scheme = server.security == SmtpSecurity::kTls ? "smtps://" : "smtp://";
    const std::string url = scheme + server.host + ":" + std::to_string(server.port);
    const std::string from = Envelope(message.from);
    curl_slist* rcpt = curl_slist_append(nullptr, Envelope(message.to).c_str());
    char error[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from.c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(server.timeout_ms));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<int64_t>(server.timeout_ms, 10'000)));
    if (server.security == SmtpSecurity::kStartTls) {
      curl_easy_setopt(curl, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
    }
    if (!server.username.empty()) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, server.username.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, server.password.c_str());
    }
    CURLcode rc = curl_easy_perform(curl);
    long response = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    if (rc == CURLE_OK) return Status::Ok();
    // The error text names the server and the SMTP reply, never the credentials.
    std::string what = error[0] ? error : curl_easy_strerror(rc);
    if (rc == CURLE_SEND_ERROR && response >= 500 && response < 600) {
      return InvalidArgumentError("smtp: refused (" + std::to_string(response) + "): " + what);
    }
    return UnavailableError("smtp: " + what);
  }
};

}  // namespace

Result<SmtpSecurity> ParseSmtpSecurity(const std::string& name) {
  if (name == "starttls") return SmtpSecurity::kStartTls;
  if (name == "tls") return SmtpSecurity::kTls;
  if (name == "none") return SmtpSecurity::kNone;
  return InvalidArgumentError("security must be starttls, tls or none");
}

std::string FormatMessage(const MailMessage& m, int64_t unix_seconds,
                          const std::string& message_id) {
  char date[64];
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  const std::string subject = OneLine(m.subject);
  std::string out;
  out += "Date: " + std::string(date) + "\r\n";
  out += "From: " + Envelope(m.from) + "\r\n";
  out += "To: " + Envelope(m.to) + "\r\n";
  out += "Message-ID: " + OneLine(message_id) + "\r\n";
  out += "Subject: " + (IsAscii(subject) ? subject : "=?UTF-8?B?" + Base64(subject, false) + "?=") +
         "\r\n";
  out += "MIME-Version: 1.0\r\n";
  const std::string boundary = "datasite-alternative-boundary";
  auto part = [](const char* type, const std::string& text) {
    return std::string("Content-Type: ") + type +
           "; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Base64(text, true);
  };
  if (m.html.empty()) {
    out += part("text/plain", m.text);
    return out;
  }
  out += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n\r\n";
  out += "--" + boundary + "\r\n" + part("text/plain", m.text);
  out += "--" + boundary + "\r\n" + part("text/html", m.html);
  out += "--" + boundary + "--\r\n";
  return out;
}

std::unique_ptr<MailTransport> NewCurlMailTransport() {
  return std::make_unique<CurlMailTransport>();
}

}  // namespace datasite::net
