// The floor under login latency: one argon2id verify at libsodium's interactive limits, as the
// server does it. Prints the median of N verifies in milliseconds.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  int n = argc > 1 ? std::atoi(argv[1]) : 15;
  if (sodium_init() < 0) return 1;
  char hash[crypto_pwhash_STRBYTES];
  const char kPassword[] = "changethis";
  if (crypto_pwhash_str_alg(hash, kPassword, sizeof(kPassword) - 1,
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return 1;
  }
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (crypto_pwhash_str_verify(hash, kPassword, sizeof(kPassword) - 1) != 0) return 1;
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%.2f\n", ms[ms.size() / 2]);
  return 0;
}
