#include "cli/sync_commands.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli/http_client.h"
#include "cli/session.h"

namespace datasite::cli {
namespace {

using nlohmann::json;

constexpr const char* kBundleType = "application/octet-stream";

// What the command line said; filled by CLI11 during parse. Each field belongs to the one
// subcommand that is parsed.
struct Flags {
  CLI::App* sync = nullptr;
  CLI::App* identity = nullptr;
  CLI::App* peer_group = nullptr;
  CLI::App* peer_add = nullptr;
  CLI::App* peer_list = nullptr;
  CLI::App* diff = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* import = nullptr;

  ConnectionFlags connection;  // every command but diff
  // diff: the credentials (and CA file) of `connection` for both servers unless a side's token
  // is given.
  std::string from_url, to_url, from_token, to_token;

  bool json = false;
  bool yes = false;
  std::string name;  // peer add
  std::string key;   // peer add
  std::string peer;  // export
  std::string out;   // export
  std::string file;  // import
};

Flags& GetFlags() {
  static Flags flags;
  return flags;
}

// ---------------------------------------------------------------------------------------------
// printing

std::string Text(const json& j, const char* key) {
  const json& v = Field(j, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_null()) return "-";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "3: request, code, user": how many objects a batch has, and their kinds in order.
std::string DescribeObjects(const json& batch) {
  const json& objects = Field(batch, "objects");
  if (!objects.is_array()) return "0";
  std::vector<std::string> kinds;
  for (const auto& o : objects) {
    std::string kind = Str(o, "kind");
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  std::string out = std::to_string(objects.size());
  for (size_t i = 0; i < kinds.size(); ++i) out += (i ? ", " : ": ") + kinds[i];
  return out;
}

void PrintDiff(const json& diff) {
  const json& peer = Field(diff, "peer");
  PrintField("Import:", Text(diff, "import_id"));
  PrintField("From peer:", Str(peer, "name") + " (" + Str(peer, "verify_key") + ")");
  PrintField("Direction:", Str(diff, "direction"));
  PrintField("Bundle seq:", Text(diff, "seq"));
  const json& s = Field(diff, "summary");
  std::string summary;
  for (const char* key :
       {"batches", "objects", "new", "changed", "conflicts", "same", "deleted", "ignored"}) {
    summary += (summary.empty() ? "" : ", ") + std::to_string(Int(s, key)) + " " + key;
  }
  PrintField("Summary:", summary);
  const json& batches = Field(diff, "batches");
  std::printf("\n");
  if (!batches.is_array() || batches.empty()) {
    std::printf("Nothing to sync: every object is the same on both sides.\n");
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& b : batches) {
      rows.push_back({Str(b, "id"), Str(b, "status"), Str(b, "state"), DescribeObjects(b)});
    }
    PrintTable({"BATCH", "STATUS", "STATE", "OBJECTS"}, rows);
  }
  const json& ignored = Field(diff, "ignored");
  if (ignored.is_array() && !ignored.empty()) {
    std::printf("\nIgnored (until unignored):\n");
    for (const auto& id : ignored) {
      std::printf("  %s\n", Printable(id.is_string() ? id.get<std::string>() : id.dump()).c_str());
    }
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// the calls

Status Identity(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json id, s.Call("GET", "/api/v1/sync/identity"));
  if (f.json) {
    std::cout << Dump(id) << std::endl;
    return Status::Ok();
  }
  PrintField("Name:", Str(id, "name"));
  PrintField("Verify key:", Str(id, "verify_key"));
  PrintField("Server id:", Str(id, "server_id"));
  PrintField("Side:", Str(id, "side"));
  std::fflush(stdout);
  return Status::Ok();
}

Status AddPeer(Session& s, const Flags& f) {
  json body = {{"name", f.name}, {"verify_key", f.key}};
  ASSIGN_OR_RETURN(json peer, s.Call("POST", "/api/v1/sync/peers", &body));
  std::printf("added peer %s (%s)\n", Printable(Str(peer, "name")).c_str(),
              Printable(Str(peer, "verify_key")).c_str());
  std::fflush(stdout);
  return Status::Ok();
}

Status ListPeers(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json answer, s.Call("GET", "/api/v1/sync/peers"));
  if (f.json) {
    std::cout << Dump(answer) << std::endl;
    return Status::Ok();
  }
  const json& peers = Field(answer, "peers");
  std::vector<std::vector<std::string>> rows;
  if (peers.is_array()) {
    for (const auto& p : peers) {
      rows.push_back({Str(p, "name"), Text(p, "side"), Str(p, "verify_key"), Text(p, "added_at"),
                      Text(p, "revoked_at"), Text(p, "last_sent_seq"),
                      Text(p, "last_applied_seq")});
    }
  }
  PrintTable({"NAME", "SIDE", "VERIFY_KEY", "ADDED", "REVOKED", "SENT", "APPLIED"}, rows);
  return Status::Ok();
}

// GETs the bundle for `peer` into `path` (atomically: a temporary file renamed into place),
// readable by its owner only, as the Python client writes it; its sequence number.
Result<std::string> ExportTo(Session& s, const std::string& peer, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResponse r, s.http().DownloadToFile(
                                       "/api/v1/sync/export?peer=" + UrlEncode(peer), path, 0600));
  if (r.status / 100 != 2) return s.ErrorFrom(r);
  return r.Header("X-Datasite-Bundle-Seq");
}

Status Export(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(std::string seq, ExportTo(s, f.peer, f.out));
  if (f.out == "-") return Status::Ok();
  struct stat st;
  int64_t size = ::stat(f.out.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
  std::printf("wrote %s: bundle %s for peer %s, %lld bytes\n", Printable(f.out).c_str(),
              Printable(seq.empty() ? "?" : seq).c_str(), Printable(f.peer).c_str(),
              static_cast<long long>(size));
  std::fflush(stdout);
  return Status::Ok();
}

// POSTs the bundle at `path` as a new import; the diff.
Result<json> Load(Session& s, const std::string& path) {
  ASSIGN_OR_RETURN(HttpResponse r,
                   s.http().RequestStreamingUpload("/api/v1/sync/imports", path, kBundleType));
  return s.ParseAnswer(r, "POST /api/v1/sync/imports");
}

// Applies every pending batch of `diff` that has no conflict, and says what it did.
Status ApplyAll(Session& s, const json& diff) {
  json accept = json::array();
  std::vector<std::string> conflicts;
  const json& batches = Field(diff, "batches");
  if (batches.is_array()) {
    for (const auto& b : batches) {
      if (Str(b, "state") != "pending") continue;
      if (Str(b, "status") == "conflict") {
        conflicts.push_back(Str(b, "id"));
      } else {
        accept.push_back(Str(b, "id"));
      }
    }
  }
  // Applied even when empty: the first apply of an import acknowledges its sequence number, so
  // the peer's next export starts after it.
  json body = {{"accept", accept},
               {"overwrite", json::array()},
               {"ignore", json::array()},
               {"deny", json::array()}};
  ASSIGN_OR_RETURN(
      json answer,
      s.Call("POST", "/api/v1/sync/imports/" + UrlEncode(Text(diff, "import_id")) + "/apply",
             &body));
  const json& applied = Field(answer, "applied");
  size_t count = applied.is_array() ? applied.size() : 0;
  std::printf("\nApplied %zu batch%s%s\n", count, count == 1 ? "" : "es", count ? ":" : ".");
  if (applied.is_array()) {
    for (const auto& id : applied) {
      std::printf("  %s\n", Printable(id.is_string() ? id.get<std::string>() : id.dump()).c_str());
    }
  }
  if (!conflicts.empty()) {
    std::printf("Left %zu batch%s with a conflict for review (not applied):\n", conflicts.size(),
                conflicts.size() == 1 ? "" : "es");
    for (const auto& id : conflicts) std::printf("  %s\n", Printable(id).c_str());
  }
  std::fflush(stdout);
  return Status::Ok();
}

Status ShowAndMaybeApply(Session& s, const Flags& f, const json& diff) {
  if (f.json && !f.yes) {
    std::cout << Dump(diff) << std::endl;
    return Status::Ok();
  }
  PrintDiff(diff);
  return f.yes ? ApplyAll(s, diff) : Status::Ok();
}

Status Import(Session& s, const Flags& f) {
  ASSIGN_OR_RETURN(json diff, Load(s, f.file));
  return ShowAndMaybeApply(s, f, diff);
}

// A path for one bundle in a directory of its own under $TMPDIR (readable by its owner only); both
// are removed when this ends.
class TempBundle {
 public:
  static Result<std::unique_ptr<TempBundle>> Create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/datasite-sync-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
      return InternalError("cannot create a temporary directory: " +
                           std::string(std::strerror(errno)));
    }
    return std::unique_ptr<TempBundle>(new TempBundle(std::move(dir)));
  }
  ~TempBundle() {
    ::unlink(path().c_str());
    ::rmdir(dir_.c_str());
  }
  TempBundle(const TempBundle&) = delete;
  TempBundle& operator=(const TempBundle&) = delete;
  std::string path() const { return dir_ + "/bundle.dsync"; }

 private:
  explicit TempBundle(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// The name under which `on` knows the server whose key is `key`, registering it as `name` if it
// has no live peer with that key (the owner is admin on both: the trust of an out-of-band
// exchange).
Result<std::string> EnsurePeer(Session& on, const std::string& key, const std::string& name) {
  ASSIGN_OR_RETURN(json answer, on.Call("GET", "/api/v1/sync/peers"));
  const json& peers = Field(answer, "peers");
  if (peers.is_array()) {
    for (const auto& p : peers) {
      if (Str(p, "verify_key") == key && Field(p, "revoked_at").is_null()) return Str(p, "name");
    }
  }
  json body = {{"name", name}, {"verify_key", key}};
  ASSIGN_OR_RETURN(json peer, on.Call("POST", "/api/v1/sync/peers", &body));
  std::fprintf(stderr, "registered %s as a peer of %s\n", Printable(Str(peer, "name")).c_str(),
               Printable(on.http().url()).c_str());
  return Str(peer, "name");
}

ConnectionFlags SideFlags(const Flags& f, const std::string& url, const std::string& token) {
  ConnectionFlags side = f.connection;
  side.server.clear();
  side.url = url;
  if (!token.empty()) {
    side.token = token;
    side.email.clear();
    side.password.clear();
  }
  return side;
}

Status Diff(const Flags& f) {
  auto from = OpenSession(SideFlags(f, f.from_url, f.from_token));
  if (!from.ok()) return Status(from.status().code(), "--from: " + from.status().message());
  auto to = OpenSession(SideFlags(f, f.to_url, f.to_token));
  if (!to.ok()) return Status(to.status().code(), "--to: " + to.status().message());
  Session& a = **from;
  Session& b = **to;
  // The first call on each side connects: its failure names the side.
  auto from_id = a.Call("GET", "/api/v1/sync/identity");
  if (!from_id.ok())
    return Status(from_id.status().code(), "--from: " + from_id.status().message());
  auto to_id = b.Call("GET", "/api/v1/sync/identity");
  if (!to_id.ok()) return Status(to_id.status().code(), "--to: " + to_id.status().message());
  if (Str(*from_id, "verify_key").empty() || Str(*to_id, "verify_key").empty()) {
    return InternalError("a server's sync identity has no verify_key");
  }
  if (Str(*from_id, "verify_key") == Str(*to_id, "verify_key")) {
    return InvalidArgumentError("--from and --to are the same server");
  }
  ASSIGN_OR_RETURN(std::string to_name,
                   EnsurePeer(a, Str(*to_id, "verify_key"), Str(*to_id, "name")));
  RETURN_IF_ERROR(EnsurePeer(b, Str(*from_id, "verify_key"), Str(*from_id, "name")).status());
  ASSIGN_OR_RETURN(auto bundle, TempBundle::Create());
  RETURN_IF_ERROR(ExportTo(a, to_name, bundle->path()).status());
  ASSIGN_OR_RETURN(json diff, Load(b, bundle->path()));
  return ShowAndMaybeApply(b, f, diff);
}

}  // namespace

void AddSyncCommands(CLI::App& app) {
  Flags& f = GetFlags();
  f.sync = app.add_subcommand(
      "sync", "Keep a low side and a high side in step with signed bundles (admins)");
  f.sync->require_subcommand(1);

  f.identity = f.sync->add_subcommand("identity", "Show this server's sync identity and key");
  f.identity->add_flag("--json", f.json, "Print the server's JSON");

  f.peer_group = f.sync->add_subcommand("peer", "Register and list the other side's keys");
  f.peer_group->require_subcommand(1);
  f.peer_add = f.peer_group->add_subcommand("add", "Register the other side's verify key");
  f.peer_add->add_option("name", f.name, "A name for the peer, e.g. high")->required();
  f.peer_add->add_option("key", f.key, "Its verify key (see `datasite sync identity` there)")
      ->required();
  f.peer_list = f.peer_group->add_subcommand("list", "List the registered peers");
  f.peer_list->add_flag("--json", f.json, "Print the server's JSON");

  f.export_ = f.sync->add_subcommand("export", "Write a signed bundle of what a peer lacks");
  f.export_->add_option("--peer", f.peer, "The peer it is for")->required();
  f.export_->add_option("--out", f.out, "The bundle file to write (- for stdout)")->required();

  f.import = f.sync->add_subcommand(
      "import", "Load a bundle, show what it would change, and with --yes apply it");
  f.import->add_option("file", f.file, "The bundle file")->required();
  f.import->add_flag("--yes", f.yes, "Apply every pending batch that has no conflict");
  f.import->add_flag("--json", f.json, "Print the server's diff as JSON (without --yes)");

  f.diff = f.sync->add_subcommand(
      "diff",
      "Online sync: export from one server and load into the other (a pending import there), "
      "and show what it would change");
  f.diff->add_option("--from", f.from_url, "The server that sends (its URL)")->required();
  f.diff->add_option("--to", f.to_url, "The server that receives (its URL)")->required();
  f.diff->add_option("--from-token", f.from_token,
                     "A session token for --from (env DATASITE_FROM_TOKEN; else the shared "
                     "credentials)");
  f.diff->add_option("--to-token", f.to_token,
                     "A session token for --to (env DATASITE_TO_TOKEN; else the shared "
                     "credentials)");
  f.diff->add_flag("--yes", f.yes, "Apply every pending batch that has no conflict");
  f.diff->add_flag("--json", f.json, "Print the server's diff as JSON (without --yes)");
  // The shared credentials and CA file; --server and --url name one server, so diff has neither.
  auto* email = f.diff->add_option("--email", f.connection.email,
                                   "Log in to both servers as this admin (env DATASITE_EMAIL)");
  f.diff->add_option("--password", f.connection.password,
                     "The password for --email (env DATASITE_PASSWORD)");
  f.diff->add_option("--token", f.connection.token, "A session token for both (env DATASITE_TOKEN)")
      ->excludes(email);
  f.diff->add_option("--ca-file", f.connection.ca_file,
                     "Trust the certificate authorities in this PEM file for https (env "
                     "DATASITE_CA_FILE)");

  for (CLI::App* c : {f.identity, f.peer_add, f.peer_list, f.export_, f.import}) {
    AddConnectionOptions(c, f.connection);
  }
}

int RunSyncCommand() {
  Flags& f = GetFlags();
  if (f.sync == nullptr || !f.sync->parsed()) return -1;
  if (f.diff->parsed()) {
    if (f.from_token.empty()) {
      if (const char* t = std::getenv("DATASITE_FROM_TOKEN")) f.from_token = t;
    }
    if (f.to_token.empty()) {
      if (const char* t = std::getenv("DATASITE_TO_TOKEN")) f.to_token = t;
    }
    try {
      Status st = Diff(f);
      return st.ok() ? 0 : Fail(st);
    } catch (const std::exception& e) {
      return Fail(InternalError(e.what()));
    }
  }
  using Command = Status (*)(Session&, const Flags&);
  std::vector<Subcommand> commands;
  for (auto [app, run] : {std::pair<CLI::App*, Command>{f.identity, Identity},
                          {f.peer_add, AddPeer},
                          {f.peer_list, ListPeers},
                          {f.export_, Export},
                          {f.import, Import}}) {
    commands.emplace_back(app, [&f, run = run](Session& s) { return run(s, f); });
  }
  return RunParsedSubcommand(f.connection, commands, "sync");
}

}  // namespace datasite::cli
