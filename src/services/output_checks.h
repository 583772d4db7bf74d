// Automatic output checks: a data owner's rules, per dataset, that the output of a run nobody
// reviews (a run admitted under a grant) must pass before its requester reads it. After the
// statistical disclosure control of OpenSAFELY's output checking and DataSHIELD's disclosure
// settings. A result that fails is held for a data owner's review, with the rule that held it
// (never the values); small counts may instead be suppressed, and counts rounded, in the result
// itself. docs/API.md, "Output checks", says which attack each rule stops and what none of them
// stops.
#ifndef DATASITE_SERVICES_OUTPUT_CHECKS_H_
#define DATASITE_SERVICES_OUTPUT_CHECKS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace datasite::services {

struct OutputRules {
  // Counts (integer cells) from 1 to min_cell_count - 1 are suppressed (made missing) or, with
  // hold_small_cells, hold the result. 0 is kept: a structural zero tells no one's record.
  std::optional<int64_t> min_cell_count;
  bool hold_small_cells = false;
  // Counts are rounded to the nearest multiple (halves up), after suppression.
  std::optional<int64_t> round_to;
  // A result with at least as many rows as a private input (of two rows or more), or with a row
  // whose values equal a private input's row on the columns they share, is held.
  bool no_row_level = false;
  // A larger result is held.
  std::optional<int64_t> max_result_bytes;

  bool any() const { return min_cell_count || round_to || no_row_level || max_result_bytes; }
};

// The rules as a data owner writes them: {"min_cell_count": k, "small_cells": "suppress" | "hold",
// "round_to": b, "no_row_level": true, "max_result_bytes": n}, each optional. kInvalidArgument for
// an unknown field or a value out of range.
Result<OutputRules> ParseOutputRules(const nlohmann::json& j);
nlohmann::json OutputRulesJson(const OutputRules& rules);
// The stricter of each rule: what a run over several datasets must pass.
OutputRules Strictest(const OutputRules& a, const OutputRules& b);

// A private input of the run, for the row-level rule: its name ("dataset/asset"), and, for a CSV
// asset small enough to read (kMaxCheckedInputBytes), its header and rows; else rows is -1.
struct InputTable {
  std::string name;
  int64_t rows = -1;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> cells;
};
// Held in memory as strings with a set of its rows and a map of its values while a run's result is
// checked: a few times its size.
inline constexpr int64_t kMaxCheckedInputBytes = int64_t{8} << 20;
// Reads a CSV input (header and rows) for the row-level rule; kResourceExhausted past
// kMaxCheckedInputBytes.
Result<InputTable> ReadInputTable(const std::string& name, const std::string& csv_path);

// What the rules made of a result.
struct Verdict {
  // Empty: it passes. Else what held it: the rule's name and why, never a value of the result.
  std::string held;
  // Rewritten by suppression or rounding (the result's new bytes, and a CSV result's sidecar).
  std::optional<std::string> result;
  std::optional<std::string> meta;
};

// Checks a completed run's result (`format` json | csv | npy | bytes, its bytes, a CSV result's
// sidecar or "") and whether it printed anything (printed output is free text no rule can read:
// it holds the run). Results other than JSON and CSV are held (no rule reads them).
Verdict CheckOutput(const OutputRules& rules, const std::string& format, const std::string& result,
                    const std::string& meta, int64_t stdout_bytes,
                    const std::vector<InputTable>& inputs);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_OUTPUT_CHECKS_H_
