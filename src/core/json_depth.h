// How deep a JSON text nests, checked without parsing it.
#ifndef DATASITE_CORE_JSON_DEPTH_H_
#define DATASITE_CORE_JSON_DEPTH_H_

#include <string_view>

namespace datasite {

// Whether `text`, read as JSON, opens more than `max_depth` arrays or objects inside one another.
// Counts brackets outside strings without parsing, so it is safe on any bytes; check it before
// parsing untrusted JSON that will be copied or printed (each level is a recursion).
bool NestsDeeperThan(std::string_view text, int max_depth);

}  // namespace datasite

#endif  // DATASITE_CORE_JSON_DEPTH_H_
