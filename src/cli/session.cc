#include "cli/session.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "core/local_servers.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

constexpr const char* kDefaultUrl = "http://localhost:8080";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Flags first, then the environment: DATASITE_TOKEN, else DATASITE_EMAIL and DATASITE_PASSWORD.
// kInvalidArgument (a usage error) when they are incomplete, or absent for `needs_account`.
Result<Credentials> ResolveCredentials(const ConnectionFlags& f, bool needs_account) {
  Credentials c;
  std::string token = f.token, email = f.email;
  if (token.empty() && email.empty()) {
    token = Env("DATASITE_TOKEN");
    if (token.empty()) email = Env("DATASITE_EMAIL");
  }
  if (!token.empty()) {
    c.kind = Credentials::Kind::kToken;
    c.token = token;
    return c;
  }
  if (!email.empty()) {
    c.kind = Credentials::Kind::kLogin;
    c.email = email;
    c.password = f.password.empty() ? Env("DATASITE_PASSWORD") : f.password;
    if (c.password.empty()) {
      return InvalidArgumentError("--email needs --password (or DATASITE_PASSWORD)");
    }
    return c;
  }
  if (!f.password.empty()) return InvalidArgumentError("--password needs --email");
  if (needs_account) {
    return InvalidArgumentError(
        "this command needs an account: give --email and --password (or DATASITE_EMAIL and "
        "DATASITE_PASSWORD), or --token (DATASITE_TOKEN)");
  }
  return c;
}

// kInvalidArgument for a bad server name (a usage error); kFailedPrecondition when it does not run.
Result<std::string> ResolveUrl(const ConnectionFlags& f) {
  if (!f.server.empty()) {
    RETURN_IF_ERROR(ValidateServerName(f.server));
    auto info = FindRunningServerByName(f.server);
    if (!info) return FailedPreconditionError("no running server named " + f.server);
    return info->url;
  }
  if (!f.url.empty()) return f.url;
  std::string env = Env("DATASITE_URL");
  return env.empty() ? std::string(kDefaultUrl) : env;
}

StatusCode CodeFromName(const std::string& name, int http_status) {
  for (int c = static_cast<int>(StatusCode::kInvalidArgument);
       c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (StatusCodeName(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  switch (http_status) {
    case 400:
    case 405:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kFailedPrecondition;
    case 413:
    case 429:
      return StatusCode::kResourceExhausted;
    case 503:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

void AddConnectionOptions(CLI::App* c, ConnectionFlags& f) {
  auto* server =
      c->add_option("--server", f.server, "A local server, by name (see `datasite list`)");
  auto* url = c->add_option(
      "--url", f.url, "The server's URL (default: $DATASITE_URL, else http://localhost:8080)");
  server->excludes(url);
  auto* email = c->add_option("--email", f.email, "Log in as this user (env DATASITE_EMAIL)");
  c->add_option("--password", f.password, "The password for --email (env DATASITE_PASSWORD)");
  auto* token = c->add_option("--token", f.token, "A session token (env DATASITE_TOKEN)");
  token->excludes(email);
  c->add_option("--ca-file", f.ca_file,
                "Trust the certificate authorities in this PEM file for https (env "
                "DATASITE_CA_FILE; default: the system's)");
}

HttpClientOptions HttpOptionsFor(const ConnectionFlags& f) {
  HttpClientOptions o;
  o.ca_file = f.ca_file.empty() ? Env("DATASITE_CA_FILE") : f.ca_file;
  return o;
}

Session::Session(std::unique_ptr<HttpClient> http) : http_(std::move(http)) {}

Session::~Session() {
  if (logged_in_) (void)http_->Request("POST", "/api/v1/auth/logout");
}

Status Session::Authenticate(const Credentials& c) {
  switch (c.kind) {
    case Credentials::Kind::kToken:
      http_->SetBearerToken(c.token);
      return Status::Ok();
    case Credentials::Kind::kLogin: {
      json body = {{"email", c.email}, {"password", c.password}};
      ASSIGN_OR_RETURN(json answer, Call("POST", "/api/v1/auth/login", &body));
      return UseToken(answer);
    }
    case Credentials::Kind::kGuest: {
      json body = json::object();
      auto answer = Call("POST", "/api/v1/auth/guest", &body);
      if (!answer.ok() && answer.status().code() == StatusCode::kFailedPrecondition) {
        return FailedPreconditionError(answer.status().message() +
                                       "; log in with --email and --password, or use --token");
      }
      RETURN_IF_ERROR(answer);
      return UseToken(*answer);
    }
  }
  return InternalError("unknown credentials");
}

Result<json> Session::Call(std::string_view method, const std::string& target, const json* body) {
  HttpHeaders headers;
  std::string text;
  if (body) {
    headers.emplace_back("Content-Type", "application/json");
    text = body->dump();
  }
  ASSIGN_OR_RETURN(HttpResponse r, http_->Request(method, target, headers, std::move(text)));
  return ParseAnswer(r, std::string(method) + " " + target);
}

Result<json> Session::ListAll(const std::string& path, const std::string& query,
                              int64_t page_size) {
  json items = json::array();
  int64_t total = 0;
  for (int64_t page = 1;; ++page) {
    std::string target =
        path + "?page=" + std::to_string(page) + "&page_size=" + std::to_string(page_size);
    if (!query.empty()) target += "&" + query;
    ASSIGN_OR_RETURN(json answer, Call("GET", target));
    const json& batch = Field(answer, "items");
    if (!batch.is_array()) return InternalError("the list from " + path + " has no items");
    for (const auto& item : batch) items.push_back(item);
    total = Int(answer, "total", static_cast<int64_t>(items.size()));
    if (batch.empty() || static_cast<int64_t>(items.size()) >= total) break;
  }
  return json{{"items", std::move(items)}, {"total", total}};
}

Result<json> Session::ParseAnswer(const HttpResponse& r, const std::string& what) const {
  if (r.status / 100 != 2) return ErrorFrom(r);
  if (r.body.empty()) return json::object();
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) {
    return InternalError("the answer of " + http_->url() + " to " + what + " is not JSON");
  }
  return j;
}

Status Session::ErrorFrom(const HttpResponse& r) const {
  json j = json::parse(r.body, nullptr, false);
  const json& error = Field(j, "error");
  std::string message = Str(error, "message");
  if (message.empty()) message = "HTTP " + std::to_string(r.status) + " from " + http_->url();
  return Status(CodeFromName(Str(error, "code"), r.status), message);
}

Status Session::UseToken(const json& answer) {
  std::string token = Str(answer, "token");
  if (token.empty()) return InternalError("the server's login answer has no token");
  http_->SetBearerToken(token);
  logged_in_ = true;
  return Status::Ok();
}

Result<std::unique_ptr<Session>> OpenSession(const ConnectionFlags& f) {
  ASSIGN_OR_RETURN(Credentials credentials, ResolveCredentials(f, /*needs_account=*/true));
  ASSIGN_OR_RETURN(std::string url, ResolveUrl(f));
  ASSIGN_OR_RETURN(auto http, HttpClient::Connect(url, HttpOptionsFor(f)));
  auto session = std::make_unique<Session>(std::move(http));
  RETURN_IF_ERROR(session->Authenticate(credentials));
  return session;
}

int WithSession(const ConnectionFlags& f, bool needs_account,
                const std::function<Status(Session&)>& body) {
  auto credentials = ResolveCredentials(f, needs_account);
  if (!credentials.ok()) return Fail(credentials.status(), kExitUsage);
  auto url = ResolveUrl(f);
  if (!url.ok()) {
    return Fail(url.status(),
                url.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  auto http = HttpClient::Connect(*url, HttpOptionsFor(f));
  if (!http.ok()) {
    return Fail(http.status(),
                http.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  Status status;
  {
    Session session(std::move(*http));
    status = session.Authenticate(*credentials);
    if (status.ok()) status = body(session);
  }
  return status.ok() ? 0 : Fail(status);
}

int RunParsedSubcommand(const ConnectionFlags& f, const std::vector<Subcommand>& commands,
                        std::string_view group) {
  try {
    for (const auto& [app, run] : commands) {
      if (app->parsed()) return WithSession(f, /*needs_account=*/true, run);
    }
  } catch (const std::exception& e) {
    return Fail(InternalError(e.what()));
  }
  return Fail(InvalidArgumentError("unknown " + std::string(group) + " command"), kExitUsage);
}

int Fail(const Status& status, int exit_code) {
  std::cerr << "error: " << status.message() << std::endl;
  return exit_code;
}

const json& Field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string Str(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t Int(const json& j, const char* key, int64_t fallback) {
  const json& v = Field(j, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

std::string Dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

std::string OneLine(const std::string& text, size_t max_chars) {
  std::string line = text.substr(0, text.find_first_of("\r\n"));
  size_t chars = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;  // continuation byte
    if (++chars > max_chars) return line.substr(0, i) + "...";
  }
  return line;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

namespace {

// The code point of the UTF-8 sequence at `s[i]` and its length, for the 2- and 3-byte forms;
// {0, 1} for anything else.
std::pair<uint32_t, size_t> DecodeUtf8(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  auto continuation = [&](size_t k) { return k < s.size() && (byte(k) & 0xC0) == 0x80; };
  if ((byte(i) & 0xE0) == 0xC0 && continuation(i + 1)) {
    return {((byte(i) & 0x1Fu) << 6) | (byte(i + 1) & 0x3Fu), 2};
  }
  if ((byte(i) & 0xF0) == 0xE0 && continuation(i + 1) && continuation(i + 2)) {
    return {((byte(i) & 0x0Fu) << 12) | ((byte(i + 1) & 0x3Fu) << 6) | (byte(i + 2) & 0x3Fu), 3};
  }
  return {0, 1};
}

bool Invisible(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || (cp >= 0x200B && cp <= 0x200F) ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

}  // namespace

std::string Printable(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  char buf[16];
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      if (c == '\t' || (c == '\n' && keep_newlines)) {
        out += static_cast<char>(c);
      } else {
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
        out += buf;
      }
      ++i;
      continue;
    }
    if (c >= 0x80) {
      auto [cp, len] = DecodeUtf8(text, i);
      if (Invisible(cp)) {
        std::snprintf(buf, sizeof(buf), "\\u{%04x}", static_cast<unsigned>(cp));
        out += buf;
        i += len;
        continue;
      }
    }
    out += static_cast<char>(c);
    ++i;
  }
  return out;
}

// "Name <email>", or whichever of the two there is.
std::string Person(const nlohmann::json& user) {
  std::string name = Str(user, "name"), email = Str(user, "email");
  if (!name.empty() && !email.empty()) return name + " <" + email + ">";
  return name.empty() ? email : name;
}

// Every text from the server goes through Printable before it reaches the terminal.
void PrintField(const char* label, const std::string& value) {
  std::printf("%-16s%s\n", label, Printable(value).c_str());
}

// Prints the rows under a header, each column as wide as its widest cell (the last one is not
// padded).
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], Printable(row[i]).size());
    }
  }
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      if (i + 1 < row.size()) cell.resize(width[i], ' ');
      line += (i ? "  " : "") + cell;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    std::printf("%s\n", line.c_str());
  };
  print(header);
  for (auto row : rows) {
    for (auto& cell : row) cell = Printable(cell);
    print(row);
  }
  std::fflush(stdout);
}

}  // namespace datasite::cli
