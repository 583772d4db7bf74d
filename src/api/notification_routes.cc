// Notifications, the mail settings and password reset.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "core/clock.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::Handler;
using internal::QueryInt;
using internal::Reply;
using internal::Schema;
using internal::SecretReply;
using nlohmann::json;
using services::Principal;

json NotificationJson(const store::Notification& n) {
  json link = nullptr;
  if (!n.link_kind.empty()) link = {{"kind", n.link_kind}, {"id", n.link_id}};
  return {{"id", n.id},
          {"kind", n.kind},
          {"subject", n.subject},
          {"from_id", n.from_id.empty() ? json(nullptr) : json(n.from_id)},
          {"from_name", n.from_name},
          {"status", n.read ? "read" : "unread"},
          {"linked_obj", link},
          {"created_at", FormatIsoTime(n.created_at)}};
}

// The mail settings for admins' eyes: never the password, only whether one is set.
json MailJson(const services::MailConfigView& v) {
  json j = {{"enabled", v.enabled}, {"configured", v.settings.has_value()}};
  if (v.settings) {
    j["email_server"] = v.settings->host;
    j["email_port"] = v.settings->port;
    j["email_security"] = v.settings->security;
    j["email_username"] = v.settings->username;
    j["email_sender"] = v.settings->sender;
    j["base_url"] = v.settings->base_url;
    j["email_password_set"] = v.password_set;
  }
  return j;
}

json ResetJson(const store::PasswordReset& r) {
  return {{"user_id", r.user_id},
          {"email", r.user_email},
          {"requested_by", r.requested_by},
          {"created_at", FormatIsoTime(r.created_at)},
          {"expires_at", FormatIsoTime(r.expires_at)}};
}

Status Missing() { return UnavailableError("notifications are not running on this server"); }

}  // namespace

void AddNotificationRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::Notifications* notes = ctx.notifications;
  services::PasswordResets* resets = ctx.resets;
  const auto kHeavy = http::Lane::kHeavy;
  const char* kSameAnswer =
      "If an account with this email exists, a password reset token was sent to it (or, when "
      "this server sends no mail, its admin can issue one).";

  // --- In-app notifications: each user reads their own ---
  routes->Add("GET", "/api/v1/notifications", Role::kDataScientist, "notifications",
              "The caller's notifications, oldest first.",
              [notes](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(int64_t page, QueryInt(req, "page", 1));
                ASSIGN_OR_RETURN(int64_t page_size, QueryInt(req, "page_size", 1000));
                ASSIGN_OR_RETURN(auto result, notes->List(caller, page, page_size));
                json items = json::array();
                for (const auto& n : result.items) items.push_back(NotificationJson(n));
                return Reply{200, {{"items", items}, {"total", result.total}}, {}};
              });
  routes->Add("GET", "/api/v1/notifications/{id}", Role::kDataScientist, "notifications",
              "One of the caller's notifications.",
              [notes](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(auto n, notes->Get(caller, req.path_params["id"]));
                return Reply{200, NotificationJson(n), {}};
              });
  for (bool read : {true, false}) {
    routes->Add("POST",
                read ? "/api/v1/notifications/{id}/read" : "/api/v1/notifications/{id}/unread",
                Role::kDataScientist, "notifications",
                read ? "Mark one of the caller's notifications read."
                     : "Mark one of the caller's notifications unread.",
                [notes, read](http::Request& req, const Principal& caller) -> Result<Reply> {
                  if (!notes) return Missing();
                  ASSIGN_OR_RETURN(auto n, notes->SetRead(caller, req.path_params["id"], read));
                  return Reply{200, NotificationJson(n), {}};
                });
  }
  routes->Add("GET", "/api/v1/account/notifications", Role::kDataScientist, "notifications",
              "Whether the caller receives notifications by mail.",
              [notes](http::Request&, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(bool wants, notes->WantsMail(caller));
                return Reply{200, {{"email", wants}}, {}};
              });
  for (bool wants : {true, false}) {
    routes->Add("POST",
                wants ? "/api/v1/account/notifications/activate"
                      : "/api/v1/account/notifications/deactivate",
                Role::kDataScientist, "notifications",
                wants ? "Receive notifications by mail (the default)."
                      : "Receive no notifications by mail (in-app ones stay).",
                [notes, wants](http::Request&, const Principal& caller) -> Result<Reply> {
                  if (!notes) return Missing();
                  RETURN_IF_ERROR(notes->SetWantsMail(caller, wants));
                  return Reply{200, {{"email", wants}}, {}};
                });
  }

  // --- Mail settings: admins ---
  routes->Add("GET", "/api/v1/settings/notifications", Role::kAdmin, "settings",
              "The mail settings (never the password).",
              [notes](http::Request&, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(auto view, notes->GetMailConfig(caller));
                return Reply{200, MailJson(view), {}};
              });
  routes->Add(
      "PUT", "/api/v1/settings/notifications", Role::kAdmin, "settings",
      "Set up mail over SMTP and turn notifications by mail on.",
      [notes](http::Request& req, const Principal& caller) -> Result<Reply> {
        if (!notes) return Missing();
        ASSIGN_OR_RETURN(auto body,
                         JsonBody::Parse(req.body, {"email_server", "email_port", "email_security",
                                                    "email_username", "email_password",
                                                    "email_sender", "base_url"}));
        services::MailConfig c;
        ASSIGN_OR_RETURN(c.host, body.RequiredString("email_server"));
        ASSIGN_OR_RETURN(c.sender, body.RequiredString("email_sender"));
        ASSIGN_OR_RETURN(auto port, body.OptionalUnsigned("email_port"));
        if (port) c.port = static_cast<int64_t>(std::min<uint64_t>(*port, 1 << 20));
        ASSIGN_OR_RETURN(auto security, body.OptionalString("email_security"));
        c.security = security.value_or("starttls");
        ASSIGN_OR_RETURN(auto username, body.OptionalString("email_username"));
        c.username = username.value_or("");
        ASSIGN_OR_RETURN(c.password, body.OptionalString("email_password"));
        ASSIGN_OR_RETURN(c.base_url, body.OptionalString("base_url"));
        ASSIGN_OR_RETURN(auto view, notes->EnableMail(caller, c));
        return Reply{200, MailJson(view), {}};
      },
      Schema({{"email_server", "string"},
              {"email_port", "integer"},
              {"email_security", "string"},
              {"email_username", "string"},
              {"email_password", "string"},
              {"email_sender", "string"},
              {"base_url", "string"}},
             {"email_server", "email_sender"}));
  routes->Add("DELETE", "/api/v1/settings/notifications", Role::kAdmin, "settings",
              "Turn notifications by mail off (the settings are kept).",
              [notes](http::Request&, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(auto view, notes->DisableMail(caller));
                return Reply{200, MailJson(view), {}};
              });
  routes->Add(
      "POST", "/api/v1/settings/notifications/test", Role::kAdmin, "settings",
      "Queue a test mail (to the caller unless 'to' is given).",
      [notes](http::Request& req, const Principal& caller) -> Result<Reply> {
        if (!notes) return Missing();
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"to"}));
        ASSIGN_OR_RETURN(auto to, body.OptionalString("to"));
        RETURN_IF_ERROR(notes->SendTestEmail(caller, to.value_or("")));
        return Reply{200, {{"message", "A test mail was queued; it goes out within seconds."}}, {}};
      },
      Schema({{"to", "string"}}));
  routes->Add("GET", "/api/v1/settings/notifications/outbox", Role::kAdmin, "settings",
              "The mail outbox: recipients, subjects, attempts and errors (never bodies).",
              [notes](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!notes) return Missing();
                ASSIGN_OR_RETURN(int64_t limit, QueryInt(req, "limit", 1000));
                ASSIGN_OR_RETURN(auto mails,
                                 notes->Outbox(caller, std::clamp<int64_t>(limit, 1, 10000)));
                json items = json::array();
                for (const auto& m : mails) {
                  items.push_back({{"seq", m.seq},
                                   {"recipient", m.recipient},
                                   {"kind", m.kind},
                                   {"subject", m.subject},
                                   {"attempts", m.attempts},
                                   {"last_error", m.last_error},
                                   {"sent", m.sent_at != 0}});
                }
                return Reply{200, {{"items", items}}, {}};
              });

  // --- Password reset ---
  routes->Add(
      "POST", "/api/v1/auth/forgot_password", Role::kNone, "auth",
      "Ask for a password reset token by mail; the same answer whether the account exists or not.",
      [resets, kSameAnswer](http::Request& req, const Principal&) -> Result<Reply> {
        if (!resets) return Missing();
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"email"}));
        ASSIGN_OR_RETURN(auto email, body.RequiredString("email"));
        RETURN_IF_ERROR(resets->Forgot(email, req.remote_address));
        return Reply{200, {{"message", kSameAnswer}}, {}};
      },
      Schema({{"email", "string"}}, {"email"}));
  routes->Add(
      "POST", "/api/v1/auth/reset_password", Role::kNone, "auth",
      "Set a new password with a reset token; every session of the user ends.",
      [resets](http::Request& req, const Principal&) -> Result<Reply> {
        if (!resets) return Missing();
        ASSIGN_OR_RETURN(auto body, JsonBody::Parse(req.body, {"token", "new_password"}));
        ASSIGN_OR_RETURN(auto token, body.RequiredString("token"));
        ASSIGN_OR_RETURN(auto password, body.RequiredString("new_password"));
        RETURN_IF_ERROR(resets->Reset(token, password, req.remote_address));
        return Reply{200, {{"message", "Password updated; log in with the new password."}}, {}};
      },
      Schema({{"token", "string"}, {"new_password", "string"}}, {"token", "new_password"}), kHeavy);
  routes->Add("POST", "/api/v1/users/{id}/password_reset", Role::kAdmin, "users",
              "Issue a password reset token for a user (returned to the admin; mailed to the user "
              "when mail is on).",
              [resets](http::Request& req, const Principal& caller) -> Result<Reply> {
                if (!resets) return Missing();
                ASSIGN_OR_RETURN(auto token, resets->Request(caller, req.path_params["id"]));
                return SecretReply({{"token", token}}, 201);
              });
  routes->Add("GET", "/api/v1/password_resets", Role::kAdmin, "users",
              "Password resets not used and not expired (never their tokens).",
              [resets](http::Request&, const Principal& caller) -> Result<Reply> {
                if (!resets) return Missing();
                ASSIGN_OR_RETURN(auto pending, resets->Pending(caller));
                json items = json::array();
                for (const auto& r : pending) items.push_back(ResetJson(r));
                return Reply{200, {{"items", items}}, {}};
              });
}

}  // namespace datasite::api
