// PySyft-style names of the API's operations ("user.get_all"): the OpenAPI document gives each
// route one as its operationId, and the Python client builds client.api.services.<service>.<method>
// from them at login, so a new route reaches the client without a client release.
#ifndef DATASITE_API_OPERATIONS_H_
#define DATASITE_API_OPERATIONS_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace datasite::api {

struct OperationName {
  std::string service;  // "user"
  std::string method;   // "get_all"
  // The query parameters the route reads, for the OpenAPI document (and the client's check of
  // keyword arguments); empty for routes that read none or are not in the built-in table.
  std::vector<std::string> query;

  std::string Id() const { return service + "." + method; }
};

// The name of the route `method` `pattern` (tagged `tag` in the route table): PySyft's name from
// the built-in table, else one derived from the tag and the path ("POST /api/v1/requests/{id}/x"
// -> "request.x"), so that a route added without a name still gets one.
OperationName NameOperation(std::string_view method, std::string_view pattern,
                            std::string_view tag);

// The services of the built-in routes ("user", "dataset", ...), sorted.
std::vector<std::string> BuiltInServices();

// OK when `path` ("service.method") may name a custom endpoint: two Python identifiers joined by
// one dot, the service not a built-in one (custom endpoints share client.api.services with the
// built-in operations, so "user.anything" would shadow or hide them). InvalidArgument otherwise.
Status CheckCustomEndpointPath(std::string_view path);

}  // namespace datasite::api

#endif  // DATASITE_API_OPERATIONS_H_
