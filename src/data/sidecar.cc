#include "data/sidecar.h"

#include <initializer_list>
#include <string>

namespace datasite::data {
namespace {

using nlohmann::json;

constexpr size_t kMaxColumns = 10000;
constexpr size_t kMaxIndexLevels = 64;
constexpr int kMaxLabelDepth = 32;

Status Bad(const std::string& what) {
  return InvalidArgumentError("the sidecar is not valid: " + what);
}

// Whether every key of `o` is in `allowed` and every key of `required` is in `o`.
bool Keys(const json& o, std::initializer_list<const char*> allowed,
          std::initializer_list<const char*> required) {
  if (!o.is_object()) return false;
  for (const auto& item : o.items()) {
    bool known = false;
    for (const char* k : allowed) known = known || item.key() == k;
    if (!known) return false;
  }
  for (const char* k : required)
    if (!o.contains(k)) return false;
  return true;
}

bool IsInt(const json& v) { return v.is_number_integer(); }

Status CheckLabel(const json& v, int depth = 0) {
  if (depth > kMaxLabelDepth) return Bad("a label is nested too deeply");
  if (v.is_null() || v.is_boolean() || v.is_string() || IsInt(v)) return Status::Ok();
  if (v.is_object() && v.size() == 1) {
    auto it = v.begin();
    const std::string& key = it.key();
    const json& value = it.value();
    if ((key == "float" && value.is_string() && value.get_ref<const std::string&>().size() <= 40) ||
        (key == "timestamp" && value.is_string() &&
         value.get_ref<const std::string&>().size() <= 64))
      return Status::Ok();
    if (key == "tuple" && value.is_array() && value.size() <= kMaxIndexLevels) {
      for (const json& x : value) RETURN_IF_ERROR(CheckLabel(x, depth + 1));
      return Status::Ok();
    }
  }
  return Bad(
      "a label must be null, a boolean, a string, an integer, or {\"float\"|\"tuple\"|"
      "\"timestamp\": ...}");
}

bool IsDtype(const std::string& d, bool nested) {
  static constexpr std::string_view kNames[] = {"int8",
                                                "int16",
                                                "int32",
                                                "int64",
                                                "uint8",
                                                "uint16",
                                                "uint32",
                                                "uint64",
                                                "float16",
                                                "float32",
                                                "float64",
                                                "bool",
                                                "Int8",
                                                "Int16",
                                                "Int32",
                                                "Int64",
                                                "UInt8",
                                                "UInt16",
                                                "UInt32",
                                                "UInt64",
                                                "Float32",
                                                "Float64",
                                                "boolean",
                                                "string",
                                                "object",
                                                "datetime64[s]",
                                                "datetime64[ms]",
                                                "datetime64[us]",
                                                "datetime64[ns]",
                                                "timedelta64[s]",
                                                "timedelta64[ms]",
                                                "timedelta64[us]",
                                                "timedelta64[ns]",
                                                "category"};
  if (d.empty()) return false;
  for (std::string_view n : kNames)
    if (d == n) return !(nested && d == "category");
  return false;
}

Status CheckColumn(const json& c, bool nested) {
  if (!c.is_object() || !c.contains("dtype") || !c["dtype"].is_string())
    return Bad("each column entry must be an object with a string 'dtype'");
  const std::string& dtype = c["dtype"].get_ref<const std::string&>();
  if (!IsDtype(dtype, nested)) return Bad("unknown dtype '" + dtype.substr(0, 40) + "'");
  if (!Keys(c, {"name", "dtype", "missing", "encoding", "tz", "ordered", "categories"},
            nested ? std::initializer_list<const char*>{"dtype"}
                   : std::initializer_list<const char*>{"name", "dtype"}) ||
      (nested && c.contains("name")))
    return Bad("a column entry has unknown or missing keys");
  if (c.contains("name")) RETURN_IF_ERROR(CheckLabel(c["name"]));
  if (c.contains("missing")) {
    const json& m = c["missing"];
    if (!m.is_object() || m.size() > 4) return Bad("'missing' must map at most 4 tokens");
    for (const auto& [token, kind] : m.items()) {
      if (token.size() > 16 || !kind.is_string() ||
          (kind != "None" && kind != "NaN" && kind != "NA" && kind != "NaT"))
        return Bad("'missing' maps tokens of at most 16 bytes to None, NaN, NA or NaT");
    }
  }
  if (c.contains("encoding") && c["encoding"] != "json") return Bad("'encoding' must be 'json'");
  if (c.contains("tz")) {
    const json& tz = c["tz"];
    const bool named = tz.is_string() && !tz.get_ref<const std::string&>().empty() &&
                       tz.get_ref<const std::string&>().size() <= 64;
    const bool fixed = Keys(tz, {"offset_minutes", "class"}, {"offset_minutes", "class"}) &&
                       IsInt(tz["offset_minutes"]) &&
                       (tz["class"] == "pytz" || tz["class"] == "datetime");
    if (!named && !fixed) return Bad("'tz' must be a zone name or a fixed offset");
  }
  if (dtype == "category") {
    if (!c.contains("ordered") || !c["ordered"].is_boolean() || !c.contains("categories"))
      return Bad("a category column needs 'ordered' and 'categories'");
    const json& cats = c["categories"];
    if (!cats.is_object() || !cats.contains("values") || !cats["values"].is_array())
      return Bad("'categories' must hold 'dtype' and 'values'");
    for (const json& v : cats["values"])
      if (!v.is_string()) return Bad("category values are written as strings");
    json inner = cats;
    inner.erase("values");
    RETURN_IF_ERROR(CheckColumn(inner, true));
  } else if (c.contains("ordered") || c.contains("categories")) {
    return Bad("only a category column has 'ordered' and 'categories'");
  }
  return Status::Ok();
}

}  // namespace

Result<json> ParseSidecar(std::string_view text, std::optional<size_t> csv_columns) {
  if (text.size() > kMaxSidecarBytes)
    return Bad("it is longer than " + std::to_string(kMaxSidecarBytes >> 10) + " KiB");
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return Bad("it is not JSON");
  if (!Keys(doc,
            {"datasite", "kind", "name", "columns_names", "columns_levels", "columns_dtype",
             "index", "columns"},
            {"datasite", "kind", "index", "columns"}))
    return Bad(
        "it must be an object with the keys datasite, kind, index, columns (and name, "
        "columns_names, columns_levels, columns_dtype)");
  if (doc["datasite"] != "pandas/1") return Bad("'datasite' must be \"pandas/1\"");
  const json& columns = doc["columns"];
  if (!columns.is_array()) return Bad("'columns' must be an array");
  if (doc["kind"] == "series") {
    if (!Keys(doc, {"datasite", "kind", "name", "index", "columns"},
              {"datasite", "kind", "name", "index", "columns"}) ||
        columns.size() != 1)
      return Bad("a Series has a 'name' and exactly one column");
    RETURN_IF_ERROR(CheckLabel(doc["name"]));
  } else if (doc["kind"] == "frame") {
    if (doc.contains("name") || !doc.contains("columns_names"))
      return Bad("a DataFrame has 'columns_names' and no 'name'");
    size_t levels = 1;
    if (doc.contains("columns_levels")) {
      const json& l = doc["columns_levels"];
      if (!l.is_number_unsigned() || l.get<uint64_t>() < 2 || l.get<uint64_t>() > kMaxIndexLevels)
        return Bad("'columns_levels' must be an integer from 2 to 64");
      levels = l.get<size_t>();
    }
    if (doc.contains("columns_dtype") &&
        (doc["columns_dtype"] != "object" || doc.contains("columns_levels")))
      return Bad("'columns_dtype' may only be \"object\", for one level");
    const json& names = doc["columns_names"];
    if (!names.is_array() || names.size() != levels)
      return Bad("'columns_names' must name each level of the columns");
    for (const json& n : names) RETURN_IF_ERROR(CheckLabel(n));
  } else {
    return Bad("'kind' must be \"frame\" or \"series\"");
  }
  const json& index = doc["index"];
  size_t index_columns = 0;
  if (Keys(index, {"range", "name", "levels"}, {"range", "name"})) {
    const json& r = index["range"];
    if (!r.is_array() || r.size() != 3 || !IsInt(r[0]) || !IsInt(r[1]) || !IsInt(r[2]) || r[2] == 0)
      return Bad("a range index is [start, stop, step]");
    RETURN_IF_ERROR(CheckLabel(index["name"]));
    // A frame without columns writes its range as one int64 column (a CSV needs one).
    if (index.contains("levels")) {
      const json& levels = index["levels"];
      if (!columns.empty() || !levels.is_array() || levels.size() != 1 ||
          levels[0] != json{{"dtype", "int64"}, {"name", index["name"]}})
        return Bad("a range index is written only for a frame without columns");
      index_columns = 1;
    } else if (columns.empty()) {
      return Bad("a frame without columns writes its index");
    }
  } else if (Keys(index, {"levels"}, {"levels"})) {
    const json& levels = index["levels"];
    if (!levels.is_array() || levels.empty() || levels.size() > kMaxIndexLevels)
      return Bad("the index has from 1 to 64 levels");
    for (const json& l : levels) RETURN_IF_ERROR(CheckColumn(l, false));
    index_columns = levels.size();
  } else {
    return Bad("'index' must be {\"range\", \"name\"} or {\"levels\"}");
  }
  if (columns.size() > kMaxColumns) return Bad("it describes too many columns");
  for (const json& c : columns) RETURN_IF_ERROR(CheckColumn(c, false));
  if (csv_columns && *csv_columns != index_columns + columns.size())
    return Bad("it describes " + std::to_string(index_columns + columns.size()) +
               " columns, the CSV has " + std::to_string(*csv_columns));
  return doc;
}

}  // namespace datasite::data
