#include "cli/admin_commands.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

// The server's largest page of users.
constexpr int64_t kUserPageSize = 1000;

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* users = nullptr;
  CLI::App* users_list = nullptr;
  CLI::App* users_create = nullptr;
  CLI::App* set_role = nullptr;
  CLI::App* users_delete = nullptr;

  CLI::App* settings = nullptr;
  CLI::App* settings_show = nullptr;
  CLI::App* settings_set = nullptr;

  ConnectionFlags connection;  // on every command here

  bool json = false;
  std::string search;
  std::string user;  // an id or an email
  std::string role;
  std::string name;
  std::string email;
  std::string user_password;
  bool user_password_stdin = false;
  std::string institution;
  std::string website;
  std::string field;
  std::string value;
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

const std::vector<std::string> kRoles = {"guest", "data_scientist", "data_owner", "admin"};

// The server's warning about a weak password it accepted (a development server), on stderr.
void PrintWarning(const json& answer) {
  if (!Str(answer, "warning").empty()) {
    std::cerr << "warning: " << Printable(Str(answer, "warning")) << std::endl;
  }
}

// The id of the user named by `id_or_email`: an email is looked up among the users.
Result<std::string> UserId(Session& s, const std::string& id_or_email) {
  if (id_or_email.find('@') == std::string::npos) return id_or_email;
  ASSIGN_OR_RETURN(json answer,
                   s.ListAll("/api/v1/users", "search=" + UrlEncode(id_or_email), kUserPageSize));
  for (const auto& u : Field(answer, "items")) {
    if (Str(u, "email") == id_or_email) return Str(u, "id");
  }
  return NotFoundError("no user with the email " + id_or_email);
}

Status ListUsers(Session& s, const Flags& f) {
  std::string query;
  if (!f.search.empty()) query = "search=" + UrlEncode(f.search);
  ASSIGN_OR_RETURN(json answer, s.ListAll("/api/v1/users", query, kUserPageSize));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& u : Field(answer, "items")) {
    rows.push_back(
        {Str(u, "id"), Str(u, "email"), Str(u, "name"), Str(u, "role"), Str(u, "created_at")});
  }
  PrintTable({"ID", "EMAIL", "NAME", "ROLE", "CREATED"}, rows);
  return Status::Ok();
}

Status CreateUser(Session& s, const Flags& f) {
  std::string password = f.user_password;
  if (f.user_password_stdin) {
    if (!std::getline(std::cin, password)) {
      return InvalidArgumentError("--user-password-stdin: no line on standard input");
    }
  }
  json body = {{"name", f.name}, {"email", f.email}, {"password", password}};
  if (!f.role.empty()) body["role"] = f.role;
  if (!f.institution.empty()) body["institution"] = f.institution;
  if (!f.website.empty()) body["website"] = f.website;
  ASSIGN_OR_RETURN(json u, s.Call("POST", "/api/v1/users", &body));
  std::printf("Created user %s: %s (%s)\n", Printable(Str(u, "id")).c_str(),
              Printable(Person(u)).c_str(), Printable(Str(u, "role")).c_str());
  std::fflush(stdout);
  PrintWarning(u);
  return Status::Ok();
}

Status SetRole(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(std::string id, UserId(s, f.user));
  json body = {{"role", f.role}};
  ASSIGN_OR_RETURN(json u, s.Call("PATCH", "/api/v1/users/" + UrlEncode(id), &body));
  std::printf("User %s is now %s\n", Printable(Person(u)).c_str(),
              Printable(Str(u, "role")).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status DeleteUser(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(std::string id, UserId(s, f.user));
  ASSIGN_OR_RETURN(json answer, s.Call("DELETE", "/api/v1/users/" + UrlEncode(id)));
  std::printf("Deleted user %s\n", Printable(id).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

// A setting's value as text: strings as they are, anything else as JSON.
std::string ValueText(const json& v) {
  return v.is_string() ? v.get<std::string>()
                       : v.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status ShowSettings(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json settings, s.Call("GET", "/api/v1/settings"));
  if (f.json) {
    std::cout << Dump(settings) << std::endl;
    return Status::Ok();
  }
  std::vector<std::vector<std::string>> rows;
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    rows.push_back({it.key(), OneLine(ValueText(it.value()), 80)});
  }
  PrintTable({"FIELD", "VALUE"}, rows);
  return Status::Ok();
}

// VALUE for FIELD as the server wants it: a boolean where the setting is one now, else the text.
Result<json> SettingValue(const json& current, const std::string& field, const std::string& value) {
  const json& now = Field(current, field.c_str());
  if (!now.is_boolean()) return json(value);
  if (value == "true" || value == "yes" || value == "on" || value == "1") return json(true);
  if (value == "false" || value == "no" || value == "off" || value == "0") return json(false);
  return InvalidArgumentError(field + " is true or false, not '" + value + "'");
}

Status SetSetting(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json current, s.Call("GET", "/api/v1/settings"));
  ASSIGN_OR_RETURN(json value, SettingValue(current, f.field, f.value));
  json body = {{f.field, value}};
  ASSIGN_OR_RETURN(json updated, s.Call("PATCH", "/api/v1/settings", &body));
  std::printf("%s = %s\n", Printable(f.field).c_str(),
              Printable(OneLine(ValueText(Field(updated, f.field.c_str())), 200)).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

void AddAdminCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.users = app.add_subcommand("users", "List, create, change the role of and delete users");
  f.users->require_subcommand(1);

  f.users_list = f.users->add_subcommand("list", "List users, oldest first");
  f.users_list->add_option("--search", f.search, "Only users whose email or name contains this");
  f.users_list->add_flag("--json", f.json, "Print the server's JSON");

  f.users_create = f.users->add_subcommand("create", "Create a user (data owners and admins)");
  f.users_create->add_option("email", f.email, "The new user's email")->required();
  f.users_create->add_option("--name", f.name, "The new user's name")->required();
  auto* password =
      f.users_create->add_option("--user-password", f.user_password, "The new user's password");
  auto* from_stdin = f.users_create->add_flag("--user-password-stdin", f.user_password_stdin,
                                              "Read the new user's password from stdin");
  password->excludes(from_stdin);
  f.users_create->add_option("--role", f.role, "data_scientist (default), guest, data_owner, admin")
      ->check(CLI::IsMember(kRoles));
  f.users_create->add_option("--institution", f.institution, "The new user's institution");
  f.users_create->add_option("--website", f.website, "The new user's website");

  f.set_role = f.users->add_subcommand("set-role", "Change a user's role");
  f.set_role->add_option("user", f.user, "The user's id or email")->required();
  f.set_role->add_option("role", f.role, "guest, data_scientist, data_owner or admin")
      ->required()
      ->check(CLI::IsMember(kRoles));

  f.users_delete = f.users->add_subcommand("delete", "Delete a user");
  f.users_delete->add_option("user", f.user, "The user's id or email")->required();

  f.settings = app.add_subcommand("settings", "Show and change the server's settings");
  f.settings->require_subcommand(1);
  f.settings_show = f.settings->add_subcommand("show", "Show the settings");
  f.settings_show->add_flag("--json", f.json, "Print the server's JSON");
  f.settings_set = f.settings->add_subcommand("set", "Change one setting (admins)");
  f.settings_set->add_option("field", f.field, "The setting, e.g. name or signup_enabled")
      ->required();
  f.settings_set->add_option("value", f.value, "Its new value (true/false for a switch)")
      ->required();

  for (CLI::App* c : {f.users_list, f.users_create, f.set_role, f.users_delete, f.settings_show,
                      f.settings_set}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunAdminCommand() {
  Flags& f = GetFlags();
  bool users = f.users != nullptr && f.users->parsed();
  bool settings = f.settings != nullptr && f.settings->parsed();
  if (!users && !settings) return -1;
  if (f.users_create->parsed() && f.user_password.empty() && !f.user_password_stdin) {
    return Fail(InvalidArgumentError("users create needs --user-password or --user-password-stdin"),
                kExitUsage);
  }
  using Command = Status (*)(Session&, const Flags&);
  std::vector<Subcommand> commands;
  for (auto [app, run] : {std::pair<CLI::App*, Command>{f.users_list, ListUsers},
                          {f.users_create, CreateUser},
                          {f.set_role, SetRole},
                          {f.users_delete, DeleteUser},
                          {f.settings_show, ShowSettings},
                          {f.settings_set, SetSetting}}) {
    commands.emplace_back(app, [&f, run = run](Session& s) { return run(s, f); });
  }
  return RunParsedSubcommand(f.connection, commands, "users or settings");
}

}  // namespace datasite::cli
