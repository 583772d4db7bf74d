// A JSON request body through api::JsonBody, read as each route of src/api reads its body: the same
// allowed fields, then every accessor on every field. Checks that an accepted body is an object
// with allowed fields only and that the accessors agree with the document.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "fuzz_util.h"

namespace {

using datasite::api::JsonBody;
using datasite::fuzz::Check;

// Every accessor on `field`; each must answer without throwing and agree with `doc`.
void ReadField(const JsonBody& body, const nlohmann::json& doc, const char* field) {
  auto it = doc.find(field);
  bool absent = it == doc.end() || it->is_null();
  auto s = body.OptionalString(field);
  Check(s.ok() == (absent || it->is_string()), "OptionalString disagrees with the type");
  if (s.ok()) Check(s->has_value() == !absent, "OptionalString disagrees with presence");
  if (s.ok() && s->has_value()) Check(**s == it->get<std::string>(), "OptionalString value");
  auto raw = body.Field(field);
  Check(raw.has_value() == (it != doc.end()), "Field disagrees with presence");
  if (raw) Check(*raw == *it, "Field value");
  auto r = body.RequiredString(field);
  Check(r.ok() == (s.ok() && s->has_value()), "RequiredString disagrees with OptionalString");
  auto b = body.OptionalBool(field);
  Check(b.ok() == (absent || it->is_boolean()), "OptionalBool disagrees with the type");
  auto u = body.OptionalUnsigned(field);
  if (u.ok() && u->has_value()) {
    Check(it->is_number_integer(), "OptionalUnsigned accepted a non-integer");
    Check(**u == it->get<uint64_t>(), "OptionalUnsigned value");
  }
  if (!absent && it->is_number_float()) Check(!u.ok(), "OptionalUnsigned accepted a float");
  if (!absent && it->is_number_integer() && !it->is_number_unsigned() && it->get<int64_t>() < 0) {
    Check(!u.ok(), "OptionalUnsigned accepted a negative number");
  }
}

void ReadObjects(const JsonBody& body, const nlohmann::json& doc, const char* field,
                 std::initializer_list<std::string_view> allowed) {
  auto objects = body.OptionalObjects(field, allowed);
  if (!objects.ok() || !objects->has_value()) return;
  const nlohmann::json& array = doc.at(field);
  Check(array.is_array() && array.size() == (*objects)->size(), "OptionalObjects size");
  for (size_t i = 0; i < array.size(); ++i) {
    Check(array[i].is_object(), "OptionalObjects accepted a non-object");
    for (std::string_view f : allowed) {
      std::string name(f);
      ReadField((**objects)[i], array[i], name.c_str());
    }
  }
}

// Parses `text` with the allowed fields of one route and reads every field.
void ReadAs(std::string_view text, std::initializer_list<std::string_view> allowed) {
  auto body = JsonBody::Parse(text, allowed);
  if (!body.ok()) {
    Check(body.status().code() == datasite::StatusCode::kInvalidArgument,
          "Parse refused with another code than kInvalidArgument");
    return;
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  Check(doc.is_object(), "Parse accepted a body that is not a JSON object");
  for (const auto& [key, value] : doc.items()) {
    bool known = false;
    for (std::string_view f : allowed) known = known || f == key;
    Check(known, "Parse accepted an unknown field");
  }
  for (std::string_view f : allowed) {
    std::string name(f);
    ReadField(*body, doc, name.c_str());
  }
  ReadObjects(*body, doc, "contributors", {"name", "email", "role"});
  ReadObjects(*body, doc, "assets", {"name", "description", "data", "mock", "mock_is_real"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // The allowed fields of each route that reads a body (src/api/routes.cc, dataset_routes.cc,
  // code_routes.cc).
  ReadAs(text, {"email", "password"});
  ReadAs(text, {});
  ReadAs(text, {"name", "email", "password", "password_verify", "institution", "website"});
  ReadAs(text, {"name", "email", "institution", "website"});
  ReadAs(text, {"old_password", "new_password"});
  ReadAs(text, {"name", "email", "password", "password_verify", "role", "institution", "website"});
  ReadAs(text, {"name", "email", "institution", "website", "role", "password"});
  ReadAs(text, {"name", "organization", "description", "signup_enabled", "notifications_enabled",
                "admin_email", "association_request_auto_approval", "allow_guest_sessions",
                "welcome_markdown", "output_review"});
  ReadAs(text, {"seed"});
  ReadAs(text, {"name", "summary", "description", "citation", "url", "contributors", "assets"});
  ReadAs(text, {"name", "summary", "description", "citation", "url", "contributors"});
  ReadAs(text, {"name", "source", "inputs", "output_policy"});
  ReadAs(text, {"inputs", "mock", "blocking", "timeout_seconds"});
  ReadAs(text, {"code_id", "reason"});
  ReadAs(text, {"reason"});
  return 0;
}
