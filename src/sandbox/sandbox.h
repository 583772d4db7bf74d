// The sandbox: runs one user function on its inputs, isolated from the server and from other jobs.
//
// A Sandbox keeps one warm Python process per slot (pandas and numpy already imported) inside
// bubblewrap (no network, no file system beyond the Python installation, an unprivileged uid, no
// capabilities, a seccomp filter) and forks a fresh child of it per job. The child gets its inputs
// as read-only file descriptors and a private scratch directory, runs under resource limits, and
// returns its result as JSON, CSV, .npy or raw bytes — never a pickle. User code never runs in the
// server process.
//
// Safe for concurrent use: at most `slots` jobs run at once; further Run() calls wait for a free
// slot.
#ifndef DATASITE_SANDBOX_SANDBOX_H_
#define DATASITE_SANDBOX_SANDBOX_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "sandbox/unique_fd.h"

namespace datasite::sandbox {

struct Limits {
  uint64_t memory_bytes = uint64_t{2} << 30;  // address space of the job's process
  std::chrono::milliseconds wall_timeout{60'000};
  uint32_t cpu_seconds = 60;
  uint32_t max_open_files = 64;
  uint64_t max_result_bytes = uint64_t{256} << 20;
  uint64_t max_log_bytes = uint64_t{1}
                           << 20;  // each of stdout and stderr; more is cut, not an error
};

// One argument bound to an asset: the server opens `path` read-only and hands the descriptor in.
struct Input {
  std::string name;    // the keyword argument
  std::string path;    // host path of the bytes
  std::string format;  // "csv" (pandas.DataFrame), "json" (Python value), "npy" (numpy array),
                       // "raw" (bytes)
  std::string meta;    // csv only: the typed sidecar (JSON text, data/sidecar.h), '' for none
};

// A call a job made to an API endpoint bound as one of its arguments (JobSpec::endpoints).
struct EndpointCall {
  std::string path;                                  // one of JobSpec::endpoints' paths
  std::string side;                                  // "auto", "mock" or "private"
  nlohmann::json kwargs = nlohmann::json::object();  // JSON values, at most 64 KiB in all
  // What is left of the job's wall-clock time (set by the sandbox): the call may take no longer.
  std::chrono::milliseconds time_left{0};
};

// The answer to an EndpointCall. The job's code gets the result read from `result` (in `format`,
// as an input of that format is read), or an exception saying `error`.
struct EndpointAnswer {
  std::string error;   // non-empty: the call failed
  std::string format;  // "json" | "csv" | "npy" | "bytes"
  std::string meta;    // a CSV result's sidecar (JSON text), '' for none
  UniqueFd result;     // the result's bytes, read from its start
  // Added to the job's stdout and stderr where the call was made (each within max_log_bytes).
  std::string stdout_text;
  std::string stderr_text;
  // The job is stopped instead of answered (Outcome::kKilled): what it was to get was held.
  bool stop_job = false;
};

// A job's request for a TCP connection to `host`:`port` (an API endpoint's private function under
// --endpoint-egress: the sandbox has no network, so the host connects, and relays the connection's
// bytes to and from the Unix socket the job sent with its request).
struct ConnectRequest {
  std::string host;  // as the function named it, at most 255 bytes
  int64_t port = 0;  // 1..65535
  // What is left of the job's wall-clock time (set by the sandbox): the connect may take no longer.
  std::chrono::milliseconds time_left{0};
  // The job's end of the connection: a Unix stream socket the job made (in its own namespaces).
  UniqueFd socket;
};

// An argument bound to an API endpoint: the job's code gets an object it calls (see runner.py).
struct EndpointArg {
  std::string name;                 // the keyword argument
  std::string path;                 // the endpoint's path, "a.b"
  std::vector<std::string> params;  // its parameters, for positional arguments
};

struct JobSpec {
  std::string source;         // Python source defining `function_name` (decorators already removed)
  std::string function_name;  // the function to call
  // When > 0, the function called must be the one defined at this line of `source` (by def, in the
  // source itself): a source that rebinds the name afterwards (an assignment, a class, a second
  // def the reviewer did not see as one) fails instead of running something else.
  int function_line = 0;
  std::vector<Input> inputs;
  nlohmann::json constants = nlohmann::json::object();  // other keyword arguments, as JSON values
  Limits limits;
  // When set, receives the job's stdout while it runs: called on the thread that called Run(), with
  // the bytes that arrived since its last call, once `stdout_chunk_bytes` have gathered or
  // `stdout_interval` after the first of them, whichever comes first. Together its calls give a
  // prefix of JobResult::stdout_text (so never more than max_log_bytes); what came after the last
  // call is only in stdout_text. The job's pipes are not drained while it runs: keep it short (a
  // store write), or the job blocks once its stdout pipe is full.
  std::function<void(std::string_view)> on_stdout;
  // The code's custom policies, or null: {"source", "input": {"class", "init_kwargs"} | null,
  // "output": likewise, "state": what they kept | null, "kind", "check": whether their is_valid
  // may refuse the run, "update": whether the run counts (its report then carries the new
  // state)}. They run in the job's process, around the function (see runner.py).
  nlohmann::json policy;
  // Arguments bound to API endpoints, and what answers the job's calls to them: called on the
  // thread that called Run(), while the job waits for the answer (its wall clock runs on). Without
  // it, a call is a malformed report. At most kMaxEndpointCalls calls per job.
  std::vector<EndpointArg> endpoints;
  std::function<EndpointAnswer(const EndpointCall&)> on_call;
  // What answers the job's requests for a TCP connection: takes request.socket and connects it
  // (Ok), or says why not (the job is told). Called like on_call. Without it, a request is a
  // malformed report (a data scientist's job has no way out). At most kMaxConnects per job.
  std::function<Status(ConnectRequest&)> on_connect;
  // When set, the function is an API endpoint's: it is called as function(context, **constants),
  // context being {"settings", "user": {"id", "email", "name", "role"}, "state", "helpers":
  // {name: source}} (PySyft's TwinAPIContextView); what it leaves in context.state comes back in
  // JobResult::policy_state (a JSON object of at most kMaxPolicyStateBytes, else kPolicy "error").
  nlohmann::json endpoint;
  // The same for the job's stderr (JobResult::stderr_text), with the same interval and chunk size.
  std::function<void(std::string_view)> on_stderr;
  // When set, the job must end by this time: Run() gives up waiting for a free slot then
  // (kDeadlineExceeded), and once it has one the wall-clock limit is cut to what is left.
  std::chrono::steady_clock::time_point finish_by{};
  std::chrono::milliseconds stdout_interval{250};
  size_t stdout_chunk_bytes = size_t{64} << 10;
};

enum class Outcome {
  kOk,              // the function returned; the result is in result_path
  kError,           // the function raised, or returned a value that can't be sent back
  kTimeout,         // wall-clock timeout
  kKilled,          // cancelled by the caller
  kResourceLimit,   // memory, CPU time or result size limit reached
  kSandboxFailure,  // the sandbox itself failed (not the user's fault)
  kPolicy,          // a custom policy refused the run or its result, or failed (policy_refusal)
  // The code imports a module this environment lacks (JobResult::missing_module): found before
  // any of the code ran, so the run is not the code's.
  kEnvironment,
};

struct JobResult {
  Outcome outcome = Outcome::kSandboxFailure;
  std::string result_format;  // "json" | "csv" | "npy" | "bytes"; empty unless kOk
  uint64_t result_bytes = 0;
  // A CSV result's typed sidecar as the job wrote it (JSON text of at most kMaxResultMetaBytes,
  // unchecked: the caller checks it), '' for none. Not counted in result_bytes.
  std::string result_meta;
  std::string stdout_text;  // cut at limits.max_log_bytes
  std::string stderr_text;  // cut at limits.max_log_bytes; includes the traceback on kError
  // kPolicy: "input" or "output" (that policy refused), "error" (a policy raised, or kept a state
  // that is not small JSON).
  std::string policy_refusal;
  // The custom policies' state after the run (JSON text of at most kMaxPolicyStateBytes), when the
  // run counted and the policies did not fail; an endpoint function's context.state after a call
  // that returned (JobSpec::endpoint); '' otherwise.
  std::string policy_state;
  std::string error;  // one line a user can act on, empty on kOk:
                      // "ZeroDivisionError: division by zero", "wall-clock timeout of 60 s", ...
  std::string missing_module;  // kEnvironment: the top-level module's name (an identifier)
  // Whether the job's code got to run (the child said `started`): when false, nothing the code
  // chose happened, whatever the outcome.
  bool started = false;
};

struct Options {
  // The interpreter: under /usr, or under `env_root`.
  std::string python = "/usr/bin/python3";
  // A worker pool's environment (a virtualenv or another prefix): a directory bound read-only at
  // the same path in the sandbox, beside /usr. '' for none.
  std::string env_root;
  // Modules each template imports before its first fork, so every job has them loaded; one that
  // fails to import fails StartSandbox, saying how. Each a dotted identifier.
  std::vector<std::string> preload;
  int slots = 1;  // warm processes, one job each at a time (1..kMaxSlots)
  // Each job's private /tmp: a tmpfs of its own, RAM beside the job's address space, gone with it.
  uint64_t scratch_bytes = uint64_t{256} << 20;
  uint64_t scratch_files = 16384;  // inodes in it
  // When false and bubblewrap or user namespaces are unavailable, Start fails with the reason.
  // There is no unisolated mode: a server that cannot isolate code refuses to run it.
};

class Sandbox {
 public:
  virtual ~Sandbox() = default;

  // Runs `spec`, writing the result's bytes to `result_path` (created, replaced). Blocks until the
  // job ends. `cancel` may be null; when it becomes true the job is killed and the outcome is
  // kKilled. An error Status means the job could not be started at all (bad spec, sandbox down).
  virtual Result<JobResult> Run(const JobSpec& spec, const std::string& result_path,
                                const std::atomic<bool>* cancel) = 0;

  // What isolation is in force, for logs and /settings: "bubblewrap 0.8.0, seccomp, uid 65534,
  // ...".
  virtual std::string Describe() const = 0;

  // Sets the number of slots (1..kMaxSlots). A new slot's template is forked from a warm one (it
  // imports nothing anew; a fresh start when none is free within 2 s or the fork fails), and ends
  // with it; a slot beyond the number ends once its job does (the newest first). Returns once the
  // new slots are warm. (StartSandbox starts each of its slots afresh.)
  virtual Status Resize(int slots) = 0;
  virtual int Slots() const = 0;
  // How many of the slots' templates were forked from another's (the rest started fresh).
  virtual int ClonedSlots() const = 0;

  // The environment as the sandbox's Python saw it at start: {"python": version, "packages":
  // ["name==version", ...] sorted, "modules": top-level modules of its site directories}.
  virtual nlohmann::json Environment() const = 0;
};

inline constexpr int kMaxSlots = 64;

// Starts `options.slots` warm processes. Fails with FailedPrecondition and a reason a data owner
// can act on ("bubblewrap is not installed: apt-get install bubblewrap") when isolation can't be
// set up.
Result<std::unique_ptr<Sandbox>> StartSandbox(const Options& options);

// The state custom policies keep between runs may not be longer than this, as JSON text.
inline constexpr size_t kMaxPolicyStateBytes = size_t{16} << 10;

// Calls one job may make to API endpoints; past this, each call fails in the job.
inline constexpr int kMaxEndpointCalls = 1000;
// Connections one job may ask for (JobSpec::on_connect); past this, each request fails in the job.
inline constexpr int kMaxConnects = 256;
// A call's arguments may nest arrays and objects at most this deep (as HTTP bodies).
inline constexpr int kMaxCallDepth = 64;

// A CSV result's sidecar may not be longer than this (data::kMaxSidecarBytes).
inline constexpr uint64_t kMaxResultMetaBytes = uint64_t{256} << 10;

// The host's decoding of what the template and a job's child send (see runner.py), exposed for the
// fuzz target fuzz/sandbox_report_fuzzer.cc. Not for other callers.
namespace internal {

// Takes one complete message (4-byte little-endian length, then a JSON object of at most 64 KiB)
// off the front of `buffer`; nullopt until one has fully arrived. kInternal when it is oversized or
// not a JSON object (it is then consumed).
Result<std::optional<nlohmann::json>> PopMessage(std::string& buffer);
// The template's pid from its `hello`; nullopt when `hello` is no valid hello.
std::optional<int> HelloPid(const nlohmann::json& hello);
// The job number of the template's `exited` message; nullopt for any other message.
std::optional<uint64_t> ExitedJob(const nlohmann::json& message);
// Whether `message` is exactly the child's `started`.
bool IsStarted(const nlohmann::json& message);
// The endpoint call `message` asks for, when it is exactly one: {"type": "call", "endpoint":
// a string of at most 200 bytes, "side": "auto" | "mock" | "private", "kwargs": an object nested
// at most kMaxCallDepth deep}.
std::optional<EndpointCall> DecodeCall(const nlohmann::json& message);
// The connection `message` asks for, when it is exactly {"type": "connect", "host": a non-empty
// string of at most 255 bytes, "port": an integer 1..65535} (its socket is left unset).
std::optional<ConnectRequest> DecodeConnect(const nlohmann::json& message);
// What a job's `done` report means: the outcome, error, result format and claimed size (the caller
// compares the size, plus the sidecar's, with what the result pipe gave; stdout_text and
// stderr_text are left empty). A report that is not exactly one of the runner's own shapes is
// MalformedReport(); after `started` a claimed sandbox failure is one too.
JobResult DecodeReport(const nlohmann::json& done, const Limits& limits, bool started);
JobResult MalformedReport();
// What the template's `exited` message means for a child that ended without a report.
JobResult DecodeExit(const nlohmann::json& exited, const Limits& limits);

}  // namespace internal

}  // namespace datasite::sandbox

#endif  // DATASITE_SANDBOX_SANDBOX_H_
