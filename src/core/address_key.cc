#include "core/address_key.h"

#include <arpa/inet.h>

#include <cstring>

namespace datasite {

std::string AddressKey(std::string_view address) {
  char out[INET6_ADDRSTRLEN];
  // inet_pton needs a terminated string; longer text is no address.
  if (address.empty() || address.size() >= sizeof(out)) return std::string(address);
  const std::string text(address);
  in_addr v4;
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) return text;
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
    return inet_ntop(AF_INET, &v4, out, sizeof(out));
  }
  std::memset(&v6.s6_addr[8], 0, 8);
  return std::string(inet_ntop(AF_INET6, &v6, out, sizeof(out))) + "/64";
}

std::string NetworkKey(std::string_view address) {
  char out[INET6_ADDRSTRLEN];
  if (address.empty() || address.size() >= sizeof(out)) return "net:" + std::string(address);
  const std::string text(address);
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, text.c_str(), &v4) != 1) {
    if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return "net:" + text;
    if (!IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memset(&v6.s6_addr[6], 0, 10);
      return std::string(inet_ntop(AF_INET6, &v6, out, sizeof(out))) + "/48";
    }
    std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
  }
  reinterpret_cast<unsigned char*>(&v4.s_addr)[3] = 0;
  return std::string(inet_ntop(AF_INET, &v4, out, sizeof(out))) + "/24";
}

}  // namespace datasite
