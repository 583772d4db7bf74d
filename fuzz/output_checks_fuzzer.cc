// A run's result through services::CheckOutput, the output checks a run nobody reviewed passes
// (the result is written by the scientist's code, so anything). The first byte picks the format
// (json or csv) and the rules; the rest is the result, then, after the first NUL byte, a CSV
// result's sidecar. Checks that nothing throws or crashes (a deep document crashed the server
// once), that a refusal names a rule, that a rewritten result reads back in its format, and that
// checking a rewritten result again changes nothing more.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "services/output_checks.h"

namespace {

using datasite::services::CheckOutput;
using datasite::services::InputTable;
using datasite::services::OutputRules;
using datasite::services::Verdict;

const std::vector<InputTable>& Inputs() {
  static const std::vector<InputTable> inputs = [] {
    InputTable t;
    t.name = "census/people";
    t.columns = {"name", "age", "city", "pay"};
    t.cells = {{"ann", "31", "Oslo", "51000.5"},
               {"bob", "42", "Rome", "69023.0"},
               {"cyd", "57", "Oslo", "51000.5"},
               {"dee", "64", "Lima", "70000.25"}};
    t.rows = 4;
    return std::vector<InputTable>{t};
  }();
  return inputs;
}

bool NamesARule(const std::string& held) {
  for (const char* rule : {"max_result_bytes: ", "printed_output: ", "format: ", "no_row_level: ",
                           "min_cell_count: "}) {
    if (held.rfind(rule, 0) == 0) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using datasite::fuzz::Check;
  if (size == 0) return 0;
  const uint8_t pick = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string format = (pick & 1) ? "csv" : "json";
  OutputRules rules;
  if (pick & 2) rules.min_cell_count = 5;
  rules.hold_small_cells = rules.min_cell_count && (pick & 4);
  if (pick & 8) rules.round_to = 3;
  rules.no_row_level = pick & 16;
  if (pick & 32) rules.max_result_bytes = 4096;
  std::string result(rest), meta;
  if (auto nul = rest.find('\0'); nul != std::string_view::npos) {
    result = std::string(rest.substr(0, nul));
    meta = std::string(rest.substr(nul + 1));
  }
  const Verdict v = CheckOutput(rules, format, result, meta, 0, Inputs());
  if (!v.held.empty()) {
    Check(NamesARule(v.held), "a held result that names no rule");
    Check(!v.result && !v.meta, "a held result was also rewritten");
    return 0;
  }
  if (!v.result) return 0;
  if (format == "json") {
    Check(nlohmann::json::accept(*v.result), "a rewritten JSON result does not parse");
  }
  // Suppressed and rounded counts are what the rules leave as they are.
  const Verdict again = CheckOutput(rules, format, *v.result, v.meta.value_or(meta), 0, Inputs());
  Check(again.held.empty(), "a rewritten result is held when checked again");
  Check(!again.result || *again.result == *v.result,
        "a rewritten result changes when checked again");
  return 0;
}
