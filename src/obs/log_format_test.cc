#include "obs/log_format.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "obs/request_id.h"

namespace datasite::obs {
namespace {

std::string Format(spdlog::formatter& f, std::string_view text) {
  spdlog::details::log_msg msg("datasite", spdlog::level::warn,
                               spdlog::string_view_t(text.data(), text.size()));
  spdlog::memory_buf_t buf;
  f.format(msg, buf);
  return std::string(buf.data(), buf.size());
}

TEST(LogFormatTest, JsonLineParsesWithItsFields) {
  auto f = NewJsonFormatter();
  const std::string line = Format(*f, "a \"quoted\"\nline\x01 caf\xc3\xa9");
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per entry";
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["msg"], "a \"quoted\"\nline\x01 caf\xc3\xa9");
  EXPECT_EQ(j["time"].get<std::string>().size(), 24u);  // 2026-01-02T03:04:05.678Z
  EXPECT_FALSE(j.contains("request_id"));
}

TEST(LogFormatTest, JsonLineCarriesTheRequestId) {
  auto f = NewJsonFormatter();
  ScopedRequestId scope("req-1");
  auto j = nlohmann::json::parse(Format(*f, "hello"));
  EXPECT_EQ(j["request_id"], "req-1");
}

TEST(LogFormatTest, TextLineCarriesTheRequestIdWhenKnown) {
  auto f = NewTextFormatter();
  const std::string without = Format(*f, "hello");
  EXPECT_EQ(without.find("[req "), std::string::npos) << without;
  EXPECT_NE(without.find("] [datasite] [warning] hello"), std::string::npos) << without;
  ScopedRequestId scope("req-2");
  const std::string with = Format(*f, "hello");
  EXPECT_NE(with.find("] [datasite] [warning] [req req-2] hello"), std::string::npos) << with;
}

TEST(LogFormatTest, ParsesFormatNames) {
  EXPECT_EQ(*ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_EQ(*ParseLogFormat("text"), LogFormat::kText);
  EXPECT_FALSE(ParseLogFormat("xml").ok());
}

}  // namespace
}  // namespace datasite::obs
