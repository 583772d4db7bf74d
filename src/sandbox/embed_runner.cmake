# Turns runner.py into a C++ header (cmake -DPRELUDE=... -DINPUT=... -DOUTPUT=... -P
# embed_runner.cmake), so the server carries the sandbox's Python side and needs no installed file.
# PRELUDE (the client's python/datasite/_sidecar.py, which the runner shares) goes first.
file(READ "${PRELUDE}" prelude)
file(READ "${INPUT}" runner)
set(content "${prelude}\n${runner}")
string(FIND "${content}" ")RUNNER\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "runner.py contains the raw-string delimiter )RUNNER\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from python/datasite/_sidecar.py and src/sandbox/runner.py by embed_runner.cmake.\n"
  "// Do not edit.\n"
  "#ifndef DATASITE_SANDBOX_RUNNER_PY_H_\n#define DATASITE_SANDBOX_RUNNER_PY_H_\n"
  "#include <string_view>\n"
  "namespace datasite::sandbox {\n"
  "inline constexpr std::string_view kRunnerPy = R\"RUNNER(${content})RUNNER\";\n"
  "}  // namespace datasite::sandbox\n#endif  // DATASITE_SANDBOX_RUNNER_PY_H_\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
