// What every command that talks to a server shares: the connection and credential flags, a
// logged-in JSON session over the HTTP API (docs/API.md), exit codes, and tolerant JSON readers for
// printing.
#ifndef DATASITE_CLI_SESSION_H_
#define DATASITE_CLI_SESSION_H_

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/http_client.h"
#include "core/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace datasite::cli {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Where the server is and who is asking: `--server NAME` or `--url URL` (env DATASITE_URL), and
// `--email`/`--password` (env DATASITE_EMAIL/DATASITE_PASSWORD) or `--token` (env DATASITE_TOKEN),
// and for https `--ca-file` (env DATASITE_CA_FILE).
struct ConnectionFlags {
  std::string server;
  std::string url;
  std::string ca_file;
  std::string email;
  std::string password;
  std::string token;
};

// Adds the connection and credential options to a command, filling `f` during parse.
void AddConnectionOptions(CLI::App* command, ConnectionFlags& f);

// Who logs in: resolved from ConnectionFlags and the environment.
struct Credentials {
  enum class Kind { kGuest, kLogin, kToken };
  Kind kind = Kind::kGuest;
  std::string email;
  std::string password;
  std::string token;
};

// A connection with a token. Logs out at its end the session it logged in itself. Not thread-safe.
class Session {
 public:
  explicit Session(std::unique_ptr<HttpClient> http);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Status Authenticate(const Credentials& c);

  // A JSON call; an error answer becomes a Status with the server's code and message.
  Result<nlohmann::json> Call(std::string_view method, const std::string& target,
                              const nlohmann::json* body = nullptr);

  // Every page of a paged listing at `path` (with `query`, "a=b&c=d" or empty), oldest first, as
  // one answer: {"items": [...], "total": N}. Reads until the server's total is reached (or a
  // page comes back empty), so that no item is dropped.
  Result<nlohmann::json> ListAll(const std::string& path, const std::string& query,
                                 int64_t page_size);

  // The JSON of a 2xx answer ({} when empty), else the server's error as a Status.
  Result<nlohmann::json> ParseAnswer(const HttpResponse& r, const std::string& what) const;

  // The server's {"error": {"code", "message"}} as a Status.
  Status ErrorFrom(const HttpResponse& r) const;

  HttpClient& http() { return *http_; }

 private:
  Status UseToken(const nlohmann::json& answer);

  std::unique_ptr<HttpClient> http_;
  bool logged_in_ = false;
};

// The HTTP options for `f`: its CA file, else $DATASITE_CA_FILE.
HttpClientOptions HttpOptionsFor(const ConnectionFlags& f);

// A session on the server `f` names, logged in with its credentials (an account is needed). For a
// command that talks to more than one server; the session logs out when destroyed.
Result<std::unique_ptr<Session>> OpenSession(const ConnectionFlags& f);

// Connects and authenticates (a guest session when no credentials are given, unless
// `needs_account`), runs `body`, and logs out again. Returns the exit code: 0; 1 with
// `error: MESSAGE` on stderr for a failure; 2 for a usage error.
int WithSession(const ConnectionFlags& f, bool needs_account,
                const std::function<Status(Session&)>& body);

// One subcommand of a group and what it does in a session.
using Subcommand = std::pair<CLI::App*, std::function<Status(Session&)>>;

// Runs the first parsed one of `commands` in a session with an account (WithSession) and returns
// its exit code; a usage error naming `group` ("users or settings") when none was parsed.
int RunParsedSubcommand(const ConnectionFlags& f, const std::vector<Subcommand>& commands,
                        std::string_view group);

// Prints `error: MESSAGE` to stderr and returns `exit_code`.
int Fail(const Status& status, int exit_code = kExitFailure);

// JSON read without exceptions: a missing field, or one of the wrong type, reads as empty.
const nlohmann::json& Field(const nlohmann::json& j, const char* key);
std::string Str(const nlohmann::json& j, const char* key);
int64_t Int(const nlohmann::json& j, const char* key, int64_t fallback = 0);
// Indented JSON; invalid UTF-8 replaced.
std::string Dump(const nlohmann::json& j);
// The first line of `text`, at most `max_chars` UTF-8 characters (an ellipsis marks a cut).
std::string OneLine(const std::string& text, size_t max_chars);
// `s` without leading and trailing blanks and tabs.
std::string Trim(const std::string& s);
// `text` safe to print on a terminal: control characters (but tabs, and newlines when
// `keep_newlines`), C1 controls, and invisible or direction-changing Unicode characters (zero-width
// spaces, bidi overrides and isolates, the byte-order mark) are written as visible escapes such as
// `\x1b` or `\u{202e}`, so that text from the server can neither drive the terminal nor hide
// part of what a reviewer reads.
std::string Printable(std::string_view text, bool keep_newlines = false);

// "Name <email>", or whichever of the two a user object from the server has.
std::string Person(const nlohmann::json& user);
// `label` padded to 16 columns, then `value` through Printable.
void PrintField(const char* label, const std::string& value);
// The rows under a header, each column as wide as its widest cell (the last one is not padded);
// every cell goes through Printable.
void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

}  // namespace datasite::cli

#endif  // DATASITE_CLI_SESSION_H_
