// The server's log line formats: text (spdlog's, with the request id) or one JSON object per line.
#ifndef DATASITE_OBS_LOG_FORMAT_H_
#define DATASITE_OBS_LOG_FORMAT_H_

#include <memory>
#include <string_view>

#include "core/status.h"

namespace spdlog {
class formatter;
}  // namespace spdlog

namespace datasite::obs {

enum class LogFormat { kText, kJson };

// "text" or "json"; kInvalidArgument otherwise.
Result<LogFormat> ParseLogFormat(std::string_view name);

// Formats a log line as one JSON object: {"time": "2026-01-02T03:04:05.678Z", "level": "info",
// "msg": "...", "request_id": "..."} (request_id only when the thread works for a request, see
// request_id.h). Not thread-safe: spdlog clones it per sink.
std::unique_ptr<spdlog::formatter> NewJsonFormatter();

// spdlog's default text line with "[req ID] " before the message when the thread works for a
// request: "[2026-01-02 03:04:05.678] [datasite] [info] [req 3f2a...] message".
std::unique_ptr<spdlog::formatter> NewTextFormatter();

// Gives every sink of the default logger `format`; text lines carry "[req ID] " when known.
void SetLogFormat(LogFormat format);

}  // namespace datasite::obs

#endif  // DATASITE_OBS_LOG_FORMAT_H_
