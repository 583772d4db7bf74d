// A job's result bytes, which the sandbox copies from a pipe the user's code can write anything
// into, through what the server does with them, as it does: a fake Sandbox (the Sandbox
// interface) writes the bytes to the job's result file and answers what
// sandbox::internal::DecodeReport makes of the report {"status": "ok", "format": F, "bytes": N};
// a real JobQueue (one worker) runs the job through CodeService::RunJob (small results into the
// database, large ones kept as a file) and records it; then the API's routes answer it, on a real
// store in a scratch directory: POST /api/v1/code/{id}/run (a blocking mock run, whose reply
// carries a small result inline: JSON parsed, CSV as text when it is UTF-8, npy and bytes as
// base64), GET /api/v1/jobs/{id}, GET /api/v1/jobs/{id}/result and GET /api/v1/jobs/{id}/logs.
//
// The first byte chooses: bits 0-1 the format (json, csv, npy, bytes); bit 2 the same bytes are
// also the job's stdout and stderr; bit 3 the bytes are repeated past 1 MiB (a result kept as a
// file, not inline). The rest is the result.
//
// Checks: no handler throws, no 500; every JSON reply parses; the job completed with the format
// and size the sandbox reported (the result route's body is the result's own bytes, so it is
// JSON only when they are); the inline result is exactly the bytes (parsed JSON when it nests at
// most 256 deep, else null;
// CSV text when UTF-8, else null; base64 that decodes to the bytes), or null past 1 MiB; the
// result route returns exactly the bytes (in memory or streamed), with the format's content
// type; the logs reply parses and holds the logs when they are UTF-8.
#include <sodium.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "fuzz_util.h"
#include "http/message.h"
#include "http/router.h"
#include "jobs/job_queue.h"
#include "sandbox/sandbox.h"
#include "services/audit.h"
#include "services/code.h"
#include "world.h"

namespace {

using datasite::fuzz::Check;
using datasite::fuzz::ValidUtf8;
using datasite::fuzz::World;
using datasite::http::Request;
using datasite::http::Response;
using datasite::http::Route;
using datasite::http::Router;
using nlohmann::json;
namespace sandbox = datasite::sandbox;

constexpr int kInputsPerWorld = 2000;
constexpr size_t kLarge = (size_t{1} << 20) + 1;  // past the database's and the inline limit
constexpr const char* kFormats[] = {"json", "csv", "npy", "bytes"};

// What the next job produces. Set by the fuzzing thread before it starts the job; read by the
// queue's worker while the fuzzing thread waits for the job to end.
struct Produced {
  std::string format;
  std::string bytes;
  std::string logs;
};

// Stands in for the sandbox: "runs" a job by writing the produced bytes to its result file.
class FakeSandbox : public sandbox::Sandbox {
 public:
  explicit FakeSandbox(const Produced& next) : next_(next) {}

  datasite::Result<sandbox::JobResult> Run(const sandbox::JobSpec& spec,
                                           const std::string& result_path,
                                           const std::atomic<bool>*) override {
    datasite::fuzz::WriteFile(result_path, next_.bytes);
    json done = {{"type", "done"},
                 {"status", "ok"},
                 {"format", next_.format},
                 {"bytes", next_.bytes.size()}};
    sandbox::JobResult r = sandbox::internal::DecodeReport(done, spec.limits, /*started=*/true);
    Check(r.outcome == sandbox::Outcome::kOk, "DecodeReport refused a well-formed report");
    r.stdout_text = next_.logs;
    r.stderr_text = next_.logs;
    return r;
  }
  std::string Describe() const override { return "fake"; }
  datasite::Status Resize(int) override { return datasite::Status::Ok(); }
  int Slots() const override { return 1; }
  int ClonedSlots() const override { return 0; }
  json Environment() const override { return json::object(); }

 private:
  const Produced& next_;
};

struct Api {
  Api() {
    queue = std::make_unique<datasite::jobs::JobQueue>(world.store(), world.clock(),
                                                       datasite::jobs::QueueOptions{.workers = 1});
    code = std::make_unique<datasite::services::CodeService>(
        world.store(), world.blobs(), world.settings(), *queue, world.datasets().storage(),
        world.clock(), world.code_options());
    code->SetSandbox(std::make_unique<FakeSandbox>(next));
    auto* service = code.get();
    Check(queue
              ->Start([service](const datasite::store::Job& job, const std::atomic<bool>& cancel) {
                return service->RunJob(job, cancel);
              })
              .ok(),
          "start the job queue");
    projects =
        std::make_unique<datasite::services::ProjectService>(world.store(), *code, world.clock());
    audit = std::make_unique<datasite::services::AuditService>(world.store());
    context = std::make_unique<datasite::api::ApiContext>(datasite::api::ApiContext{
        world.accounts(), world.settings(), world.datasets(), *code, *projects, *audit, ready});
    datasite::api::AddRoutes(router, *context);
    Response submitted =
        Call("POST", "/api/v1/code", R"({"name": "f", "source": "def f():\n    return 1\n"})");
    Check(submitted.status == 201, "submit code: " + submitted.body);
    code_id = json::parse(submitted.body).at("id").get<std::string>();
  }
  ~Api() { queue->Stop(); }

  Response Call(const std::string& method, const std::string& path, std::string body = "") {
    Request req;
    req.method = method;
    req.path = path;
    req.authorization = "Bearer fuzz-scientist";
    req.remote_address = "192.0.2.1";
    req.body = std::move(body);
    const Route* route = nullptr;
    Check(router.Find(req, &route) == Router::Match::kFound, "no route for " + path);
    Response res;
    try {
      res = route->handler(req);
    } catch (const std::exception& e) {
      Check(false, method + " " + route->pattern + " threw: " + e.what());
    }
    if (res.shared_body) res.body = *res.shared_body;  // a rendering kept in memory (/logs)
    Check(res.status != 500, "500 for " + method + " " + route->pattern + ": " + res.body);
    // The result route answers the result's own bytes, whatever they are; every other reply is
    // the API's JSON.
    if (route->pattern != "/api/v1/jobs/{id}/result" && res.file_path.empty() &&
        res.content_type == "application/json") {
      Check(json::accept(res.body), "an invalid JSON body for " + route->pattern);
    }
    return res;
  }

  World world;
  Produced next;
  std::unique_ptr<datasite::jobs::JobQueue> queue;
  std::unique_ptr<datasite::services::CodeService> code;
  std::unique_ptr<datasite::services::ProjectService> projects;
  std::unique_ptr<datasite::services::AuditService> audit;
  std::atomic<bool> ready{true};
  std::unique_ptr<datasite::api::ApiContext> context;
  Router router;
  std::string code_id;
};

std::unique_ptr<Api>& TheApi() {
  static auto* api = new std::unique_ptr<Api>();
  return *api;
}

std::string FromBase64(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                             text.size(), nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL);
  Check(rc == 0 && end == text.data() + text.size(), "an inline result that is not base64");
  out.resize(len);
  return out;
}

// The job's "result" object as the API returns it, checked against what the sandbox produced.
void CheckResult(const json& job, const Produced& p) {
  Check(job.at("status") == "completed", "the job did not complete: " + job.dump());
  const json& r = job.at("result");
  Check(r.at("format") == p.format, "the result's format changed");
  Check(r.at("size") == p.bytes.size(), "the result's size changed");
  Check(r.at("held") == false, "a mock run's result is held");
  const json& in = r.at("inline");
  if (p.bytes.size() > (size_t{1} << 20)) {
    Check(in.is_null(), "a result over 1 MiB was inlined");
    return;
  }
  if (p.format == "json") {
    // A result nested deeper than 256 is not inlined (and parsing it here would overflow the stack
    // in the comparison).
    if (datasite::api::NestsDeeperThan(p.bytes, 256)) {
      Check(in.is_null(), "a result nested deeper than 256 was inlined");
      return;
    }
    json value = json::parse(p.bytes, nullptr, false);
    // The reply is dumped and parsed again: non-finite numbers become null on the way.
    json expected = value.is_discarded() ? json(nullptr) : json::parse(value.dump());
    Check(in == expected, "the inline JSON differs from the result");
  } else if (p.format == "csv") {
    Check(ValidUtf8(p.bytes) ? in == p.bytes : in.is_null(), "the inline CSV differs");
  } else {
    Check(in.is_string() && FromBase64(in.get<std::string>()) == p.bytes,
          "the inline bytes differ from the result");
  }
}

// The body of a reply: in memory, or streamed (a result blob over 1 MiB).
std::string BodyOf(Response& res) {
  if (!res.body_source) return res.body;
  std::string out;
  std::string buf(size_t{1} << 20, '\0');
  while (out.size() < static_cast<size_t>(res.body_size)) {
    auto n = res.body_source(buf.data(), buf.size());
    Check(n.ok() && *n > 0, "a streamed body ended early");
    out.append(buf.data(), *n);
  }
  return out;
}

void Run(Api& api, std::string_view in) {
  if (in.empty()) return;
  const uint8_t mode = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  Produced& p = api.next;
  p.format = kFormats[mode & 3];
  p.bytes.assign(in);
  if ((mode & 8) && !in.empty()) {
    while (p.bytes.size() < kLarge) p.bytes.append(in);
  }
  p.logs = (mode & 4) ? std::string(in) : "";

  Response ran = api.Call("POST", "/api/v1/code/" + api.code_id + "/run", R"({"mock": true})");
  Check(ran.status == 201, "the run was refused: " + ran.body);
  json job = json::parse(ran.body);
  CheckResult(job, p);
  const std::string id = job.at("id").get<std::string>();

  Response got = api.Call("GET", "/api/v1/jobs/" + id);
  Check(got.status == 200, "GET the job: " + got.body);
  CheckResult(json::parse(got.body), p);

  Response result = api.Call("GET", "/api/v1/jobs/" + id + "/result");
  Check(result.status == 200, "GET the result: " + result.body);
  const std::string bytes = BodyOf(result);
  Check(bytes == p.bytes, "the result route returned other bytes");
  const char* type = p.format == "json"  ? "application/json"
                     : p.format == "csv" ? "text/csv"
                                         : "application/octet-stream";
  Check(result.content_type == type, "the result's content type");
  bool tagged = false;
  for (const auto& [k, v] : result.headers)
    tagged |= k == "X-Datasite-Result-Format" && v == p.format;
  Check(tagged, "the result route does not say the format");

  Response logs = api.Call("GET", "/api/v1/jobs/" + id + "/logs");
  Check(logs.status == 200, "GET the logs: " + logs.body);
  json l = json::parse(logs.body);
  Check(l.at("stdout").is_string(), "the job's own user does not see its stdout");
  if (ValidUtf8(p.logs)) Check(l.at("stdout") == p.logs, "stdout changed on the way");
  if (p.bytes.size() > (size_t{1} << 20)) {  // keep the scratch directory small
    Check(api.world.results()
              .Delete(datasite::services::CodeService::ResultBlobId(
                  id, job.at("attempts").get<int64_t>()))
              .ok(),
          "delete a result blob");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int inputs = 0;
  auto& api = TheApi();
  if (!api || ++inputs % kInputsPerWorld == 0) {
    api.reset();
    api = std::make_unique<Api>();
  }
  Run(*api, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
