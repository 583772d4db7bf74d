#include "api/json_body.h"

#include <algorithm>

namespace datasite::api {

Result<JsonBody> JsonBody::Parse(std::string_view body,
                                 std::initializer_list<std::string_view> allowed) {
  if (NestsDeeperThan(body, kMaxBodyDepth)) {
    return InvalidArgumentError("request body nests deeper than 64 levels");
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return InvalidArgumentError(body.empty() ? "request body is empty; send a JSON object"
                                             : "request body is not valid JSON");
  }
  return FromObject(std::move(j), allowed, "request body");
}

Result<JsonBody> JsonBody::FromObject(nlohmann::json j,
                                      std::initializer_list<std::string_view> allowed,
                                      const std::string& where) {
  if (!j.is_object()) return InvalidArgumentError(where + " must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string shown = key.substr(0, 64);
      return InvalidArgumentError("unknown field '" + shown + "'" +
                                  (where == "request body" ? "" : " in " + where));
    }
  }
  return JsonBody(std::move(j));
}

Result<std::optional<uint64_t>> JsonBody::OptionalUnsigned(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return std::optional<uint64_t>();
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
    return InvalidArgumentError(std::string("field '") + field + "' must be a whole number >= 0");
  }
  return std::optional<uint64_t>(it->get<uint64_t>());
}

Result<std::optional<std::vector<JsonBody>>> JsonBody::OptionalObjects(
    const char* field, std::initializer_list<std::string_view> allowed) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return std::optional<std::vector<JsonBody>>();
  if (!it->is_array())
    return InvalidArgumentError(std::string("field '") + field + "' must be an array");
  std::vector<JsonBody> out;
  for (size_t i = 0; i < it->size(); ++i) {
    ASSIGN_OR_RETURN(JsonBody item, FromObject((*it)[i], allowed,
                                               std::string(field) + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(item));
  }
  return std::optional<std::vector<JsonBody>>(std::move(out));
}

Result<std::optional<std::string>> JsonBody::OptionalString(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string())
    return InvalidArgumentError(std::string("field '") + field + "' must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::string> JsonBody::RequiredString(const char* field) const {
  ASSIGN_OR_RETURN(auto v, OptionalString(field));
  if (!v) return InvalidArgumentError(std::string("field '") + field + "' is required");
  return *v;
}

Result<std::optional<bool>> JsonBody::OptionalBool(const char* field) const {
  auto it = j_.find(field);
  if (it == j_.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean())
    return InvalidArgumentError(std::string("field '") + field + "' must be true or false");
  return std::optional<bool>(it->get<bool>());
}

}  // namespace datasite::api
