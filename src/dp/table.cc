#include "dp/table.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "data/csv_file.h"

namespace datasite::dp {
namespace {

double ParseNumber(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  double v = std::numeric_limits<double>::quiet_NaN();
  if (text.empty()) return v;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    return std::numeric_limits<double>::quiet_NaN();
  return v;
}

// A privacy unit's id without surrounding spaces and tabs ("a" and "a " are one person); an id of
// only those is empty, a row naming no unit.
std::string TrimmedUnit(std::string_view id) {
  while (!id.empty() && (id.front() == ' ' || id.front() == '\t')) id.remove_prefix(1);
  while (!id.empty() && (id.back() == ' ' || id.back() == '\t')) id.remove_suffix(1);
  return std::string(id);
}

Result<std::vector<std::string>> Header(data::internal::CsvReader& reader) {
  ASSIGN_OR_RETURN(bool any, reader.Next());
  if (!any) return FailedPreconditionError("DP: the asset is empty (no header row)");
  std::vector<std::string> header;
  for (std::string_view f : reader.fields()) header.emplace_back(f);
  return header;
}

// The columns the policy needs that the header lacks or has more than once (whose cells would
// be read twice a row).
std::string Missing(const std::vector<std::string>& header, const DpPolicy& policy) {
  std::string missing;
  auto need = [&](const std::string& name) {
    int seen = 0;
    for (const auto& h : header) seen += h == name ? 1 : 0;
    if (seen == 1) return;
    missing += (missing.empty() ? "" : ", ") + name + (seen > 1 ? " (twice)" : "");
  };
  for (const auto& [name, column] : policy.columns) need(name);
  if (!policy.privacy_unit.empty()) need(policy.privacy_unit);
  return missing;
}

}  // namespace

Result<std::string> MissingPolicyColumns(const std::string& path, const DpPolicy& policy) {
  ASSIGN_OR_RETURN(data::internal::InputFile file, data::internal::InputFile::Open(path));
  data::internal::CsvReader reader(std::move(file));
  ASSIGN_OR_RETURN(std::vector<std::string> header, Header(reader));
  return Missing(header, policy);
}

Result<Table> LoadCsvTable(const std::string& path, const DpPolicy& policy, uint64_t key) {
  ASSIGN_OR_RETURN(data::internal::InputFile file, data::internal::InputFile::Open(path));
  data::internal::CsvReader reader(std::move(file));
  ASSIGN_OR_RETURN(std::vector<std::string> header, Header(reader));
  if (std::string missing = Missing(header, policy); !missing.empty())
    return FailedPreconditionError("DP: the asset has no column " + missing +
                                   " that its DP policy names");
  Table t;
  // For each header position, where its cells go.
  // A listed category column is coded by the policy's list (values outside it are -1), so that no
  // query's work depends on which other values the data holds; an unlisted one by the values in the
  // order met, at most max_keys of them.
  struct Sink {
    std::vector<double>* numbers = nullptr;
    CategoryColumn* category = nullptr;
    std::unordered_map<std::string, int32_t>* codes = nullptr;
    bool listed = false;
    int64_t max_keys = 0;
    const std::string* name = nullptr;
    bool unit = false;
  };
  std::vector<Sink> sinks(header.size());
  std::map<std::string, std::unordered_map<std::string, int32_t>> dictionaries;
  for (size_t i = 0; i < header.size(); ++i) {
    auto it = policy.columns.find(header[i]);
    if (it != policy.columns.end()) {
      if (it->second.type == ColumnType::kCategory) {
        Sink& sink = sinks[i];
        sink.category = &t.categories[header[i]];
        sink.codes = &dictionaries[header[i]];
        sink.listed = !it->second.categories.empty();
        sink.max_keys = it->second.max_keys;
        sink.name = &it->first;
        if (sink.listed) {
          sink.category->values = it->second.categories;
          for (size_t c = 0; c < it->second.categories.size(); ++c)
            sink.codes->emplace(it->second.categories[c], static_cast<int32_t>(c));
        }
      } else {
        sinks[i].numbers = &t.numbers[header[i]];
      }
    }
    if (!policy.privacy_unit.empty() && header[i] == policy.privacy_unit) sinks[i].unit = true;
  }
  std::vector<std::string> units;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next());
    if (!more) break;
    auto fields = reader.fields();
    for (size_t i = 0; i < sinks.size(); ++i) {
      std::string_view cell = i < fields.size() ? fields[i] : std::string_view();
      const Sink& s = sinks[i];
      if (s.numbers != nullptr) s.numbers->push_back(ParseNumber(cell));
      if (s.category != nullptr && cell.empty()) s.category->codes.push_back(-1);
      if (s.category != nullptr && !cell.empty() && s.listed) {
        auto found = s.codes->find(std::string(cell));
        s.category->codes.push_back(found == s.codes->end() ? -1 : found->second);
      } else if (s.category != nullptr && !cell.empty()) {
        auto [entry, added] =
            s.codes->try_emplace(std::string(cell), static_cast<int32_t>(s.codes->size()));
        if (added) {
          if (static_cast<int64_t>(s.codes->size()) > s.max_keys)
            return FailedPreconditionError("DP: column '" + *s.name + "' has more than " +
                                           std::to_string(s.max_keys) +
                                           " distinct values (the policy's max_keys): raise "
                                           "max_keys or list its categories");
          s.category->values.emplace_back(cell);
        }
        s.category->codes.push_back(entry->second);
      }
      if (s.unit) units.emplace_back(TrimmedUnit(cell));
    }
    ++t.rows;
  }
  if (!policy.privacy_unit.empty()) BoundContributions(t, units, policy.max_rows_per_unit, key);
  return t;
}

}  // namespace datasite::dp
