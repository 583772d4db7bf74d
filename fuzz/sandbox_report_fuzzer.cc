// Bytes a job's child sends on its channel back to the host, as the host reads them, and bytes of
// the template's control socket: both are treated as hostile (the child runs the user's code, which
// can write anything to its channel). The input's first byte says which stream it is (bit 7: the
// template's), how it arrives and what the result pipe gave; the rest is the stream. Mirrors
// SandboxImpl::RunOnSlot: the channel's messages are taken apart with
// sandbox::internal::PopMessage, at most one `started` (IsStarted) and then the first other message
// is the report, decoded with DecodeReport (or MalformedReport when PopMessage refuses it), but for
// endpoint calls (DecodeCall) and connection requests (DecodeConnect) of a job given them; the
// template's with PopMessage, HelloPid, ExitedJob and DecodeExit.
//
// Checks: nothing throws; a refused message is kInternal with a message, and an oversized length
// prefix is refused as soon as it is at the front (the inbox never holds more than 64 KiB + 4 bytes
// waiting); a decoded report is one of the outcomes a report may give (never kTimeout or kKilled,
// which only the host decides; never kSandboxFailure after `started`), kOk exactly with a known
// format and a size within the limit, an error line a user reads otherwise, valid UTF-8 and at
// most 2000 bytes plus our own words.
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

constexpr size_t kMaxMessage = 64 << 10;

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

void CheckDecoded(const sandbox::JobResult& r, const sandbox::Limits& limits, bool started) {
  switch (r.outcome) {
    case sandbox::Outcome::kOk:
      Check(r.result_format == "json" || r.result_format == "csv" || r.result_format == "npy" ||
                r.result_format == "bytes",
            "kOk with an unknown format: " + r.result_format);
      Check(r.result_bytes <= limits.max_result_bytes, "kOk with a size over the limit");
      Check(r.result_meta.size() <= sandbox::kMaxResultMetaBytes &&
                (r.result_meta.empty() || r.result_format == "csv"),
            "a sidecar over the limit, or beside a result that is no CSV");
      Check(r.error.empty(), "kOk with an error");
      return;
    case sandbox::Outcome::kSandboxFailure:
      Check(!started, "a job's own code claimed a sandbox failure and was believed");
      break;
    case sandbox::Outcome::kError:
    case sandbox::Outcome::kResourceLimit:
      break;
    case sandbox::Outcome::kTimeout:
    case sandbox::Outcome::kKilled:
      Check(false, "a report decided a timeout or a kill");
      return;
    default:
      Check(false, "an outcome outside the enum");
      return;
  }
  Check(r.result_format.empty() && r.result_bytes == 0 && r.result_meta.empty(),
        "a failed job with a result");
  Check(!r.error.empty(), "a failed job without an error");
  Check(r.error.size() <= 2200, "an error line over 2000 bytes");
  Check(ValidUtf8(r.error), "an error line that is not UTF-8");
  Check(r.stdout_text.empty() && r.stderr_text.empty(), "DecodeReport made up logs");
}

// The template's control stream: a hello, then `exited` messages.
void RunTemplate(std::string_view in, size_t chunk, const sandbox::Limits& limits) {
  std::string inbox;
  bool hello = false;
  bool refused = false;
  for (size_t pos = 0; pos < in.size() && !refused; pos += chunk) {
    inbox.append(in.substr(pos, chunk));
    refused = !PopAll(inbox, [&](json& m) {
      if (!hello) {
        hello = true;
        if (!sandbox::internal::HelloPid(m)) return false;
        Check(m.at("type") == "hello" && m.at("pid").is_number_integer(),
              "an invalid hello was accepted");
        return true;
      }
      std::optional<uint64_t> id = sandbox::internal::ExitedJob(m);
      if (!id) return false;  // the host drops the template
      Check(m.at("type") == "exited" && m.at("id") == *id, "the wrong job's exit was picked");
      sandbox::JobResult r = sandbox::internal::DecodeExit(m, limits);
      Check(r.outcome == sandbox::Outcome::kError || r.outcome == sandbox::Outcome::kResourceLimit,
            "an exit decoded to an outcome only a report or the host decides");
      Check(!r.error.empty() && ValidUtf8(r.error), "an exit without a readable error");
      return true;
    });
  }
}

void Run(std::string_view in) {
  if (in.empty()) return;
  const uint8_t mode = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  // How the bytes arrive: all at once, or in chunks of 1..15 bytes (short reads split prefixes).
  const size_t chunk = (mode & 0x0f) == 0 ? in.size() + 1 : (mode & 0x0f);
  sandbox::Limits limits;
  if (mode & 0x40) limits.cpu_seconds = 1;
  if (mode & 0x20) limits.max_result_bytes = 4096;
  if (mode & 0x80) return RunTemplate(in, chunk, limits);

  std::string inbox;
  bool started = false;
  std::optional<sandbox::JobResult> reported;
  for (size_t pos = 0; pos < in.size() && !reported; pos += chunk) {
    inbox.append(in.substr(pos, chunk));
    while (!reported) {
      auto message = sandbox::internal::PopMessage(inbox);
      if (!message.ok()) {
        Check(message.status().code() == StatusCode::kInternal, "a refusal that is not kInternal");
        Check(!message.status().message().empty(), "a refusal without a reason");
        reported = sandbox::internal::MalformedReport();
        break;
      }
      if (!message->has_value()) {
        if (inbox.size() >= 4) {
          uint32_t n = 0;
          for (int i = 0; i < 4; ++i)
            n |= uint32_t{static_cast<unsigned char>(inbox[i])} << (8 * i);
          Check(n <= kMaxMessage, "an oversized message was not refused");
        }
        break;
      }
      if (!started && sandbox::internal::IsStarted(**message)) {
        started = true;
        continue;
      }
      // After `started`, a job with endpoints may ask for calls (mode bit 4: this one has them).
      if (started && (mode & 0x10)) {
        if (auto call = sandbox::internal::DecodeCall(**message)) {
          Check(!call->path.empty() && call->path.size() <= 200, "a call to an unbounded path");
          Check(call->side == "auto" || call->side == "mock" || call->side == "private",
                "a call to an unknown side");
          Check(call->kwargs.is_object(), "a call whose arguments are no object");
          continue;
        }
        // The same job may ask for connections (an endpoint's private function with egress).
        if (auto request = sandbox::internal::DecodeConnect(**message)) {
          Check(!request->host.empty() && request->host.size() <= 255, "an unbounded host");
          Check(request->port >= 1 && request->port <= 65535, "a port out of range");
          continue;
        }
      }
      reported = sandbox::internal::DecodeReport(**message, limits, started);
    }
  }
  if (reported) CheckDecoded(*reported, limits, started);
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
