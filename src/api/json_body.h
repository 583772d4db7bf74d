// JsonBody: strict reading of a JSON request body. Unknown fields and wrong types are refused with
// a message naming the field.
#ifndef DATASITE_API_JSON_BODY_H_
#define DATASITE_API_JSON_BODY_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_depth.h"
#include "core/status.h"

namespace datasite::api {

// Moved to core (sync checks bundles with it too); named here still for the routes.
using ::datasite::NestsDeeperThan;

// Deeper bodies are refused before parsing: copying, comparing or printing a document recurses once
// per level, and a 1 MiB body of '[' would overflow a thread's stack.
inline constexpr int kMaxBodyDepth = 64;

class JsonBody {
 public:
  // kInvalidArgument for malformed JSON (an empty body included), a non-object, or a field not in
  // `allowed`.
  static Result<JsonBody> Parse(std::string_view body,
                                std::initializer_list<std::string_view> allowed);

  Result<std::optional<std::string>> OptionalString(const char* field) const;
  Result<std::string> RequiredString(const char* field) const;
  Result<std::optional<bool>> OptionalBool(const char* field) const;
  // A non-negative whole number.
  Result<std::optional<uint64_t>> OptionalUnsigned(const char* field) const;
  // The field's raw JSON value; nullopt when absent.
  std::optional<nlohmann::json> Field(const char* field) const {
    auto it = j_.find(field);
    if (it == j_.end()) return std::nullopt;
    return *it;
  }
  // An array of objects, each read strictly with its own allowed fields; nullopt when absent.
  Result<std::optional<std::vector<JsonBody>>> OptionalObjects(
      const char* field, std::initializer_list<std::string_view> allowed) const;

 private:
  explicit JsonBody(nlohmann::json j) : j_(std::move(j)) {}
  static Result<JsonBody> FromObject(nlohmann::json j,
                                     std::initializer_list<std::string_view> allowed,
                                     const std::string& where);
  nlohmann::json j_;
};

}  // namespace datasite::api

#endif  // DATASITE_API_JSON_BODY_H_
