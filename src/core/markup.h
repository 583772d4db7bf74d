// Text made safe to place in HTML or XML.
#ifndef DATASITE_CORE_MARKUP_H_
#define DATASITE_CORE_MARKUP_H_

#include <string>
#include <string_view>

namespace datasite {

// `text` with &, <, >, " and ' escaped, for HTML or XML text and attribute values (mail bodies, S3
// request documents).
std::string EscapeMarkup(std::string_view text);

}  // namespace datasite

#endif  // DATASITE_CORE_MARKUP_H_
