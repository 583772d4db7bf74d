#include "data/mock_params.h"

#include <cmath>
#include <initializer_list>
#include <limits>
#include <set>
#include <string_view>
#include <utility>

namespace datasite::data {
namespace {

using Json = nlohmann::json;

Status Bad(const std::string& field, const std::string& what) {
  return InvalidArgumentError(field + ": " + what);
}

std::string Joined(std::initializer_list<std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Refuses a field of `object` not in `allowed`.
Status CheckFields(const Json& object, const std::string& where,
                   std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) {
      std::string field = where.empty() ? key : where + "." + key;
      return Bad(field, "unknown field; expected one of " + Joined(allowed));
    }
  }
  return Status::Ok();
}

Result<uint64_t> WholeNumber(const Json& v, const std::string& field, uint64_t lo, uint64_t hi) {
  bool whole = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
  if (!whole || v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
    return Bad(field,
               "must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v.get<uint64_t>();
}

// A finite number; `integer` tells whether it is a JSON integer that fits an int64_t.
Status Number(const Json& v, const std::string& field, double& real, int64_t& whole,
              bool& integer) {
  if (v.is_number_unsigned()) {
    integer = v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    whole = integer ? static_cast<int64_t>(v.get<uint64_t>()) : 0;
    real = static_cast<double>(v.get<uint64_t>());
    return Status::Ok();
  }
  if (v.is_number_integer()) {
    integer = true;
    whole = v.get<int64_t>();
    real = static_cast<double>(whole);
    return Status::Ok();
  }
  if (v.is_number_float() && std::isfinite(v.get<double>())) {
    integer = false;
    real = v.get<double>();
    return Status::Ok();
  }
  return Bad(field, "must be a finite number");
}

Result<MockValueParams> ValueParams(const Json& spec, const std::string& where,
                                    std::initializer_list<std::string_view> allowed) {
  if (!spec.is_object()) return Bad(where, "must be an object");
  RETURN_IF_ERROR(CheckFields(spec, where, allowed));
  MockValueParams p;
  auto min = spec.find("min");
  auto max = spec.find("max");
  if ((min == spec.end()) != (max == spec.end())) {
    return Bad(where, "give both min and max, or neither");
  }
  if (min != spec.end()) {
    MockBounds b;
    bool min_int = false, max_int = false;
    RETURN_IF_ERROR(Number(*min, where + ".min", b.min, b.imin, min_int));
    RETURN_IF_ERROR(Number(*max, where + ".max", b.max, b.imax, max_int));
    b.integers = min_int && max_int;
    if (b.min > b.max || (b.integers && b.imin > b.imax)) {
      return Bad(where + ".min", "must not be greater than max");
    }
    p.bounds = b;
  }
  if (auto c = spec.find("categories"); c != spec.end()) {
    const std::string field = where + ".categories";
    if (p.bounds) return Bad(field, "give either categories or min and max, not both");
    if (!c->is_array() || c->empty() || c->size() > kMaxMockCategories) {
      return Bad(field, "must be a list of 1 to " + std::to_string(kMaxMockCategories) +
                            " strings, numbers or booleans");
    }
    std::vector<Json> categories;
    for (size_t i = 0; i < c->size(); ++i) {
      const Json& v = (*c)[i];
      const std::string item = field + "[" + std::to_string(i) + "]";
      if (v.is_string()) {
        if (v.get_ref<const std::string&>().size() > kMaxMockCategoryBytes) {
          return Bad(item, "is longer than " + std::to_string(kMaxMockCategoryBytes) + " bytes");
        }
      } else if (v.is_number_float()) {
        if (!std::isfinite(v.get<double>())) return Bad(item, "must be finite");
      } else if (!v.is_number() && !v.is_boolean()) {
        return Bad(item, "must be a string, a number or a boolean");
      }
      categories.push_back(v);
    }
    p.categories = std::move(categories);
  }
  if (auto n = spec.find("null_fraction"); n != spec.end()) {
    if (!n->is_number() || !(n->get<double>() >= 0 && n->get<double>() <= 1)) {
      return Bad(where + ".null_fraction", "must be a number from 0 to 1");
    }
    p.null_fraction = n->get<double>();
  }
  if (auto l = spec.find("length"); l != spec.end()) {
    ASSIGN_OR_RETURN(p.length, WholeNumber(*l, where + ".length", 0, kMaxMockRows));
  }
  return p;
}

// A JSON Pointer: "" or "/"-separated segments, "~" only as "~0" or "~1".
Status CheckPath(const std::string& path, const std::string& field) {
  if (!path.empty() && path[0] != '/') {
    return Bad(field, "'" + path.substr(0, 100) +
                          "' is not a JSON Pointer: it must be \"\" (the top-level value) or "
                          "start with '/'");
  }
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '~' && (i + 1 == path.size() || (path[i + 1] != '0' && path[i + 1] != '1'))) {
      return Bad(field, "'~' in a path must be written ~0, and '/' inside a key ~1");
    }
  }
  return Status::Ok();
}

Result<std::map<std::string, MockValueParams>> Specs(
    const Json& section, const std::string& name, bool paths,
    std::initializer_list<std::string_view> allowed) {
  if (!section.is_object()) return Bad(name, "must be an object");
  if (section.size() > kMaxMockSpecs) {
    return Bad(name, "has more than " + std::to_string(kMaxMockSpecs) + " entries");
  }
  std::map<std::string, MockValueParams> out;
  for (const auto& [key, spec] : section.items()) {
    const std::string where = name + "." + key;
    if (paths) RETURN_IF_ERROR(CheckPath(key, where));
    ASSIGN_OR_RETURN(out[key], ValueParams(spec, where, allowed));
  }
  return out;
}

}  // namespace

Result<MockParams> ParseMockParams(const Json& doc) {
  MockParams p;
  if (doc.is_null()) return p;
  if (!doc.is_object()) return InvalidArgumentError("the mock parameters must be a JSON object");
  RETURN_IF_ERROR(
      CheckFields(doc, "", {"rows", "seed", "columns", "paths", "public_keys", "values"}));
  if (auto r = doc.find("rows"); r != doc.end()) {
    ASSIGN_OR_RETURN(p.rows, WholeNumber(*r, "rows", 1, kMaxMockRows));
  }
  if (auto s = doc.find("seed"); s != doc.end()) {
    ASSIGN_OR_RETURN(p.seed, WholeNumber(*s, "seed", 0, std::numeric_limits<uint64_t>::max()));
  }
  if (auto c = doc.find("columns"); c != doc.end()) {
    ASSIGN_OR_RETURN(p.columns,
                     Specs(*c, "columns", false, {"min", "max", "categories", "null_fraction"}));
  }
  if (auto c = doc.find("paths"); c != doc.end()) {
    ASSIGN_OR_RETURN(
        p.paths, Specs(*c, "paths", true, {"min", "max", "categories", "null_fraction", "length"}));
  }
  if (auto k = doc.find("public_keys"); k != doc.end()) {
    if (!k->is_array() || k->size() > kMaxMockSpecs) {
      return Bad("public_keys", "must be a list of at most " + std::to_string(kMaxMockSpecs) +
                                    " paths (JSON Pointers) of objects");
    }
    std::vector<std::string> keys;
    for (size_t i = 0; i < k->size(); ++i) {
      const std::string field = "public_keys[" + std::to_string(i) + "]";
      if (!(*k)[i].is_string()) return Bad(field, "must be a string (a JSON Pointer)");
      keys.push_back((*k)[i].get<std::string>());
      RETURN_IF_ERROR(CheckPath(keys.back(), field));
    }
    p.public_keys = std::move(keys);
  }
  if (auto v = doc.find("values"); v != doc.end()) {
    ASSIGN_OR_RETURN(p.values, ValueParams(*v, "values", {"min", "max", "null_fraction"}));
  }
  return p;
}

}  // namespace datasite::data
