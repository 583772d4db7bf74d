#include "net/smtp.h"

#include <gtest/gtest.h>

namespace datasite::net {
namespace {

TEST(SmtpTest, HeaderValuesCannotInjectHeaders) {
  MailMessage m{"ds@example.org", "a@example.org\r\nBcc: evil@example.org",
                "Hi\r\nBcc: evil@example.org", "body", ""};
  std::string out = FormatMessage(m, 0, "<1@x>");
  EXPECT_EQ(out.find("\r\nBcc:"), std::string::npos);
  EXPECT_EQ(out.find("\nBcc:"), std::string::npos);
}

TEST(SmtpTest, NonAsciiSubjectIsEncoded) {
  MailMessage m{"ds@example.org", "a@example.org", "Grüße", "body", "<p>body</p>"};
  std::string out = FormatMessage(m, 0, "<1@x>");
  EXPECT_NE(out.find("Subject: =?UTF-8?B?R3LDvMOfZQ==?="), std::string::npos);
  EXPECT_NE(out.find("multipart/alternative"), std::string::npos);
  EXPECT_NE(out.find("text/html"), std::string::npos);
}

TEST(SmtpTest, ParseSecurity) {
  EXPECT_EQ(*ParseSmtpSecurity("starttls"), SmtpSecurity::kStartTls);
  EXPECT_EQ(*ParseSmtpSecurity("tls"), SmtpSecurity::kTls);
  EXPECT_EQ(*ParseSmtpSecurity("none"), SmtpSecurity::kNone);
  EXPECT_FALSE(ParseSmtpSecurity("ssl").ok());
}

TEST(SmtpTest, UnreachableServerIsUnavailable) {
  auto transport = NewCurlMailTransport();
  // Port 1 on loopback: nothing listens there.
  Status st = transport->Send({"127.0.0.1", 1, SmtpSecurity::kNone, "", "", 2000},
                              {"ds@example.org", "a@example.org", "s", "t", ""});
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace datasite::net
