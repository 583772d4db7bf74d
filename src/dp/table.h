// Reading an asset into the DP engine's column-oriented Table (engine.h).
#ifndef DATASITE_DP_TABLE_H_
#define DATASITE_DP_TABLE_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "dp/engine.h"
#include "dp/policy.h"

namespace datasite::dp {

// Reads the columns `policy` names (and its privacy unit's) from the CSV file at `path` (a header
// row, then records), and bounds each unit's contribution with `key` (BoundContributions).
// Numeric cells that are empty or no number are missing (NaN); category cells are kept as text.
// kFailedPrecondition when a column the policy names is not in the header (or is there twice), or
// an unlisted category column has more distinct values than its max_keys; the errors of the CSV
// reader otherwise. Memory: 8 bytes per numeric cell, 4 per category cell, plus each distinct
// category once; the unit column only while reading.
Result<Table> LoadCsvTable(const std::string& path, const DpPolicy& policy, uint64_t key);

// The columns of a CSV header that `policy` names but the file lacks ("" when none): a policy is
// checked against its asset before it is stored.
Result<std::string> MissingPolicyColumns(const std::string& path, const DpPolicy& policy);

}  // namespace datasite::dp

#endif  // DATASITE_DP_TABLE_H_
