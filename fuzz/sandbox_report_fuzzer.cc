// Bytes from the sandbox's control socket, as the host reads them: the warm Python process (which
// forks the children that run untrusted code, and relays a child's report) is treated as hostile.
// The input's first byte says how the stream arrives and what the result pipe gave; the rest is
// the stream. Mirrors SandboxImpl::Start (the first message must be a valid `hello`) and RunOnSlot
// (messages until the `done` of job 1; a bad message loses the warm process): the stream is
// appended to the inbox in chunks and taken apart with sandbox::internal::PopMessage, the hello
// with HelloPid, the report picked with IsDoneReport and decoded with DecodeReport.
//
// Checks: nothing throws; a refused message is kInternal with a message, and an oversized length
// prefix is refused as soon as it is at the front (the inbox never holds more than 1 MiB + 4 bytes
// waiting); a decoded report is one of the outcomes a report may give (never kTimeout or kKilled,
// which only the host decides), kOk exactly with a known format and the size the pipe gave, an
// error line a user reads otherwise, valid UTF-8 and at most 2000 bytes plus our own words.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "sandbox/sandbox.h"

namespace {

using datasite::StatusCode;
using datasite::fuzz::Check;
using datasite::fuzz::ValidUtf8;
namespace sandbox = datasite::sandbox;
using nlohmann::json;

constexpr size_t kMaxMessage = 1 << 20;
constexpr uint64_t kJobId = 1;

// Pops messages off `inbox` as the host does. Returns false when the stream is refused (the host
// then drops the warm process).
template <typename OnMessage>
bool PopAll(std::string& inbox, OnMessage on_message) {
  while (true) {
    auto message = sandbox::internal::PopMessage(inbox);
    if (!message.ok()) {
      Check(message.status().code() == StatusCode::kInternal, "a refusal that is not kInternal");
      Check(!message.status().message().empty(), "a refusal without a reason");
      return false;
    }
    if (!message->has_value()) {
      // Waiting for more: either less than a length prefix, or an allowed length not yet complete.
      if (inbox.size() >= 4) {
        uint32_t n = 0;
        for (int i = 0; i < 4; ++i) n |= uint32_t{static_cast<unsigned char>(inbox[i])} << (8 * i);
        Check(n <= kMaxMessage, "an oversized message was not refused");
        Check(inbox.size() < 4 + size_t{n}, "a complete message was left in the inbox");
      }
      return true;
    }
    Check((*message)->is_object(), "a message that is not an object");
    if (!on_message(**message)) return true;
  }
}

void CheckDecoded(const sandbox::JobResult& r, uint64_t written) {
  switch (r.outcome) {
    case sandbox::Outcome::kOk:
      Check(r.result_format == "json" || r.result_format == "csv" || r.result_format == "npy" ||
                r.result_format == "bytes",
            "kOk with an unknown format: " + r.result_format);
      Check(r.result_bytes == written, "kOk with a size the result pipe did not give");
      Check(r.error.empty(), "kOk with an error");
      return;
    case sandbox::Outcome::kError:
    case sandbox::Outcome::kResourceLimit:
    case sandbox::Outcome::kSandboxFailure:
      break;
    case sandbox::Outcome::kTimeout:
    case sandbox::Outcome::kKilled:
      Check(false, "a report decided a timeout or a kill");
      return;
    default:
      Check(false, "an outcome outside the enum");
      return;
  }
  Check(r.result_format.empty() && r.result_bytes == 0, "a failed job with a result");
  Check(!r.error.empty(), "a failed job without an error");
  Check(r.error.size() <= 2200, "an error line over 2000 bytes");
  Check(ValidUtf8(r.error), "an error line that is not UTF-8");
  Check(r.stdout_text.empty() && r.stderr_text.empty(), "DecodeReport made up logs");
}

void Run(std::string_view in) {
  if (in.empty()) return;
  const uint8_t mode = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  // How the bytes arrive: all at once, or in chunks of 1..15 bytes (short reads split prefixes).
  const size_t chunk = (mode & 0x0f) == 0 ? in.size() + 1 : (mode & 0x0f);
  sandbox::Limits limits;
  if (mode & 0x40) limits.cpu_seconds = 1;

  std::string inbox;
  std::optional<json> hello;
  std::optional<json> done;
  bool refused = false;
  for (size_t pos = 0; pos < in.size() && !refused && !done; pos += chunk) {
    inbox.append(in.substr(pos, chunk));
    if (!hello) {
      refused = !PopAll(inbox, [&](json& m) {
        hello = std::move(m);
        return false;  // Start stops at the first message
      });
      if (!hello) continue;
      std::optional<int> pid = sandbox::internal::HelloPid(*hello);
      if (!pid) return;  // "the sandbox's Python sent no valid hello"
      Check(hello->at("type") == "hello" && hello->at("pid").is_number_integer(),
            "an invalid hello was accepted");
    }
    refused = !PopAll(inbox, [&](json& m) {
      if (sandbox::internal::IsDoneReport(m, kJobId)) {
        Check(m.at("type") == "done" && m.at("id") == kJobId, "the wrong report was picked");
        done = std::move(m);
      }
      return true;  // RunOnSlot takes every message of a read
    });
  }
  if (!done) return;  // the warm process died, or did not report
  uint64_t written = 0;
  switch ((mode >> 4) & 3) {
    case 0:
      written = 0;
      break;
    case 1:
      if (done->contains("bytes") && (*done)["bytes"].is_number_unsigned())
        written = (*done)["bytes"].get<uint64_t>();
      break;
    case 2:
      written = 1;
      break;
    case 3:
      written = uint64_t{1} << 40;
      break;
  }
  CheckDecoded(sandbox::internal::DecodeReport(*done, limits, written), written);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    Run(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::exception& e) {
    Check(false, std::string("the host's decoding threw: ") + e.what());
  }
  return 0;
}
