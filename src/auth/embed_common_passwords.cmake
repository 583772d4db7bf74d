# Turns the list of common passwords that Debian's python3-zxcvbn ships (the "passwords" list of its
# frequency_lists.py: 30,000 passwords most often found in breaches, most common first) into a C++
# header (cmake -DINPUT=... -DOUTPUT=... -P embed_common_passwords.cmake), so that the server checks
# new passwords against it offline and needs no installed file at run time.
file(STRINGS "${INPUT}" lines REGEX "^ *\"passwords\": *\"")
list(LENGTH lines found)
if(NOT found EQUAL 1)
  message(FATAL_ERROR "${INPUT}: no single \"passwords\" list (is it python3-zxcvbn's frequency_lists.py?)")
endif()
string(REGEX REPLACE "^ *\"passwords\": *\"([^\"]*)\".*$" "\\1" words "${lines}")
string(REPLACE "," "\n" words "${words}")
string(REGEX MATCHALL "\n" newlines "${words}")
list(LENGTH newlines count)
if(count LESS 10000)
  message(FATAL_ERROR "${INPUT}: the passwords list has only ${count} entries")
endif()
string(FIND "${words}" ")PASSWORDS\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "the passwords list contains the raw-string delimiter")
endif()
file(WRITE "${OUTPUT}.tmp"
  "// Generated from python3-zxcvbn's frequency_lists.py by embed_common_passwords.cmake. Do not edit.\n"
  "#ifndef DATASITE_AUTH_COMMON_PASSWORDS_H_\n#define DATASITE_AUTH_COMMON_PASSWORDS_H_\n"
  "#include <string_view>\n"
  "namespace datasite::auth::internal {\n"
  "// One password a line.\n"
  "inline constexpr std::string_view kCommonPasswords = R\"PASSWORDS(${words})PASSWORDS\";\n"
  "}  // namespace datasite::auth::internal\n#endif  // DATASITE_AUTH_COMMON_PASSWORDS_H_\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
