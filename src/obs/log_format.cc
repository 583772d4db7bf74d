#include "obs/log_format.h"

#include <chrono>
#include <ctime>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "obs/request_id.h"

namespace datasite::obs {
namespace {

void Append(std::string_view s, spdlog::memory_buf_t& dest) {
  dest.append(s.data(), s.data() + s.size());
}

void AppendJsonString(std::string_view s, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  dest.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        Append("\\\"", dest);
        break;
      case '\\':
        Append("\\\\", dest);
        break;
      case '\n':
        Append("\\n", dest);
        break;
      case '\r':
        Append("\\r", dest);
        break;
      case '\t':
        Append("\\t", dest);
        break;
      default:
        if (c < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
          Append(std::string_view(esc, sizeof(esc)), dest);
        } else {
          // Bytes of UTF-8 pass as they are; a log line never holds invalid UTF-8 on purpose, and
          // a parser that meets some replaces it rather than losing the line.
          dest.push_back(ch);
        }
    }
  }
  dest.push_back('"');
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto since = msg.time.time_since_epoch();
    const std::time_t secs = duration_cast<seconds>(since).count();
    const auto millis = duration_cast<milliseconds>(since).count() % 1000;
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char time[40];
    const size_t n = std::strftime(time, sizeof(time), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(time + n, sizeof(time) - n, ".%03dZ", static_cast<int>(millis));
    Append("{\"time\":\"", dest);
    Append(time, dest);
    Append("\",\"level\":", dest);
    const auto level = spdlog::level::to_string_view(msg.level);
    AppendJsonString(std::string_view(level.data(), level.size()), dest);
    Append(",\"msg\":", dest);
    AppendJsonString(std::string_view(msg.payload.data(), msg.payload.size()), dest);
    if (std::string_view id = CurrentRequestId(); !id.empty()) {
      Append(",\"request_id\":", dest);
      AppendJsonString(id, dest);
    }
    Append("}\n", dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// %* in a text pattern: "[req ID] " when the thread works for a request, else nothing.
class RequestIdFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view id = CurrentRequestId();
    if (id.empty()) return;
    Append("[req ", dest);
    Append(id, dest);
    Append("] ", dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RequestIdFlag>();
  }
};

}  // namespace

Result<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return InvalidArgumentError("--log-format must be text or json, not '" + std::string(name) + "'");
}

std::unique_ptr<spdlog::formatter> NewJsonFormatter() { return std::make_unique<JsonFormatter>(); }

std::unique_ptr<spdlog::formatter> NewTextFormatter() {
  auto text = std::make_unique<spdlog::pattern_formatter>();
  text->add_flag<RequestIdFlag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%n] [%^%l%$] %*%v");
  return text;
}

void SetLogFormat(LogFormat format) {
  spdlog::set_formatter(format == LogFormat::kJson ? NewJsonFormatter() : NewTextFormatter());
}

}  // namespace datasite::obs
