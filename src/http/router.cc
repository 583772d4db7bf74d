#include "http/router.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace datasite::http {
namespace {

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

bool MatchPattern(std::string_view pattern, std::string_view path,
                  std::map<std::string, std::string>* params) {
  // One spelling per path: it starts with '/', has no empty segment, and no trailing slash ("/a/"
  // != "/a").
  if (path.empty() || path[0] != '/' || path.find("//") != std::string_view::npos) return false;
  if (path.back() == '/' && path.size() > 1) return false;
  auto p = Split(pattern), s = Split(path);
  if (p.size() != s.size()) return false;
  std::map<std::string, std::string> found;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i].size() >= 2 && p[i].front() == '{' && p[i].back() == '}') {
      found[std::string(p[i].substr(1, p[i].size() - 2))] = std::string(s[i]);
    } else if (p[i] != s[i]) {
      return false;
    }
  }
  if (params) *params = std::move(found);
  return true;
}

}  // namespace

void Router::Add(Route route) { routes_.push_back(std::move(route)); }

void Router::SetAnswerInline(std::string_view method, std::string_view pattern,
                             std::function<std::optional<Response>(Request&)> answer) {
  Added(method, pattern).answer_inline = std::move(answer);
}

void Router::SetChooseLane(std::string_view method, std::string_view pattern,
                           std::function<Lane(const Request&)> choose) {
  Added(method, pattern).choose_lane = std::move(choose);
}

Route& Router::Added(std::string_view method, std::string_view pattern) {
  for (Route& r : routes_) {
    if (r.method == method && r.pattern == pattern) return r;
  }
  // A wiring mistake at start-up, not an input error.
  std::fprintf(stderr, "fatal: no route %.*s %.*s\n", static_cast<int>(method.size()),
               method.data(), static_cast<int>(pattern.size()), pattern.data());
  std::abort();
}

Router::Match Router::Find(Request& request, const Route** route) const {
  bool path_known = false;
  for (const Route& r : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchPattern(r.pattern, request.path, &params)) continue;
    path_known = true;
    if (r.method != request.method) continue;
    request.path_params = std::move(params);
    *route = &r;
    return Match::kFound;
  }
  return path_known ? Match::kWrongMethod : Match::kNoPath;
}

}  // namespace datasite::http
