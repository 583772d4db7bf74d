// Bearer tokens: 256 random bits, stored only as their SHA-256.
#ifndef DATASITE_AUTH_TOKEN_H_
#define DATASITE_AUTH_TOKEN_H_

#include <string>
#include <string_view>

namespace datasite::auth {

// A fresh bearer token, 43 url-safe characters.
std::string NewToken();
// The raw SHA-256 of the token: what the store keeps.
std::string HashToken(std::string_view token);

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_TOKEN_H_
