#include "sandbox/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace datasite::sandbox {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

std::string RandomToken() {
  std::random_device rd;
  std::string s = "SECRET-";
  for (int i = 0; i < 24; ++i) s += "abcdefghijklmnopqrstuvwxyz0123456789"[rd() % 36];
  return s;
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kError:
      return "error";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kKilled:
      return "killed";
    case Outcome::kResourceLimit:
      return "resource_limit";
    case Outcome::kSandboxFailure:
      return "sandbox_failure";
    case Outcome::kPolicy:
      return "policy";
    case Outcome::kEnvironment:
      return "environment";
  }
  return "?";
}

// A chroot (a debootstrap root, as ../shared/tools/fresh-machine makes: its root directory is mode
// 0700 and the kernel refuses user namespaces in a chroot) can't hold a sandbox. There, and only
// there, a sandbox that fails to start skips the tests; anywhere else it fails them.
bool InChroot() {
  struct stat root {
  }, init_root{};
  if (stat("/", &root) != 0) return false;
  if (stat("/proc/1/root", &init_root) != 0) return errno == EACCES;
  return root.st_dev != init_root.st_dev || root.st_ino != init_root.st_ino;
}

constexpr const char* kChrootReason =
    "running in a chroot where bubblewrap can't start (no user namespaces, root dir not enterable)";

// One sandbox for the whole suite: starting one costs a Python start-up with pandas per slot.
class SandboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = StartSandbox({.python = "/usr/bin/python3", .slots = 2});
    if (!started.ok() && InChroot()) {
      impossible_ = true;
      return;
    }
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    sandbox_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete sandbox_;
    sandbox_ = nullptr;
  }

  void SetUp() override {
    if (impossible_) GTEST_SKIP() << kChrootReason;
    ASSERT_NE(sandbox_, nullptr);
    dir_ = fs::temp_directory_path() /
           ("sandbox-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path Asset(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    WriteFile(p, bytes);
    return p;
  }

  static JobSpec Spec(const std::string& source, std::vector<Input> inputs = {},
                      nlohmann::json constants = nlohmann::json::object()) {
    JobSpec spec;
    spec.source = source;
    spec.function_name = "f";
    spec.inputs = std::move(inputs);
    spec.constants = std::move(constants);
    spec.limits.memory_bytes = uint64_t{1} << 30;
    spec.limits.wall_timeout = std::chrono::milliseconds(30'000);
    return spec;
  }

  JobResult Run(const JobSpec& spec, const std::atomic<bool>* cancel = nullptr) {
    auto r = sandbox_->Run(spec, (dir_ / "result").string(), cancel);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return JobResult{};
    return *r;
  }
  std::string Result() { return ReadFile(dir_ / "result"); }

  static std::string Explain(const JobResult& r) {
    return std::string("outcome=") + OutcomeName(r.outcome) + " error=" + r.error +
           "\nstderr=" + r.stderr_text.substr(0, 3000);
  }

  void ExpectHealthy() {
    JobResult r = Run(Spec("def f():\n    return 41 + 1\n"));
    ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
    EXPECT_EQ(Result(), "42");
  }

  static Sandbox* sandbox_;
  static bool impossible_;
  static int counter_;
  fs::path dir_;
};
Sandbox* SandboxTest::sandbox_ = nullptr;
bool SandboxTest::impossible_ = false;
int SandboxTest::counter_ = 0;

constexpr char kCsv[] = "a,b\n1,x\n2,y\n3,z\n";

TEST_F(SandboxTest, CsvInputIsADataFrame) {
  auto r =
      Run(Spec("def f(data):\n    return [int(data['a'].sum()), list(data.columns), len(data)]\n",
               {{"data", Asset("d.csv", kCsv).string(), "csv"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.result_format, "json");
  EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(R"([6, ["a", "b"], 3])"));
  EXPECT_EQ(r.result_bytes, Result().size());
  EXPECT_TRUE(r.error.empty());
}

TEST_F(SandboxTest, JsonInputRoundTrips) {
  std::string doc = R"({"k": [1, 2.5, "s", null, true], "n": {"x": -3}})";
  auto r =
      Run(Spec("def f(doc):\n    return doc\n", {{"doc", Asset("d.json", doc).string(), "json"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(doc));
}

std::string NpyInt64(const std::vector<int64_t>& values) {
  std::string header = "{'descr': '<i8', 'fortran_order': False, 'shape': (" +
                       std::to_string(values.size()) + ",), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
  return out;
}

TEST_F(SandboxTest, NpyInputAndNpyResult) {
  auto r = Run(Spec("def f(arr):\n    return arr * 2\n",
                    {{"arr", Asset("a.npy", NpyInt64({1, 2, 3})).string(), "npy"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.result_format, "npy");
  std::string npy = Result();
  ASSERT_GE(npy.size(), 24u);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(npy.find("'descr': '<i8'"), std::string::npos);
  EXPECT_EQ(npy.substr(npy.size() - 24),
            NpyInt64({2, 4, 6}).substr(NpyInt64({2, 4, 6}).size() - 24));
}

TEST_F(SandboxTest, ObjectArrayIsNeitherLoadedNorReturned) {
  auto r = Run(Spec("import numpy\ndef f():\n    return numpy.array([object()])\n"));
  EXPECT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_NE(r.error.find("results never travel as pickles"), std::string::npos) << r.error;
}

TEST_F(SandboxTest, RawInputIsBytesAndBytesResultRoundTrips) {
  std::string raw(
      "\x00\x01\xff"
      "binary\n",
      10);
  auto r = Run(Spec("def f(blob):\n    assert isinstance(blob, bytes)\n    return blob + b'!'\n",
                    {{"blob", Asset("b.bin", raw).string(), "raw"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.result_format, "bytes");
  EXPECT_EQ(Result(), raw + "!");
}

TEST_F(SandboxTest, DataFrameResultIsCsv) {
  auto r = Run(Spec("def f(data):\n    return data[data['a'] > 1]\n",
                    {{"data", Asset("d.csv", kCsv).string(), "csv"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.result_format, "csv");
  // A filtered frame keeps its (non-default) index; the sidecar says it is one.
  EXPECT_EQ(Result(), ",a,b\r\n1,2,y\r\n2,3,z\r\n");
  EXPECT_EQ(r.result_bytes, Result().size());
  auto meta = nlohmann::json::parse(r.result_meta);
  EXPECT_EQ(meta["kind"], "frame");
  EXPECT_EQ(meta["index"]["levels"][0]["dtype"], "int64");
}

TEST_F(SandboxTest, DefaultIndexIsLeftOutOfCsv) {
  auto r = Run(Spec("import pandas\ndef f():\n    return pandas.DataFrame({'x': [1, 2]})\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(Result(), "x\r\n1\r\n2\r\n");
  EXPECT_EQ(nlohmann::json::parse(r.result_meta)["index"]["range"], nlohmann::json({0, 2, 1}));
}

TEST_F(SandboxTest, SeriesResultIsCsv) {
  auto r = Run(Spec("def f(data):\n    return data.groupby('b')['a'].sum()\n",
                    {{"data", Asset("d.csv", kCsv).string(), "csv"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.result_format, "csv");
  EXPECT_EQ(Result(), "b,a\r\nx,1\r\ny,2\r\nz,3\r\n");
  EXPECT_EQ(nlohmann::json::parse(r.result_meta)["kind"], "series");
}

// Issue 12: the job sees the DataFrame the owner uploaded, read with its sidecar.
TEST_F(SandboxTest, CsvInputWithASidecarHasItsDtypesAndIndex) {
  const std::string meta =
      R"({"datasite":"pandas/1","kind":"frame","columns_names":[null],"columns_dtype":"object",)"
      R"("index":{"levels":[{"dtype":"int64","name":"a"}]},)"
      R"("columns":[{"dtype":"category","ordered":true,"name":"b",)"
      R"("categories":{"dtype":"object","values":["z","y","x"]}}]})";
  auto r =
      Run(Spec("def f(data):\n    return [str(data.index.dtype), data.index.name, "
               "list(data['b'].cat.categories), bool(data['b'].cat.ordered)]\n",
               {{"data", Asset("d.csv", kCsv).string(), "csv", meta}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()),
            nlohmann::json::parse(R"(["int64", "a", ["z", "y", "x"], true])"));
}

TEST(DecodeReportTest, ACsvResultMayCarryASidecarOfBoundedSize) {
  Limits limits;
  auto done = [](std::initializer_list<std::pair<const char*, nlohmann::json>> extra) {
    nlohmann::json d = {{"type", "done"}, {"status", "ok"}, {"format", "csv"}, {"bytes", 10u}};
    for (const auto& [key, value] : extra) d[key] = value;
    return d;
  };
  JobResult ok = internal::DecodeReport(done({{"meta_bytes", 5u}}), limits, true);
  EXPECT_EQ(ok.outcome, Outcome::kOk);
  EXPECT_EQ(ok.result_meta.size(), 5u);
  EXPECT_TRUE(internal::DecodeReport(done({}), limits, true).result_meta.empty());
  const std::string malformed = internal::MalformedReport().error;
  for (const nlohmann::json& bad : {
           done({{"meta_bytes", 0u}}),
           done({{"meta_bytes", kMaxResultMetaBytes + 1}}),
           done({{"meta_bytes", -1}}),
           done({{"meta_bytes", "5"}}),
           done({{"format", "json"}, {"meta_bytes", 5u}}),
           done({{"meta_bytes", 5u}, {"meta", "{}"}}),
       }) {
    SCOPED_TRACE(bad.dump());
    EXPECT_EQ(internal::DecodeReport(bad, limits, true).error, malformed);
  }
}

TEST(DecodeReportTest, PolicyReportsAndStateAreCheckedLikeTheRest) {
  Limits limits;
  nlohmann::json ok = {{"type", "done"}, {"status", "ok"}, {"format", "json"}, {"bytes", 2u}};
  nlohmann::json refused = {
      {"type", "done"}, {"status", "policy"}, {"refused", "output"}, {"error", "no"}};
  JobResult plain = internal::DecodeReport(refused, limits, true);
  EXPECT_EQ(plain.outcome, Outcome::kPolicy);
  EXPECT_EQ(plain.policy_refusal, "output");
  EXPECT_TRUE(plain.policy_state.empty());
  nlohmann::json with_state = ok;
  with_state["policy_state"] = {{"output", {{"n", 1}}}};
  JobResult kept = internal::DecodeReport(with_state, limits, true);
  EXPECT_EQ(kept.outcome, Outcome::kOk);
  EXPECT_EQ(kept.policy_state, R"({"output":{"n":1}})");
  const std::string malformed = internal::MalformedReport().error;
  auto with = [](nlohmann::json d, const char* key, nlohmann::json value) {
    d[key] = std::move(value);
    return d;
  };
  nlohmann::json error = {{"type", "done"}, {"status", "error"}, {"error", "x"}};
  for (const nlohmann::json& bad : {
           with(refused, "refused", "everything"),
           with(refused, "extra", 1),
           with(ok, "policy_state", "not an object"),
           with(ok, "policy_state", {{"big", std::string(kMaxPolicyStateBytes, 'x')}}),
           with(error, "policy_state", nlohmann::json::object()),
       }) {
    SCOPED_TRACE(bad.dump().substr(0, 200));
    EXPECT_EQ(internal::DecodeReport(bad, limits, true).error, malformed);
  }
  // Before `started` no policy has run: a policy report then is not believed.
  EXPECT_EQ(internal::DecodeReport(refused, limits, false).error, malformed);
}

// Custom policies run in the job's process around the function: the output policy's state comes
// back as JSON, and its refusal ends the run as kPolicy with no result.
TEST_F(SandboxTest, CustomPoliciesRunAroundTheFunctionAndReportTheirState) {
  const std::string policies =
      "class Twice(sy.CustomOutputPolicy):\n"
      "    def __init__(self, n=2):\n"
      "        self.n = n\n"
      "        self.state = {'counts': 0}\n"
      "    def is_valid(self, context):\n"
      "        return self.state['counts'] < self.n\n"
      "    def apply_to_output(self, context, outputs, update_policy=True):\n"
      "        if update_policy:\n"
      "            self.state['counts'] += 1\n"
      "        return {'y': outputs['y']}\n"
      "class Small(sy.CustomInputPolicy):\n"
      "    def is_valid(self, context, usr_input_kwargs):\n"
      "        return usr_input_kwargs['k'] < 10 and self.inputs == {'k': 3}\n";
  JobSpec spec = Spec("def f(k):\n    return {'y': k, 'z': 'kept back'}\n", {}, {{"k", 3}});
  spec.policy = {{"source", policies},
                 {"input", {{"class", "Small"}, {"init_kwargs", {{"k", 3}}}}},
                 {"output", {{"class", "Twice"}, {"init_kwargs", nlohmann::json::object()}}},
                 {"state", nullptr},
                 {"kind", "private"},
                 {"check", true},
                 {"update", true}};
  auto r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(R"({"y": 3})"));
  auto state = nlohmann::json::parse(r.policy_state);
  EXPECT_EQ(state["output"], nlohmann::json::parse(R"({"n": 2, "state": {"counts": 1}})"));

  state["output"]["state"]["counts"] = 2;
  spec.policy["state"] = state;
  r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kPolicy) << Explain(r);
  EXPECT_EQ(r.policy_refusal, "output");

  spec.policy["state"] = nullptr;
  spec.constants["k"] = 30;
  r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kPolicy) << Explain(r);
  EXPECT_EQ(r.policy_refusal, "input");

  // A policy that raises fails the run closed; its traceback goes to stderr.
  spec.constants["k"] = 3;
  spec.policy["source"] = policies +
                          "    def filter_kwargs(self, kwargs, context):\n"
                          "        raise KeyError('nope')\n";
  r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kPolicy) << Explain(r);
  EXPECT_EQ(r.policy_refusal, "error");
  EXPECT_TRUE(r.policy_state.empty());
  EXPECT_NE(r.stderr_text.find("<policy>"), std::string::npos) << r.stderr_text;
}

TEST_F(SandboxTest, NumpyScalarsAndNanBecomePlainJson) {
  auto r =
      Run(Spec("import numpy\ndef f():\n"
               "    return {'i': numpy.int64(3), 'f': numpy.float32(0.5), 'nan': float('nan'),\n"
               "            'b': numpy.bool_(True), 'arr': numpy.arange(3), 1: 'int key'}\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()),
            nlohmann::json::parse(
                R"({"i": 3, "f": 0.5, "nan": null, "b": true, "arr": [0, 1, 2], "1": "int key"})"));
}

TEST_F(SandboxTest, ConstantsArePassedAsKeywordArguments) {
  auto r =
      Run(Spec("def f(data, scale, label):\n    return [int(data['a'].sum()) * scale, label]\n",
               {{"data", Asset("d.csv", kCsv).string(), "csv"}}, {{"scale", 10}, {"label", "ü"}}));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(R"([60, "ü"])"));
}

// The answer a host gives an endpoint call: `bytes` in a descriptor of its own.
EndpointAnswer AnswerWith(const std::string& format, const std::string& bytes,
                          const std::string& printed = "") {
  EndpointAnswer a;
  a.format = format;
  a.stdout_text = printed;
  int fd = memfd_create("answer", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  a.result = UniqueFd(fd);
  return a;
}

TEST_F(SandboxTest, AJobCallsTheEndpointsItWasGivenThroughTheHost) {
  JobSpec spec = Spec(
      "def f(endpoint):\n"
      "    print('before')\n"
      "    a = endpoint(sql='x', limit=2)\n"
      "    b = endpoint.mock('y')\n"
      "    try:\n"
      "        endpoint.private()\n"
      "    except Exception as e:\n"
      "        c = str(e)\n"
      "    print('after')\n"
      "    return [a, list(b['n']), c]\n");
  spec.endpoints.push_back({"endpoint", "warehouse.query", {"sql", "limit"}});
  std::vector<EndpointCall> calls;
  spec.on_call = [&calls](const EndpointCall& call) {
    calls.push_back(call);
    if (call.side == "private") {
      EndpointAnswer refused;
      refused.error = "no private function here";
      return refused;
    }
    if (call.side == "mock") return AnswerWith("csv", "n\n1\n2\n");
    return AnswerWith("json", R"({"rows": 3})", "endpoint printed\n");
  };
  JobResult r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()),
            nlohmann::json::parse(
                R"([{"rows": 3}, [1, 2], "warehouse.query: no private function here"])"));
  // What the job printed before and after the call surrounds what the call printed.
  EXPECT_EQ(r.stdout_text, "before\nendpoint printed\nafter\n");
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0].path, "warehouse.query");
  EXPECT_EQ(calls[0].side, "auto");
  EXPECT_EQ(calls[0].kwargs, nlohmann::json::parse(R"({"sql": "x", "limit": 2})"));
  EXPECT_EQ(calls[1].side, "mock");
  EXPECT_EQ(calls[1].kwargs, nlohmann::json::parse(R"({"sql": "y"})"));  // positional, by name
  EXPECT_EQ(calls[2].side, "private");
}

TEST_F(SandboxTest, ACallFromAJobWithoutEndpointsIsAMalformedReport) {
  // Forged on the job's own channel (fd 3 is not it in the child: the socket is found by type).
  JobSpec spec = Spec(
      "import gc, socket, struct, json\n"
      "def f():\n"
      "    s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]\n"
      "    body = json.dumps({'type': 'call', 'endpoint': 'a.b', 'side': 'private', "
      "'kwargs': {}}).encode()\n"
      "    s.sendall(struct.pack('<I', len(body)) + body)\n"
      "    return s.recv(100)\n");
  JobResult r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_EQ(r.error, internal::MalformedReport().error);
  ExpectHealthy();
}

TEST_F(SandboxTest, AConnectFromAJobWithoutOnConnectIsAMalformedReport) {
  // A data scientist's job has no on_connect: asking the host for a socket is a forged report.
  JobSpec spec = Spec(
      "import gc, socket, struct, json\n"
      "def f():\n"
      "    s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]\n"
      "    body = json.dumps({'type': 'connect', 'host': '127.0.0.1', 'port': 80}).encode()\n"
      "    s.sendall(struct.pack('<I', len(body)) + body)\n"
      "    return s.recv(100)\n");
  JobResult r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_EQ(r.error, internal::MalformedReport().error);
  ExpectHealthy();
}

TEST_F(SandboxTest, DescriptorsComeOnlyWithConnectRequestsAndOnlyUnixSockets) {
  // A pipe sent as a connection's end is refused; a descriptor with any other message, or a
  // connect request without one, is a malformed report.
  const std::string forge =
      "import array, gc, json, os, socket, struct\n"
      "def send(message, fd=None):\n"
      "    s = [o for o in gc.get_objects() if isinstance(o, socket.socket)][0]\n"
      "    body = json.dumps(message).encode()\n"
      "    body = struct.pack('<I', len(body)) + body\n"
      "    rights = [] if fd is None else [(socket.SOL_SOCKET, socket.SCM_RIGHTS,\n"
      "                                     array.array('i', [fd]))]\n"
      "    s.sendmsg([body], rights)\n"
      "    return s.recv(200)\n";
  const std::string connect = "{'type': 'connect', 'host': 'a.example', 'port': 80}";
  int called = 0;
  auto with_egress = [&](const std::string& body) {
    JobSpec spec = Spec(forge + "def f(context):\n" + body);
    spec.endpoint = {{"settings", nlohmann::json::object()}, {"egress", true}};
    spec.on_connect = [&called](ConnectRequest&) {
      ++called;
      return Status::Ok();
    };
    return Run(spec);
  };
  JobResult pipe =
      with_egress("    r, w = os.pipe()\n    return send(" + connect + ", r).decode()\n");
  ASSERT_EQ(pipe.outcome, Outcome::kOk) << Explain(pipe);
  EXPECT_NE(Result().find("must be a Unix stream socket"), std::string::npos) << Result();
  EXPECT_EQ(called, 0);
  JobResult bare = with_egress("    return send(" + connect + ")\n");
  EXPECT_EQ(bare.error, internal::MalformedReport().error) << Explain(bare);
  JobResult other = with_egress(
      "    a, b = socket.socketpair()\n"
      "    return send({'type': 'call', 'endpoint': 'a.b', 'side': 'mock', 'kwargs': {}}, "
      "b.fileno())\n");
  EXPECT_EQ(other.error, internal::MalformedReport().error) << Explain(other);
  EXPECT_EQ(called, 0);
  // A data scientist's job (no on_connect) sending its socket's end: malformed.
  JobSpec plain = Spec(forge + "def f():\n    a, b = socket.socketpair()\n    return send(" +
                       connect + ", b.fileno())\n");
  JobResult scientist = Run(plain);
  EXPECT_EQ(scientist.error, internal::MalformedReport().error) << Explain(scientist);
  ExpectHealthy();
}

TEST_F(SandboxTest, AnEndpointFunctionWithEgressConnectsThroughTheHostOnly) {
  // socket.create_connection sends the host one end of a socket pair the job made, which the host
  // relays to its connection (here it answers "pong" itself); what on_connect refuses is an error
  // in the job. Made in the job's namespaces, the socket says nothing of the host's (SIOCGIFCONF).
  JobSpec spec = Spec(
      "import socket\n"
      "def f(context):\n"
      "    c = socket.create_connection(('Warehouse.example', 5432), timeout=5)\n"
      "    c.sendall(b'ping')\n"
      "    got = c.recv(4).decode()\n"
      "    try:\n"
      "        socket.create_connection(('other.example', 80))\n"
      "        refused = None\n"
      "    except ConnectionRefusedError as e:\n"
      "        refused = str(e)\n"
      "    try:\n"
      "        socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
      "        own = 'made'\n"
      "    except OSError as e:\n"
      "        own = e.errno\n"
      "    import fcntl, struct\n"
      "    try:\n"  // SIOCGIFCONF: on a host-made socket, the host's interfaces
      "        fcntl.ioctl(c.fileno(), 0x8912, struct.pack('iP', 0, 0))\n"
      "        interfaces = 'listed'\n"
      "    except OSError as e:\n"
      "        interfaces = e.errno\n"
      "    return [got, refused, own, interfaces]\n");
  spec.endpoint = {{"settings", nlohmann::json::object()}, {"egress", true}};
  std::vector<std::string> asked;
  int peer = -1;
  spec.on_connect = [&](ConnectRequest& request) -> Status {
    asked.push_back(request.host + ":" + std::to_string(request.port));
    EXPECT_GT(request.time_left.count(), 0);
    if (request.host != "Warehouse.example") return PermissionDeniedError("not that one");
    EXPECT_EQ(write(request.socket.get(), "pong", 4), 4);
    peer = request.socket.release();  // the job's own socket's other end
    return Status::Ok();
  };
  JobResult r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  nlohmann::json got = nlohmann::json::parse(Result());
  EXPECT_EQ(got[0], "pong");
  EXPECT_NE(got[1].get<std::string>().find("not that one"), std::string::npos) << got;
  EXPECT_EQ(got[2], EAFNOSUPPORT);  // its own sockets still reach nothing
  EXPECT_EQ(got[3], EPERM);
  EXPECT_EQ(asked, (std::vector<std::string>{"Warehouse.example:5432", "other.example:80"}));
  char buf[4];
  EXPECT_EQ(read(peer, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  close(peer);
  ExpectHealthy();
}

TEST_F(SandboxTest, ACallNestedDeeperThanAnHttpBodyIsAMalformedReport) {
  // 64 KiB of brackets nest 32,000 deep; copied or printed by the host, that recursed as deep.
  JobSpec spec = Spec(
      "import json, struct\n"
      "def f(endpoint):\n"
      "    body = ('{\"type\":\"call\",\"endpoint\":\"a.b\",\"side\":\"mock\",'\n"
      "            '\"kwargs\":{\"x\":' + '[' * 30000 + ']' * 30000 + '}}').encode()\n"
      "    endpoint._sock.sendall(struct.pack('<I', len(body)) + body)\n"
      "    return endpoint._sock.recv(100)\n");
  spec.endpoints.push_back({"endpoint", "a.b", {}});
  int calls = 0;
  spec.on_call = [&calls](const EndpointCall&) {
    ++calls;
    return AnswerWith("json", "1");
  };
  JobResult r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_EQ(r.error, internal::MalformedReport().error);
  EXPECT_EQ(calls, 0);
  ExpectHealthy();
}

TEST_F(SandboxTest, AJobThatLeavesItsAnswersUnreadIsStoppedNotWaitedFor) {
  // Calls written ahead and never read fill the channel with answers: the host, which used to
  // block on that send for a minute, treats it as a malformed report.
  JobSpec spec = Spec(
      "import json, struct\n"
      "def f(endpoint):\n"
      "    body = json.dumps({'type': 'call', 'endpoint': 'a.b', 'side': 'mock', "
      "'kwargs': {}}).encode()\n"
      "    frame = struct.pack('<I', len(body)) + body\n"
      "    for _ in range(20000):\n"
      "        endpoint._sock.sendall(frame)\n"
      "    return 1\n");
  spec.endpoints.push_back({"endpoint", "a.b", {}});
  spec.limits.wall_timeout = std::chrono::milliseconds(20'000);
  spec.on_call = [](const EndpointCall&) {
    EndpointAnswer refused;
    refused.error = "refused at once, with a long explanation to fill the channel sooner: " +
                    std::string(400, 'x');
    return refused;
  };
  const auto start = std::chrono::steady_clock::now();
  JobResult r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_EQ(r.error, internal::MalformedReport().error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(15));
  ExpectHealthy();
}

TEST(DecodeCallTest, OnlyTheRunnersOwnShapeIsACall) {
  using nlohmann::json;
  auto ok = internal::DecodeCall(
      json::parse(R"({"type":"call","endpoint":"a.b","side":"mock","kwargs":{"x":1}})"));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->path, "a.b");
  EXPECT_EQ(ok->kwargs["x"], 1);
  for (const char* bad : {
           R"({"type":"call","endpoint":"a.b","side":"other","kwargs":{}})",
           R"({"type":"call","endpoint":"a.b","side":"mock","kwargs":[]})",
           R"({"type":"call","endpoint":"","side":"mock","kwargs":{}})",
           R"({"type":"call","endpoint":1,"side":"mock","kwargs":{}})",
           R"({"type":"call","endpoint":"a.b","side":"mock","kwargs":{},"x":1})",
           R"({"type":"done","endpoint":"a.b","side":"mock","kwargs":{}})",
       }) {
    EXPECT_FALSE(internal::DecodeCall(json::parse(bad)).has_value()) << bad;
  }
  EXPECT_FALSE(
      internal::DecodeCall(json::parse(R"({"type":"call","endpoint":")" + std::string(201, 'a') +
                                       R"(","side":"mock","kwargs":{}})"))
          .has_value());
}

TEST_F(SandboxTest, AnEndpointFunctionGetsItsContextAndKeepsItsState) {
  JobSpec spec = Spec(
      "def f(context, x):\n"
      "    n = context.state.get('calls', 0) + 1\n"
      "    context.state['calls'] = n\n"
      "    return [x, n, context.settings['key'], context.user.email, context.code.twice(x),\n"
      "            int(context.assets['t']['a'].sum())]\n",
      {{"t", Asset("t.csv", kCsv).string(), "csv"}}, {{"x", 21}});
  spec.endpoint = {
      {"settings", {{"key", "value"}}},
      {"user",
       {{"id", "u1"}, {"email", "ds@example.org"}, {"name", "D"}, {"role", "data_scientist"}}},
      {"state", {{"calls", 4}}},
      {"helpers", {{"twice", "def twice(v):\n    return 2 * v\n"}}},
      {"assets", {"t"}}};
  JobResult r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(nlohmann::json::parse(Result()),
            nlohmann::json::parse(R"([21, 5, "value", "ds@example.org", 42, 6])"));
  EXPECT_EQ(nlohmann::json::parse(r.policy_state), nlohmann::json::parse(R"({"calls": 5})"));

  // A state that is no JSON keeps nothing and releases nothing.
  JobSpec bad = Spec("def f(context):\n    context.state['x'] = object()\n    return 1\n");
  bad.endpoint = {{"settings", nlohmann::json::object()}, {"state", nlohmann::json::object()}};
  r = Run(bad);
  EXPECT_EQ(r.outcome, Outcome::kPolicy) << Explain(r);
  EXPECT_EQ(r.policy_state, "");
}

TEST_F(SandboxTest, ExceptionIsAnErrorWithTypeMessageAndTraceback) {
  auto r = Run(Spec("def f():\n    x = 1\n    return x / 0\n"));
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(r.error, "ZeroDivisionError: division by zero");
  EXPECT_NE(r.stderr_text.find("Traceback"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("line 3, in f"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.result_bytes, 0u);
  EXPECT_EQ(Result(), "");
}

TEST_F(SandboxTest, SyntaxErrorIsAnError) {
  auto r = Run(Spec("def f(:\n    pass\n"));
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(r.error.rfind("SyntaxError:", 0), 0u) << r.error;
}

TEST_F(SandboxTest, MissingFunctionIsAnError) {
  auto r = Run(Spec("def g():\n    return 1\n"));
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(r.error, "NameError: the source defines no function 'f'");
}

TEST_F(SandboxTest, UnencodableResultIsAnErrorNamingTheType) {
  auto r = Run(Spec("class Thing:\n    pass\ndef f():\n    return Thing()\n"));
  EXPECT_EQ(r.outcome, Outcome::kError);
  EXPECT_EQ(r.error,
            "can't return a Thing: return a DataFrame, Series, ndarray, bytes or a JSON value");
}

TEST_F(SandboxTest, StdoutAndStderrAreCapturedSeparately) {
  auto r =
      Run(Spec("import sys\ndef f():\n    print('to out')\n    print('to err', file=sys.stderr)\n"
               "    return None\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.stdout_text, "to out\n");
  EXPECT_EQ(r.stderr_text, "to err\n");
  EXPECT_EQ(Result(), "null");
}

TEST_F(SandboxTest, LogsAreCutAtTheLimitWithoutFailingTheJob) {
  JobSpec spec = Spec(
      "import sys\ndef f():\n    sys.stdout.write('o' * 300000)\n"
      "    sys.stderr.write('e' * 300000)\n    return 1\n");
  spec.limits.max_log_bytes = 1000;
  auto r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.stdout_text, std::string(1000, 'o'));
  EXPECT_EQ(r.stderr_text, std::string(1000, 'e'));
}

TEST_F(SandboxTest, StdoutReachesTheSinkWhileTheJobRuns) {
  // The job would sleep 20 s after its first line; the sink cancels it on seeing that line, so the
  // job ends killed only if its stdout arrived while it ran.
  JobSpec spec =
      Spec("import time\ndef f():\n    print('first')\n    time.sleep(20)\n    print('second')\n");
  spec.stdout_interval = std::chrono::milliseconds(20);
  std::atomic<bool> cancel{false};
  std::string streamed;
  spec.on_stdout = [&](std::string_view chunk) {
    streamed.append(chunk);
    if (streamed == "first\n") cancel = true;
  };
  auto t0 = std::chrono::steady_clock::now();
  auto r = Run(spec, &cancel);
  EXPECT_EQ(r.outcome, Outcome::kKilled) << Explain(r);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(streamed, "first\n");
  EXPECT_EQ(r.stdout_text, "first\n");
  ExpectHealthy();
}

TEST_F(SandboxTest, StreamedStdoutStopsAtTheLogLimit) {
  JobSpec spec = Spec(
      "import sys\ndef f():\n    for _ in range(50):\n        sys.stdout.write('o' * 10000)\n"
      "    sys.stdout.flush()\n    return 1\n");
  spec.limits.max_log_bytes = 100'000;
  spec.stdout_chunk_bytes = 4096;
  std::string streamed;
  int calls = 0;
  spec.on_stdout = [&](std::string_view chunk) {
    EXPECT_FALSE(chunk.empty());
    streamed.append(chunk);
    ++calls;
  };
  auto r = Run(spec);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(r.stdout_text, std::string(100'000, 'o'));
  EXPECT_LE(streamed.size(), 100'000u);
  EXPECT_EQ(r.stdout_text.compare(0, streamed.size(), streamed), 0);
  EXPECT_GE(calls, 1);
}

TEST_F(SandboxTest, WallClockTimeoutKillsTheJob) {
  JobSpec spec = Spec("import time\ndef f():\n    print('started')\n    time.sleep(60)\n");
  spec.limits.wall_timeout = std::chrono::milliseconds(1500);
  auto r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kTimeout) << Explain(r);
  EXPECT_EQ(r.error, "wall-clock timeout of 1500 ms");
  EXPECT_EQ(r.stdout_text, "started\n");
  ExpectHealthy();
}

TEST_F(SandboxTest, CancelKillsTheJob) {
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto r = Run(Spec("import time\ndef f():\n    time.sleep(60)\n"), &cancel);
  canceller.join();
  EXPECT_EQ(r.outcome, Outcome::kKilled) << Explain(r);
  EXPECT_EQ(r.error, "cancelled");
  ExpectHealthy();
}

TEST_F(SandboxTest, MemoryLimitIsAResourceLimit) {
  JobSpec spec = Spec("def f():\n    return len(bytearray(2 << 30))\n");
  spec.limits.memory_bytes = uint64_t{512} << 20;
  auto r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kResourceLimit) << Explain(r);
  EXPECT_EQ(r.error, "memory limit of 512 MiB reached");
  ExpectHealthy();
}

TEST_F(SandboxTest, CpuLimitIsAResourceLimit) {
  JobSpec spec = Spec("def f():\n    while True:\n        pass\n");
  spec.limits.cpu_seconds = 1;
  spec.limits.wall_timeout = std::chrono::milliseconds(60'000);
  auto r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kResourceLimit) << Explain(r);
  EXPECT_EQ(r.error, "CPU time limit of 1 s reached");
  ExpectHealthy();
}

TEST_F(SandboxTest, ResultOverTheLimitIsAResourceLimit) {
  JobSpec spec = Spec("def f():\n    return b'x' * 5000\n");
  spec.limits.max_result_bytes = 4096;
  auto r = Run(spec);
  EXPECT_EQ(r.outcome, Outcome::kResourceLimit) << Explain(r);
  EXPECT_EQ(r.error, "the result is larger than the limit of 4096 bytes");
  EXPECT_EQ(Result(), "");
}

TEST_F(SandboxTest, ScratchIsPrivateWritableAndWipedBetweenJobs) {
  auto w =
      Run(Spec("import os\ndef f():\n    open('left.txt', 'w').write('mine')\n"
               "    open('/tmp/also.txt', 'w').write('mine')\n    return os.getcwd()\n"));
  ASSERT_EQ(w.outcome, Outcome::kOk) << Explain(w);
  for (int i = 0; i < 2; ++i) {  // both slots
    auto r = Run(Spec("import os\ndef f():\n    return [os.listdir('.'), os.listdir('/tmp')]\n"));
    ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
    EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(R"([[], ["job"]])"));
  }
}

// Every job is forked from a warm template: a random generator seeded in the template would give
// each job the same numbers. Noise an owner approved ("the sum plus np.random.normal(...)") would
// then be the noise of a free mock run, and subtracted from the private result (a cold attack did).
TEST_F(SandboxTest, EachJobDrawsRandomNumbersOfItsOwn) {
  std::set<std::string> numpy_draws, python_draws;
  for (int i = 0; i < 5; ++i) {  // more jobs than slots: some share a template
    auto r =
        Run(Spec("import random\nimport numpy as np\nimport pandas as pd\n"
                 "def f():\n    return [float(np.random.random()), random.random(),\n"
                 "            pd.Series(range(1000)).sample(3).tolist()]\n"));
    ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
    auto drawn = nlohmann::json::parse(Result());
    numpy_draws.insert(drawn[0].dump() + drawn[2].dump());
    python_draws.insert(drawn[1].dump());
  }
  EXPECT_EQ(numpy_draws.size(), 5u) << "numpy's global generator repeats across jobs";
  EXPECT_EQ(python_draws.size(), 5u) << "Python's random repeats across jobs";
}

TEST_F(SandboxTest, ThreadsAreAllowed) {
  auto r =
      Run(Spec("import threading\ndef f():\n    out = []\n"
               "    t = threading.Thread(target=lambda: out.append(7))\n"
               "    t.start(); t.join()\n    return out\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_EQ(Result(), "[7]");
}

struct ProcessInfo {
  pid_t pid;
  pid_t ppid;
  std::string name;
};

// Every process on the machine, from /proc/<pid>/stat.
std::vector<ProcessInfo> Processes() {
  std::vector<ProcessInfo> out;
  DIR* proc = opendir("/proc");
  while (dirent* e = readdir(proc)) {
    pid_t pid = atoi(e->d_name);
    if (pid <= 0) continue;
    std::string stat = ReadFile("/proc/" + std::string(e->d_name) + "/stat");
    size_t open = stat.find('(');
    size_t close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    out.push_back({pid, ppid, stat.substr(open + 1, close - open - 1)});
  }
  closedir(proc);
  return out;
}

// The bubblewrap processes this test process started (one per slot).
std::set<pid_t> BwrapPids() {
  std::set<pid_t> pids;
  for (const ProcessInfo& p : Processes())
    if (p.ppid == getpid() && p.name == "bwrap") pids.insert(p.pid);
  return pids;
}

// The processes whose parent is one of `parents`.
std::set<pid_t> ChildrenOf(const std::set<pid_t>& parents) {
  std::set<pid_t> pids;
  for (const ProcessInfo& p : Processes())
    if (parents.count(p.ppid)) pids.insert(p.pid);
  return pids;
}

// Whether `pid` has ended (gone, or a zombie nobody reaped yet).
bool Ended(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return close == std::string::npos || stat.compare(close + 2, 1, "Z") == 0;
}

// Kills the warm processes (through their bubblewrap parents) and waits until they have ended, so
// that the next job finds them dead between jobs (a job sent while one is still dying may run and
// lose its report, which the sandbox rightly fails); returns how many.
int KillWarmProcesses() {
  std::set<pid_t> pids = BwrapPids();
  std::set<pid_t> all = pids;
  for (pid_t child : ChildrenOf(pids)) all.insert(child);
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (int i = 0; i < 500; ++i) {
    bool ended = true;
    for (pid_t pid : all) ended = ended && Ended(pid);
    if (ended) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return static_cast<int>(pids.size());
}

// ---------------------------------------------------------------------------------------------
// Jobs must not see each other (issue 11). These run on a sandbox of one slot, so that every job
// follows the previous one on the same warm process.

// Python source a probing job starts with: tests/sandbox_probes/forge.py (forge(report): a framed
// report on every socket the job holds) and scan.py (scan(needle): private rows in the job's
// memory).
std::string Probe(const char* name) { return ReadFile(fs::path(DATASITE_PROBES_DIR) / name); }

class OneSlotTest : public SandboxTest {
 protected:
  static void SetUpTestSuite() {
    auto started = StartSandbox({.python = "/usr/bin/python3", .slots = 1});
    if (!started.ok() && InChroot()) {
      impossible_ = true;
      return;
    }
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    one_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete one_;
    one_ = nullptr;
  }
  void SetUp() override {
    swap_ = sandbox_;
    sandbox_ = one_;
    SandboxTest::SetUp();
  }
  void TearDown() override {
    SandboxTest::TearDown();
    sandbox_ = swap_;
  }
  // The needle is built at run time from its reversal, so no job's source or constants hold it.
  static std::string Reversed(const std::string& s) { return std::string(s.rbegin(), s.rend()); }

  static Sandbox* one_;
  Sandbox* swap_ = nullptr;
};
Sandbox* OneSlotTest::one_ = nullptr;

TEST_F(OneSlotTest, PrivateRowsInAForgedReportDoNotReachTheNextJob) {
  const std::string needle = "PRIVROW-" + RandomToken();
  std::string csv = "row\n";
  for (int i = 0; i < 500; ++i) csv += needle + "-" + std::to_string(i) + "\n";
  // A run on private data smuggles its rows out in a report with an extra field...
  JobSpec leak = Spec(Probe("forge.py") +
                          "def f(data):\n"
                          "    rows = ''.join(data['row'].astype(str) + ',')\n"
                          "    forge({'status': 'error', 'error': 'boom', 'rows': rows})\n"
                          "    forge({'type': 'done', 'id': 1, 'status': 'error', 'rows': rows})\n"
                          "    return 1\n",
                      {{"data", Asset("private.csv", csv).string(), "csv"}});
  JobResult first = Run(leak);
  EXPECT_EQ(first.error.find(needle), std::string::npos);
  // ...and the next job, with no data at all, scans the memory it was forked with.
  for (int i = 0; i < 2; ++i) {
    JobResult scan = Run(Spec(Probe("scan.py") + "def f(r):\n    return scan(r[::-1])\n", {},
                              {{"r", Reversed(needle)}}));
    ASSERT_EQ(scan.outcome, Outcome::kOk) << Explain(scan);
    EXPECT_EQ(Result(), "[0, true]") << "private rows found in a later job's memory";
  }
}

TEST_F(OneSlotTest, AnEarlierJobIsNotOnTheNextJobsStackOrHeap) {
  const std::string key = "APIKEY-" + RandomToken();
  // Another user's job: a constant (an API key) and an error whose text holds private values.
  JobResult first =
      Run(Spec("def f(api_key):\n    raise ValueError('private ' + api_key + '-1,')\n", {},
               {{"api_key", key}}));
  ASSERT_EQ(first.outcome, Outcome::kError) << Explain(first);
  JobResult walk = Run(Spec(
      Probe("scan.py") + "import gc, sys\n"
                         "def f(r):\n"
                         "    has = lambda o: r[::-1] in repr(o)  # no frame keeps the needle\n"
                         "    hits, frame = 0, sys._getframe().f_back\n"
                         "    while frame is not None:\n"
                         "        hits += sum(has(v) for v in frame.f_locals.values())\n"
                         "        frame = frame.f_back\n"
                         "    hits += sum(1 for o in gc.get_objects() if isinstance(o, "
                         "dict) and has(o))\n"
                         "    return [hits, scan(r[::-1])]\n",
      {}, {{"r", Reversed(key)}}));
  ASSERT_EQ(walk.outcome, Outcome::kOk) << Explain(walk);
  EXPECT_EQ(Result(), "[0, [0, true]]") << "the earlier job's constant was found";
}

TEST_F(OneSlotTest, ForgedReportsAreErrorsOfTheJobThatSentThem) {
  struct Case {
    const char* forged;
  } cases[] = {
      {"{'status': 'error', 'error': 'FORGED', 'extra': 'x'}"},
      {"{'status': 'sandbox', 'error': 'FORGED'}"},
      {"{'status': 'ok', 'format': 'json', 'bytes': 1, 'error': 'FORGED'}"},
      {"{'status': 'error', 'error': ['FORGED']}"},
      {"b'[' * 20000 + b']' * 20000"},
      {"b'\\xff\\xfeFORGED'"},
  };
  for (const Case& c : cases) {
    JobSpec spec = Spec(Probe("forge.py") + "def f():\n    forge(" + c.forged +
                        ")\n    import os\n    os._exit(0)\n");
    JobResult r = Run(spec);
    EXPECT_EQ(r.outcome, Outcome::kError) << c.forged << ": " << Explain(r);
    EXPECT_EQ(r.error.find("FORGED"), std::string::npos) << c.forged << ": " << r.error;
    EXPECT_NE(r.error.find("report"), std::string::npos) << c.forged << ": " << r.error;
  }
  // The warm process was not disturbed: the same bubblewrap still serves.
  std::set<pid_t> before = BwrapPids();
  ExpectHealthy();
  EXPECT_EQ(BwrapPids(), before);
}

TEST_F(OneSlotTest, ForgedReportsDoNotCrashOrRestartTheWarmProcess) {
  ExpectHealthy();
  std::set<pid_t> before = BwrapPids();
  for (const char* forged : {"b'[' * 20000 + b']' * 20000", "b'{' * 5000",
                             "{'type': 'done', 'id': 1, 'status': 'ok', 'x': [[[[[[]]]]]]}"}) {
    Run(Spec(Probe("forge.py") + "def f():\n    forge(" + forged + ")\n    return 2\n"));
  }
  ExpectHealthy();
  EXPECT_EQ(BwrapPids(), before) << "the warm process was restarted";
}

// A job that reports and runs on (its pipes closed, so the host has its answer) must not hold up
// the next job: it is killed once its report is in.
TEST_F(OneSlotTest, AJobThatReportsAndRunsOnDoesNotHoldUpTheNext) {
  JobResult r =
      Run(Spec(Probe("forge.py") +
               "import sys, time\n"
               "def f():\n"
               "    frame, fds = sys._getframe(1), None\n"
               "    while frame is not None and fds is None:\n"
               "        fds, frame = frame.f_locals.get('fds'), frame.f_back\n"
               "    for fd in (1, 2, fds[2]):\n"
               "        os.close(fd)\n"
               "    forge({'type': 'done', 'status': 'ok', 'format': 'json', 'bytes': 0})\n"
               "    time.sleep(60)\n"));
  // Whatever it claimed is its own result (an empty one); the point is what follows.
  EXPECT_NE(r.outcome, Outcome::kSandboxFailure) << Explain(r);
  auto start = std::chrono::steady_clock::now();
  ExpectHealthy();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(OneSlotTest, InodesInScratchAreCapped) {
  JobSpec flood = Spec(
      "import os\ndef f():\n    n = 0\n    try:\n        for n in range(60000):\n"
      "            open(f'/tmp/f{n}', 'w').close()\n    except OSError as e:\n"
      "        return [n, e.errno]\n    return [n, 0]\n");
  JobResult r = Run(flood);
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  auto got = nlohmann::json::parse(Result());
  EXPECT_LT(got[0].get<int>(), 60000 - 1) << "no cap on files in /tmp";
  // The next job finds an empty scratch at once.
  JobSpec next = Spec("import os\ndef f():\n    return len(os.listdir('/tmp'))\n");
  next.limits.wall_timeout = std::chrono::milliseconds(3000);
  JobResult after = Run(next);
  ASSERT_EQ(after.outcome, Outcome::kOk) << Explain(after);
  EXPECT_EQ(Result(), "1");  // only its own scratch directory
}

// The next job's child is forked while a job runs, and a job's child may still be ending when the
// next job starts (a child that touched much memory takes a while to go): each child has mount,
// network and IPC namespaces of its own, so what a job leaves in its last moments (abstract Unix
// sockets, files in /tmp) is out of the next job's reach.
TEST_F(OneSlotTest, AJobStillEndingIsOutOfTheNextJobsReach) {
  const std::string token = RandomToken();
  JobSpec leave = Spec(
      "import socket\n"
      "held = []\n"
      "def f(token):\n"
      "    for i in range(40):\n"
      "        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "        s.bind('\\0' + token + str(i))\n"
      "        s.listen(1)\n"
      "        held.append(s)\n"
      "    open('/tmp/' + token, 'w').write('private ages 31,42')\n"
      "    held.append(bytearray(400 << 20))  # 400 MiB touched: its unmapping takes a while\n"
      "    return 'left'\n",
      {}, {{"token", token}});
  JobSpec look = Spec(
      "import os, socket\n"
      "def f(token):\n"
      "    met = 0\n"
      "    for i in range(40):\n"
      "        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "        try:\n"
      "            c.connect('\\0' + token + str(i))\n"
      "            met += 1\n"
      "        except OSError:\n"
      "            pass\n"
      "        c.close()\n"
      "    return [met, os.path.exists('/tmp/' + token)]\n",
      {}, {{"token", token}});
  for (int round = 0; round < 5; ++round) {
    JobResult left = Run(leave);
    ASSERT_EQ(left.outcome, Outcome::kOk) << Explain(left);
    JobResult looked = Run(look);
    ASSERT_EQ(looked.outcome, Outcome::kOk) << Explain(looked);
    EXPECT_EQ(Result(), "[0, false]") << "the next job met the one before, round " << round;
  }
}

// A cold attack on the change above: a job that was still ending told the next job a 32-bit secret,
// exactly, in which of 32 standard-library files it held locked (locks go only once a process's
// memory has been freed, and both jobs can open the same files; the same held between two slots
// before). No job may take a file lock of any kind.
TEST_F(OneSlotTest, AJobCanNotTellTheNextOneAnythingInFileLocks) {
  const std::string files =
      "import fcntl, os, struct\n"
      "def files():\n"
      "    d = os.path.dirname(os.__file__)\n"
      "    seen, out = set(), []\n"
      "    for n in sorted(os.listdir(d)):\n"
      "        p = os.path.join(d, n)\n"
      "        if n.endswith('.py') and not os.path.islink(p) and os.stat(p).st_ino not in seen:\n"
      "            seen.add(os.stat(p).st_ino)\n"
      "            out.append(p)\n"
      "    return out[:32]\n";
  JobSpec lock =
      Spec(files +
               "held = []\n"
               "def f(secret):\n"
               "    errors = set()\n"
               "    for i, p in enumerate(files()):\n"
               "        fd = os.open(p, os.O_RDONLY)\n"
               "        held.append(fd)\n"
               "        try:\n"
               "            if secret >> i & 1 and i < 16:\n"
               "                fcntl.flock(fd, fcntl.LOCK_EX)\n"
               "            elif secret >> i & 1:\n"
               "                fcntl.lockf(fd, fcntl.LOCK_SH)\n"
               "        except OSError as e:\n"
               "            errors.add(e.errno)\n"
               "    held.append(bytearray(600 << 20))  # so that it takes a while to end\n"
               "    return sorted(errors)\n",
           {}, {{"secret", 0}});
  JobSpec probe =
      Spec(files +
           "import time\n"
           "def f():\n"
           "    fds = [os.open(p, os.O_RDONLY) for p in files()]\n"
           "    seen, end = 0, time.time() + 0.5\n"
           "    while time.time() < end:\n"
           "        for i, fd in enumerate(fds):\n"
           "            try:\n"
           "                if i < 16:\n"
           "                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
           "                    fcntl.flock(fd, fcntl.LOCK_UN)\n"
           "                else:\n"
           "                    q = struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0)\n"
           "                    if struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, "
           "q))[0] != fcntl.F_UNLCK:\n"
           "                        seen |= 1 << i\n"
           "            except BlockingIOError:\n"
           "                seen |= 1 << i\n"
           "            except OSError:\n"
           "                pass\n"
           "    return seen\n");
  for (int round = 0; round < 3; ++round) {
    const uint32_t secret = 0x80010001u | std::random_device{}();  // both kinds of lock
    lock.constants["secret"] = secret;
    JobResult held = Run(lock);
    ASSERT_EQ(held.outcome, Outcome::kOk) << Explain(held);
    EXPECT_EQ(Result(), "[" + std::to_string(ENOLCK) + "]") << "a job took a file lock";
    JobResult seen = Run(probe);
    ASSERT_EQ(seen.outcome, Outcome::kOk) << Explain(seen);
    EXPECT_EQ(Result(), "0") << "the next job read locks (secret " << secret << "), round "
                             << round;
  }
}

// The same attack: a spare warmed up (touched the pandas paths) when no job had come 50 ms after it
// was ready, and it is now forked while the job before runs, so the next job read in its own page
// faults whether the one before had run long: one bit a job, 16 of 16 read right. Spares no longer
// warm up; what a job finds in its own counters is the same after a long job as after a short one.
TEST_F(OneSlotTest, AJobsPageFaultsDoNotTellHowLongTheOneBeforeRan) {
  JobSpec sleep = Spec("import time\ndef f(s):\n    time.sleep(s)\n    return s\n", {}, {{"s", 0}});
  JobSpec count = Spec(
      "import resource\ndef f():\n    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n");
  std::vector<long> after[2];
  for (int round = 0; round < 6; ++round) {
    const int bit = round % 2;
    sleep.constants["s"] = bit ? 0.3 : 0.0;
    ASSERT_EQ(Run(sleep).outcome, Outcome::kOk);
    JobResult r = Run(count);
    ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
    after[bit].push_back(std::stol(Result()));
  }
  std::sort(after[0].begin(), after[0].end());
  std::sort(after[1].begin(), after[1].end());
  // Medians: a warm-up costs about 1,500 faults; runs differ by a few dozen.
  EXPECT_LT(std::labs(after[1][1] - after[0][1]), 400)
      << "after a short job " << after[0][1] << " faults, after a long one " << after[1][1];
}

// A covert channel found by an attack on the first version of this design: every child of a slot
// took the next pid of one namespace, so a job could tell the next job a number by starting
// threads (and /proc/1/stat added up what the template's children had used).
TEST_F(OneSlotTest, PidsAndProcTellAJobNothingOfEarlierJobs) {
  JobSpec probe = Spec(
      "import os, threading\ndef f():\n    ids = []\n"
      "    t = threading.Thread(target=lambda: ids.append(threading.get_native_id()))\n"
      "    t.start(); t.join()\n"
      "    try:\n        proc = sorted(os.listdir('/proc'))\n    except OSError as e:\n"
      "        proc = e.errno\n"
      "    return [os.getpid(), os.getppid(), ids[0], proc]\n");
  ASSERT_EQ(Run(probe).outcome, Outcome::kOk);
  std::string before = Result();
  JobResult burn =
      Run(Spec("import threading\ndef f():\n    for _ in range(300):\n"
               "        t = threading.Thread(target=int); t.start(); t.join()\n    return 0\n"));
  ASSERT_EQ(burn.outcome, Outcome::kOk) << Explain(burn);
  ASSERT_EQ(Run(probe).outcome, Outcome::kOk);
  EXPECT_EQ(Result(), before) << "a job's pids depend on what earlier jobs did";
  EXPECT_EQ(before, "[1, 0, 2, []]");
}

TEST_F(OneSlotTest, ThreadsOfAJobAreCapped) {
  JobResult r =
      Run(Spec("import ctypes, threading\ndef f():\n    stop, n = threading.Event(), 0\n"
               "    ctypes.CDLL(None).mallopt(-8, 1)  # M_ARENA_MAX: threads share one arena\n"
               "    threading.stack_size(65536)  # so the address-space limit is far off\n"
               "    try:\n"
               "        for n in range(5000):\n"
               "            threading.Thread(target=stop.wait, daemon=True).start()\n"
               "    except RuntimeError:\n        pass\n    stop.set()\n    return n\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  EXPECT_LT(std::stoi(Result()), 300) << "a job can take the machine's pids with threads";
  ExpectHealthy();
}

TEST_F(OneSlotTest, ControlCharactersInAnErrorAreShownEscaped) {
  JobResult r = Run(Spec(
      "def f():\n    raise ValueError('\\x1b]0;owned\\x07\\x1b[2J\\x9b31m All checks passed')\n"));
  ASSERT_EQ(r.outcome, Outcome::kError) << Explain(r);
  EXPECT_EQ(r.error.find('\x1b'), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find('\x07'), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("\xc2\x9b"), std::string::npos) << r.error;
  EXPECT_EQ(r.error, "ValueError: \\x1b]0;owned\\x07\\x1b[2J\\u009b31m All checks passed");
}

TEST_F(OneSlotTest, MemoryOutsideTheAddressSpaceLimitIsRefused) {
  JobResult r =
      Run(Spec("import os\ndef f():\n    out = {}\n"
               "    try:\n        os.memfd_create('x')\n        out['memfd'] = 'allowed'\n"
               "    except OSError as e:\n        out['memfd'] = e.errno\n"
               "    try:\n        open('/dev/shm/x', 'wb').write(b'x' * 4096)\n        out['shm'] "
               "= 'allowed'\n"
               "    except OSError as e:\n        out['shm'] = e.errno\n"
               "    return out\n"));
  ASSERT_EQ(r.outcome, Outcome::kOk) << Explain(r);
  auto got = nlohmann::json::parse(Result());
  EXPECT_NE(got["memfd"], "allowed");
  EXPECT_NE(got["shm"], "allowed");
}

TEST_F(SandboxTest, DeadWarmProcessIsRestarted) {
  ExpectHealthy();
  ASSERT_EQ(KillWarmProcesses(), 2);
  ExpectHealthy();
  ExpectHealthy();
}

// bwrap --die-with-parent watches the thread that forked it: a restart made from a short-lived
// thread must not leave a sandbox that dies with that thread.
TEST_F(SandboxTest, SandboxOutlivesTheThreadThatRestartedIt) {
  ASSERT_EQ(KillWarmProcesses(), 2);
  std::thread([this] {
    ExpectHealthy();
    ExpectHealthy();
  }).join();
  std::set<pid_t> before = BwrapPids();
  ASSERT_EQ(before.size(), 2u);
  ExpectHealthy();
  ExpectHealthy();
  EXPECT_EQ(BwrapPids(), before);
}

TEST_F(SandboxTest, TwoSlotsRunJobsConcurrently) {
  // A blocks until cancelled; B must finish meanwhile on the other slot.
  std::atomic<bool> cancel_a{false};
  std::atomic<bool> b_done{false};
  JobResult a;
  std::thread ta([&] {
    auto r = sandbox_->Run(Spec("import time\ndef f():\n    time.sleep(120)\n"),
                           (dir_ / "a").string(), &cancel_a);
    if (r.ok()) a = *r;
  });
  std::thread watchdog([&] {
    for (int i = 0; i < 600 && !b_done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel_a = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto b = sandbox_->Run(Spec("def f():\n    return 'b'\n"), (dir_ / "b").string(), nullptr);
  bool a_was_cancelled_before_b = cancel_a.load();
  b_done = true;
  ta.join();
  watchdog.join();
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->outcome, Outcome::kOk);
  EXPECT_FALSE(a_was_cancelled_before_b);
  EXPECT_EQ(a.outcome, Outcome::kKilled);
}

TEST_F(SandboxTest, ManyConcurrentCallersAllGetTheirOwnResult) {
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        fs::path out = dir_ / ("r" + std::to_string(t));
        auto r = sandbox_->Run(Spec("def f(k):\n    return k * 3\n", {}, {{"k", t * 100 + i}}),
                               out.string(), nullptr);
        if (r.ok() && r->outcome == Outcome::kOk &&
            ReadFile(out) == std::to_string((t * 100 + i) * 3))
          ++right;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), 20);
}

TEST_F(SandboxTest, BadSpecsAreInvalidArguments) {
  std::string result = (dir_ / "r").string();
  JobSpec bad_name = Spec("def f(): pass\n");
  bad_name.function_name = "f; import os";
  EXPECT_EQ(sandbox_->Run(bad_name, result, nullptr).status().code(), StatusCode::kInvalidArgument);

  JobSpec bad_format = Spec("def f(x): pass\n", {{"x", Asset("x", "1").string(), "pickle"}});
  auto r = sandbox_->Run(bad_format, result, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("unknown format 'pickle'"), std::string::npos);

  JobSpec twice = Spec("def f(x): pass\n", {{"x", Asset("x", "1").string(), "raw"}}, {{"x", 1}});
  EXPECT_EQ(sandbox_->Run(twice, result, nullptr).status().code(), StatusCode::kInvalidArgument);

  JobSpec not_object = Spec("def f(): pass\n");
  not_object.constants = nlohmann::json::array();
  EXPECT_EQ(sandbox_->Run(not_object, result, nullptr).status().code(),
            StatusCode::kInvalidArgument);

  JobSpec missing = Spec("def f(x): pass\n", {{"x", (dir_ / "nope.csv").string(), "csv"}});
  EXPECT_EQ(sandbox_->Run(missing, result, nullptr).status().code(), StatusCode::kNotFound);

  JobSpec bad_utf8 = Spec("def f():\n    return '\xff'\n");
  EXPECT_EQ(sandbox_->Run(bad_utf8, result, nullptr).status().code(), StatusCode::kInvalidArgument);
  ExpectHealthy();
}

TEST(StartSandboxTest, MissingPythonIsAFailedPrecondition) {
  auto s = StartSandbox({.python = "/usr/bin/python-does-not-exist", .slots = 1});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("no python at /usr/bin/python-does-not-exist"),
            std::string::npos)
      << s.status().message();
}

TEST(StartSandboxTest, PythonOutsideUsrIsAFailedPrecondition) {
  auto s = StartSandbox({.python = "/opt/python3", .slots = 1});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("under /usr"), std::string::npos) << s.status().message();
}

TEST(StartSandboxTest, PythonThatIsNotPythonIsAFailedPrecondition) {
  auto s = StartSandbox({.python = "/usr/bin/true", .slots = 1});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
}

TEST(StartSandboxTest, ZeroSlotsIsInvalid) {
  auto s = StartSandbox({.python = "/usr/bin/python3", .slots = 0});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SandboxTest, DescribeNamesTheIsolation) {
  std::string d = sandbox_->Describe();
  EXPECT_NE(d.find("bubblewrap"), std::string::npos) << d;
  EXPECT_NE(d.find("uid 65534"), std::string::npos) << d;
  EXPECT_NE(d.find("seccomp"), std::string::npos) << d;
  EXPECT_NE(d.find("pandas"), std::string::npos) << d;
}

// ---------------------------------------------------------------------------------------------
// Hostile functions: tests/sandbox_hostile/NN_name.py. Line 1: "# expect: OUTCOME — what it tries";
// optional line 2: "# limits: cpu_seconds=N wall_ms=N memory_mib=N". Outcomes: ok, ok-bytes,
// ok-contained (returns {"escaped": false, ...}: it ran but got nowhere), error, resource_limit,
// timeout.

struct Hostile {
  std::string name;
  std::string source;
  std::string expect;
  std::map<std::string, uint64_t> limits;
};

void PrintTo(const Hostile& h, std::ostream* os) { *os << h.name; }

std::vector<Hostile> LoadHostile() {
  std::vector<Hostile> out;
  for (const auto& entry : fs::directory_iterator(DATASITE_HOSTILE_DIR)) {
    if (entry.path().extension() != ".py") continue;
    Hostile h;
    h.name = entry.path().stem().string();
    h.source = ReadFile(entry.path());
    std::istringstream lines(h.source);
    std::string first, second;
    std::getline(lines, first);
    std::getline(lines, second);
    if (first.rfind("# expect: ", 0) == 0) {
      std::string rest = first.substr(10);
      h.expect = rest.substr(0, rest.find(' '));
    }
    if (second.rfind("# limits:", 0) == 0) {
      std::istringstream kv(second.substr(9));
      std::string item;
      while (kv >> item) {
        size_t eq = item.find('=');
        if (eq != std::string::npos)
          h.limits[item.substr(0, eq)] = std::stoull(item.substr(eq + 1));
      }
    }
    out.push_back(std::move(h));
  }
  std::sort(out.begin(), out.end(),
            [](const Hostile& a, const Hostile& b) { return a.name < b.name; });
  return out;
}

class HostileTest : public SandboxTest, public ::testing::WithParamInterface<Hostile> {
 protected:
  static void SetUpTestSuite() {
    SandboxTest::SetUpTestSuite();
    secret_ = RandomToken();
    secret_dir_ = fs::temp_directory_path() / ("sandbox-secret-" + std::to_string(getpid()));
    fs::create_directories(secret_dir_);
    WriteFile(secret_dir_ / "datasite.db", "SQLite format 3\n" + secret_);
    // Like a server: the secret is in the environment and in a file it holds open.
    setenv("DATASITE_TEST_SECRET", secret_.c_str(), 1);
    secret_fd_ = open((secret_dir_ / "datasite.db").c_str(), O_RDONLY);  // deliberately inheritable
  }
  static void TearDownTestSuite() {
    close(secret_fd_);
    fs::remove_all(secret_dir_);
    unsetenv("DATASITE_TEST_SECRET");
    SandboxTest::TearDownTestSuite();
  }
  void CheckContained();

  static std::string secret_;
  static fs::path secret_dir_;
  static int secret_fd_;
};
std::string HostileTest::secret_;
fs::path HostileTest::secret_dir_;
int HostileTest::secret_fd_ = -1;

TEST_P(HostileTest, IsContained) { CheckContained(); }

void HostileTest::CheckContained() {
  const Hostile& h = GetParam();
  ASSERT_FALSE(h.expect.empty()) << h.name << ": first line must be '# expect: OUTCOME ...'";
  std::string marker = "datasite-hostile-was-here";
  for (const fs::path& where : {fs::path("/tmp"), fs::path("/"), secret_dir_})
    fs::remove(where / marker);

  std::string csv = "a,b\n1,x\n2,y\n3,z\n";
  nlohmann::json constants = nlohmann::json::object();
  if (h.source.find("secret_path") != std::string::npos)
    constants["secret_path"] = (secret_dir_ / "datasite.db").string();
  JobSpec spec = Spec(h.source, {{"data", Asset("data.csv", csv).string(), "csv"}}, constants);
  spec.limits.memory_bytes = (h.limits.count("memory_mib") ? h.limits.at("memory_mib") : 768) << 20;
  spec.limits.cpu_seconds = h.limits.count("cpu_seconds") ? h.limits.at("cpu_seconds") : 20;
  spec.limits.wall_timeout =
      std::chrono::milliseconds(h.limits.count("wall_ms") ? h.limits.at("wall_ms") : 20'000);
  spec.limits.max_result_bytes = 1 << 20;
  spec.limits.max_log_bytes = 64 << 10;

  JobResult r = Run(spec);
  std::string result = Result();
  if (getenv("SANDBOX_TEST_VERBOSE") != nullptr)
    std::cerr << h.name << ": " << Explain(r) << "\nresult=" << result.substr(0, 1500) << "\n";
  std::string expect = h.expect;
  if (expect == "ok" || expect == "ok-bytes" || expect == "ok-contained") {
    ASSERT_EQ(r.outcome, Outcome::kOk) << h.name << ": " << Explain(r);
    if (expect == "ok-bytes") {
      EXPECT_EQ(r.result_format, "bytes");
    }
    if (expect == "ok-contained") {
      auto doc = nlohmann::json::parse(result, nullptr, false);
      ASSERT_TRUE(doc.is_object())
          << h.name << " must return a JSON object: " << result.substr(0, 500);
      EXPECT_EQ(doc.value("escaped", true), false)
          << h.name << " escaped: " << result.substr(0, 2000);
    }
  } else if (expect == "error") {
    EXPECT_EQ(r.outcome, Outcome::kError) << h.name << ": " << Explain(r);
    EXPECT_FALSE(r.error.empty());
  } else if (expect == "resource_limit") {
    EXPECT_EQ(r.outcome, Outcome::kResourceLimit) << h.name << ": " << Explain(r);
  } else if (expect == "timeout") {
    EXPECT_EQ(r.outcome, Outcome::kTimeout) << h.name << ": " << Explain(r);
  } else {
    FAIL() << h.name << ": unknown expectation '" << expect << "'";
  }
  for (const std::string* text : {&result, &r.stdout_text, &r.stderr_text, &r.error})
    EXPECT_EQ(text->find(secret_), std::string::npos) << h.name << " leaked the secret";
  EXPECT_LE(r.stdout_text.size(), spec.limits.max_log_bytes);
  EXPECT_LE(r.stderr_text.size(), spec.limits.max_log_bytes);
  for (const fs::path& where : {fs::path("/tmp"), fs::path("/"), secret_dir_})
    EXPECT_FALSE(fs::exists(where / marker)) << h.name << " wrote " << (where / marker);
  EXPECT_EQ(ReadFile(secret_dir_ / "datasite.db"), "SQLite format 3\n" + secret_);
  // A normal job still runs on both slots, and finds nothing the hostile one left behind.
  for (int i = 0; i < 2; ++i) {
    JobResult next =
        Run(Spec("import os\ndef f():\n    return [sorted(os.listdir(d)) for d in "
                 "('.', '/tmp', '/dev/shm')]\n"));
    ASSERT_EQ(next.outcome, Outcome::kOk) << h.name << " broke the sandbox: " << Explain(next);
    EXPECT_EQ(nlohmann::json::parse(Result()), nlohmann::json::parse(R"([[], ["job"], []])"))
        << h.name << " left files behind";
  }
}

INSTANTIATE_TEST_SUITE_P(Files, HostileTest, ::testing::ValuesIn(LoadHostile()),
                         [](const ::testing::TestParamInfo<Hostile>& info) {
                           std::string n = "f" + info.param.name;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

TEST(HostileSuiteTest, HasEnoughCases) { EXPECT_GE(LoadHostile().size(), 22u); }

// A virtualenv (--system-site-packages) at `env` holding one package the system Python lacks,
// dsenvprobe 1.2, with its distribution's metadata as pip leaves it. Returns its python.
std::string MakeProbeEnvironment(const fs::path& env) {
  fs::remove_all(env);
  std::string make =
      "/usr/bin/python3 -m venv --system-site-packages --without-pip " + env.string() + " 2>&1";
  EXPECT_EQ(system(make.c_str()), 0);
  std::string version;
  for (const auto& e : fs::directory_iterator(env / "lib")) version = e.path().filename();
  fs::path site = env / "lib" / version / "site-packages";
  fs::create_directories(site / "dsenvprobe");
  WriteFile(site / "dsenvprobe" / "__init__.py", "VALUE = 7\n");
  fs::create_directories(site / "dsenvprobe-1.2.dist-info");
  WriteFile(site / "dsenvprobe-1.2.dist-info" / "METADATA",
            "Metadata-Version: 2.1\nName: dsenvprobe\nVersion: 1.2\n");
  return (env / "bin" / "python").string();
}

// The same hostile functions in a worker pool's sandbox (issue 19): an environment of its own, and
// a second slot whose template was forked from the first's (Resize).
class HostileInPoolTest : public HostileTest {
 protected:
  static void SetUpTestSuite() {
    HostileTest::SetUpTestSuite();
    if (impossible_) return;
    delete sandbox_;
    sandbox_ = nullptr;
    // Not under /tmp: the sandbox mounts its own there.
    env_ = fs::path("/var/tmp") / ("sandbox-hostile-env-" + std::to_string(getpid()));
    std::string python = MakeProbeEnvironment(env_);
    auto started = StartSandbox(Options{
        .python = python, .env_root = env_.string(), .preload = {"dsenvprobe"}, .slots = 1});
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    ASSERT_TRUE((*started)->Resize(2).ok());
    ASSERT_EQ((*started)->ClonedSlots(), 1);
    sandbox_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    HostileTest::TearDownTestSuite();
    fs::remove_all(env_);
  }
  static inline fs::path env_;
};

TEST_P(HostileInPoolTest, IsContained) { CheckContained(); }

INSTANTIATE_TEST_SUITE_P(Files, HostileInPoolTest, ::testing::ValuesIn(LoadHostile()),
                         [](const ::testing::TestParamInfo<Hostile>& info) {
                           std::string n = "f" + info.param.name;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// Worker pools (issue 19): a sandbox over an environment of its own, resized from a warm template.
class EnvironmentTest : public ::testing::Test {
 protected:
  // A virtualenv (--system-site-packages) holding one package the system Python lacks, with its
  // distribution's metadata, as pip would leave it.
  static void SetUpTestSuite() {
    env_ = fs::path("/var/tmp") / ("sandbox-env-" + std::to_string(getpid()));
    MakeProbeEnvironment(env_);
    auto started = StartSandbox(Options{.python = (env_ / "bin" / "python").string(),
                                        .env_root = env_.string(),
                                        .preload = {"dsenvprobe"},
                                        .slots = 1});
    if (!started.ok() && InChroot()) {
      impossible_ = true;
      return;
    }
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    sandbox_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete sandbox_;
    sandbox_ = nullptr;
    fs::remove_all(env_);
  }
  static std::string PythonDir() {
    for (const auto& e : fs::directory_iterator(env_ / "lib")) return e.path().filename();
    return "python3";
  }
  void SetUp() override {
    if (impossible_) GTEST_SKIP() << kChrootReason;
    ASSERT_NE(sandbox_, nullptr);
    result_ = fs::temp_directory_path() / ("sandbox-env-result-" + std::to_string(getpid()));
  }
  void TearDown() override { fs::remove(result_); }

  static JobSpec Spec(const std::string& source) {
    JobSpec spec;
    spec.source = source;
    spec.function_name = "f";
    spec.limits.wall_timeout = std::chrono::milliseconds(30'000);
    return spec;
  }
  JobResult Run(Sandbox& sandbox, const std::string& source) {
    auto r = sandbox.Run(Spec(source), result_.string(), nullptr);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : JobResult{};
  }

  static inline fs::path env_;
  static inline Sandbox* sandbox_ = nullptr;
  static inline bool impossible_ = false;
  fs::path result_;
};

TEST_F(EnvironmentTest, AJobSeesTheEnvironmentsPackagesAlreadyImported) {
  JobResult r = Run(*sandbox_,
                    "import sys\n"
                    "def f():\n"
                    "    loaded = 'dsenvprobe' in sys.modules\n"
                    "    import dsenvprobe\n"
                    "    return [loaded, dsenvprobe.VALUE, sys.prefix]\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
  EXPECT_EQ(ReadFile(result_), "[true, 7, \"" + env_.string() + "\"]");
  nlohmann::json env = sandbox_->Environment();
  auto has = [](const nlohmann::json& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
  };
  EXPECT_TRUE(has(env["packages"], "dsenvprobe==1.2")) << env.dump();
  EXPECT_TRUE(has(env["modules"], "dsenvprobe")) << env.dump();
  EXPECT_FALSE(has(env["modules"], "json")) << "the standard library is not listed";
}

TEST_F(EnvironmentTest, TheEnvironmentIsReadOnlyAndAJobLeavesNothingInIt) {
  JobResult r = Run(*sandbox_,
                    "import dsenvprobe, os\n"
                    "def f():\n"
                    "    where = os.path.dirname(dsenvprobe.__file__)\n"
                    "    try:\n"
                    "        open(os.path.join(where, 'planted.py'), 'w').write('X = 1')\n"
                    "        return 'written'\n"
                    "    except OSError as e:\n"
                    "        return e.errno\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
  EXPECT_NE(ReadFile(result_), "\"written\"");  // EROFS, or ENOENT from the job's filter
  EXPECT_FALSE(
      fs::exists(env_ / "lib" / PythonDir() / "site-packages" / "dsenvprobe" / "planted.py"));
  // A module the job tried to leave in sys.modules is gone for the next job.
  r = Run(*sandbox_,
          "import sys, types\n"
          "def f():\n"
          "    sys.modules['dsenvprobe'].VALUE = 99\n"
          "    return 1\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  r = Run(*sandbox_, "import dsenvprobe\ndef f():\n    return dsenvprobe.VALUE\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(ReadFile(result_), "7");
}

TEST_F(EnvironmentTest, AModuleTheEnvironmentLacksEndsTheJobBeforeItsCodeRuns) {
  // Imported at the top and inside the function: the first by line is named.
  JobResult r = Run(*sandbox_,
                    "print('never printed')\n"
                    "import json\n"
                    "def f():\n"
                    "    import nosuchmodule_b.sub\n"
                    "    from nosuchmodule_c import x\n"
                    "    return 1\n"
                    "import nosuchmodule_a\n");
  EXPECT_EQ(r.outcome, Outcome::kEnvironment) << r.error;
  EXPECT_EQ(r.missing_module, "nosuchmodule_b");
  EXPECT_EQ(r.error, "ModuleNotFoundError: No module named 'nosuchmodule_b'");
  EXPECT_FALSE(r.started);
  EXPECT_EQ(r.stdout_text, "");
  // An import a try guards may be meant to fail; a relative one is not looked up.
  r = Run(*sandbox_,
          "def f():\n"
          "    try:\n"
          "        import nosuchmodule_d\n"
          "    except ImportError:\n"
          "        return 'fallback'\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_TRUE(r.started);
  EXPECT_EQ(ReadFile(result_), "\"fallback\"");
}

TEST_F(EnvironmentTest, ResizingForksWarmTemplatesAndShrinksToOne) {
  ASSERT_TRUE(sandbox_->Resize(4).ok());
  EXPECT_EQ(sandbox_->Slots(), 4);
  EXPECT_EQ(sandbox_->ClonedSlots(), 3) << "the new slots were started afresh, not forked";
  // Jobs from 4 threads at once each get a slot, and each slot's template had the module loaded
  // (a clone imports nothing anew).
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      fs::path out = result_.string() + "-" + std::to_string(t);
      for (int i = 0; i < 3; ++i) {
        auto r =
            sandbox_->Run(Spec("import sys\ndef f():\n    return 'dsenvprobe' in sys.modules\n"),
                          out.string(), nullptr);
        if (r.ok() && r->outcome == Outcome::kOk && ReadFile(out) == "true") ++ok;
      }
      fs::remove(out);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 12);
  ASSERT_TRUE(sandbox_->Resize(1).ok());
  EXPECT_EQ(sandbox_->Slots(), 1);
  EXPECT_EQ(sandbox_->ClonedSlots(), 0);
  JobResult r = Run(*sandbox_, "def f():\n    return 5\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(sandbox_->Resize(0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(sandbox_->Resize(kMaxSlots + 1).code(), StatusCode::kInvalidArgument);
}

// A cold attack on the first clones: forked into bubblewrap's network namespace, two slots' jobs
// running at once could meet on an abstract Unix socket (a private run handing data to a mock
// run). Each clone has network and IPC namespaces of its own.
TEST_F(EnvironmentTest, JobsOfAClonedSlotAndItsOriginCanNotMeet) {
  ASSERT_TRUE(sandbox_->Resize(2).ok());
  ASSERT_EQ(sandbox_->ClonedSlots(), 1);
  const std::string listen =
      "import socket, select\n"
      "def f():\n"
      "    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "    s.bind('\\0datasite-slot-meeting')\n"
      "    s.listen(1)\n"
      "    if not select.select([s], [], [], 4)[0]:\n"
      "        return 'nobody came'\n"
      "    c, _ = s.accept()\n"
      "    return c.recv(100).decode()\n";
  const std::string call =
      "import socket, time\n"
      "def f():\n"
      "    for _ in range(30):\n"
      "        try:\n"
      "            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
      "            c.connect('\\0datasite-slot-meeting')\n"
      "            c.sendall(b'private ages 31,42')\n"
      "            return 'met'\n"
      "        except OSError:\n"
      "            time.sleep(0.1)\n"
      "    return 'refused'\n";
  std::string got[2];
  std::thread listener([&] {
    fs::path out = result_.string() + "-listen";
    auto r = sandbox_->Run(Spec(listen), out.string(), nullptr);
    if (r.ok() && r->outcome == Outcome::kOk) got[0] = ReadFile(out);
    fs::remove(out);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  JobResult r = Run(*sandbox_, call);
  listener.join();
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
  got[1] = ReadFile(result_);
  EXPECT_EQ(got[0], "\"nobody came\"");
  EXPECT_EQ(got[1], "\"refused\"");
  ASSERT_TRUE(sandbox_->Resize(1).ok());
}

// A second cold attack on the clones: they shared bubblewrap's writable /dev/pts, where a mock run
// read what a private run, in the other slot at the same time, wrote to its terminal. No job has
// a terminal now, in any slot.
TEST_F(EnvironmentTest, NoSlotsJobHasATerminal) {
  ASSERT_TRUE(sandbox_->Resize(2).ok());
  ASSERT_EQ(sandbox_->ClonedSlots(), 1);
  for (int i = 0; i < 2; ++i) {  // both slots (they take turns)
    JobResult r = Run(*sandbox_,
                      "import os\n"
                      "def f():\n"
                      "    try:\n"
                      "        os.openpty()\n"
                      "        return 'a terminal'\n"
                      "    except OSError:\n"
                      "        return sorted(os.listdir('/dev/pts'))\n");
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
    EXPECT_EQ(ReadFile(result_), "[]");
  }
  ASSERT_TRUE(sandbox_->Resize(1).ok());
}

// The same attack: a cloned slot's job counted its threads against the first slot's job's limit
// (their user namespaces were nested), so it could stop that job from starting any thread.
TEST_F(EnvironmentTest, ASlotsJobCanNotTakeAnothersThreads) {
  ASSERT_TRUE(sandbox_->Resize(2).ok());
  ASSERT_EQ(sandbox_->ClonedSlots(), 1);
  const std::string hold =
      "import threading, time\n"
      "def f():\n"
      "    threading.stack_size(256 << 10)\n"
      "    stop = threading.Event()\n"
      "    started = 0\n"
      "    for _ in range(250):\n"
      "        try:\n"
      "            threading.Thread(target=stop.wait, daemon=True).start()\n"
      "            started += 1\n"
      "        except RuntimeError:\n"
      "            break\n"
      "    time.sleep(3)\n"
      "    stop.set()\n"
      "    return started\n";
  const std::string count =
      "import threading, time\n"
      "def f():\n"
      "    time.sleep(1)\n"
      "    threading.stack_size(256 << 10)\n"
      "    stop = threading.Event()\n"
      "    started = 0\n"
      "    for _ in range(200):\n"
      "        try:\n"
      "            threading.Thread(target=stop.wait, daemon=True).start()\n"
      "            started += 1\n"
      "        except RuntimeError:\n"
      "            break\n"
      "    stop.set()\n"
      "    return started\n";
  // Each job takes each slot in turn: whichever slot the holder has, the counter has the other.
  for (int round = 0; round < 2; ++round) {
    std::string held;
    std::thread holder([&] {
      fs::path out = result_.string() + "-hold";
      auto r = sandbox_->Run(Spec(hold), out.string(), nullptr);
      if (r.ok() && r->outcome == Outcome::kOk) held = ReadFile(out);
      fs::remove(out);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    JobResult r = Run(*sandbox_, count);
    holder.join();
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
    EXPECT_EQ(held, "250");
    EXPECT_EQ(ReadFile(result_), "200") << "round " << round;
  }
  ASSERT_TRUE(sandbox_->Resize(1).ok());
}

// The same attack, in any sandbox: a job watched which files another opened (inotify on /usr), and
// queued the host's limit of signals so that every other job's sigqueue failed.
TEST_F(EnvironmentTest, AJobCanNotWatchFilesNorQueueTheHostsSignals) {
  JobResult r = Run(*sandbox_,
                    "import ctypes, resource\n"
                    "def f():\n"
                    "    libc = ctypes.CDLL(None, use_errno=True)\n"
                    "    fd = libc.inotify_init1(0)\n"
                    "    return [fd, ctypes.get_errno(), "
                    "list(resource.getrlimit(resource.RLIMIT_SIGPENDING))]\n");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error << r.stderr_text;
  EXPECT_EQ(ReadFile(result_), "[-1, " + std::to_string(EPERM) + ", [256, 256]]");
}

TEST(EnvironmentOptionsTest, BadEnvironmentsAreRefusedSayingWhy) {
  auto s = StartSandbox({.python = "/usr/bin/python3", .env_root = "relative/env", .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  s = StartSandbox({.python = "/usr/bin/python3", .env_root = "/", .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  s = StartSandbox({.python = "/usr/bin/python3", .env_root = "/opt/../etc", .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  s = StartSandbox({.python = "/opt/x/bin/python", .env_root = "/opt/y", .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);  // no such directory
  s = StartSandbox({.python = "/usr/bin/python3", .preload = {"os;rm"}, .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  s = StartSandbox({.python = "/tmp/env/bin/python", .env_root = "/tmp/env", .slots = 1});
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

TEST(EnvironmentOptionsTest, AWarmUpImportThatFailsFailsTheStart) {
  auto s = StartSandbox({.python = "/usr/bin/python3", .preload = {"nosuchmodule_e"}, .slots = 1});
  if (!s.ok() && InChroot() && s.status().message().find("nosuchmodule_e") == std::string::npos)
    GTEST_SKIP() << kChrootReason;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("No module named 'nosuchmodule_e'"), std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace datasite::sandbox
