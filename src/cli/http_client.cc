#include "cli/http_client.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace datasite::cli {
namespace {

// kInvalidArgument unless `url` is http[s]://host[:port][/prefix] without credentials, query or
// fragment.
Status CheckUrl(const std::string& url) {
  std::string_view u(url);
  size_t scheme = u.substr(0, 7) == "http://" ? 7 : (u.substr(0, 8) == "https://" ? 8 : 0);
  if (scheme == 0) {
    return InvalidArgumentError("bad server URL '" + url +
                                "': it must start with http:// or https://");
  }
  u.remove_prefix(scheme);
  size_t slash = u.find_first_of("/?#");
  if (slash != std::string_view::npos && u[slash] != '/') {
    return InvalidArgumentError("bad server URL '" + url + "': no query or fragment allowed");
  }
  if (u.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgumentError("bad server URL '" + url + "': no query or fragment allowed");
  }
  std::string_view authority = u.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("bad server URL '" + url +
                                "': credentials in URLs are not supported");
  }
  std::string_view port;
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("bad server URL '" + url + "': unclosed '['");
    }
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return InvalidArgumentError("bad server URL '" + url + "'");
      port = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return InvalidArgumentError("bad server URL '" + url + "': empty port");
  }
  if (host.empty()) return InvalidArgumentError("bad server URL '" + url + "': no host");
  if (host.find_first_of(" \t\r\n") != std::string_view::npos) {
    return InvalidArgumentError("bad server URL '" + url + "'");
  }
  if (!port.empty()) {
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      return InvalidArgumentError("bad server URL '" + url + "': bad port '" + std::string(port) +
                                  "'");
    }
  }
  return Status::Ok();
}

std::string WithoutTrailingSlashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

HttpClient::HttpClient(std::string url, const HttpClientOptions& options) : url_(std::move(url)) {
  net::HttpClientOptions o;
  o.connect_timeout = options.connect_timeout;
  o.request_timeout = options.io_timeout;
  o.stall_timeout = options.io_timeout;
  o.upload_answer_timeout = options.upload_answer_timeout;
  o.max_body_bytes = options.max_body_bytes;
  o.ca_file = options.ca_file;
  http_ = std::make_unique<net::HttpClient>(std::move(o));
}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::Connect(const std::string& url,
                                                        const HttpClientOptions& options) {
  RETURN_IF_ERROR(CheckUrl(url));
  return std::unique_ptr<HttpClient>(new HttpClient(url, options));
}

const std::string& HttpClient::url() const { return url_; }

void HttpClient::SetBearerToken(std::string token) { token_ = std::move(token); }

net::HttpRequest HttpClient::Make(std::string_view method, std::string_view target) const {
  net::HttpRequest r;
  r.method = std::string(method);
  r.url = WithoutTrailingSlashes(url_) + std::string(target);
  r.bearer_token = token_;
  return r;
}

Status HttpClient::Adapt(Status s, std::string_view target) const {
  if (s.ok()) return s;
  std::string full = WithoutTrailingSlashes(url_) + std::string(target);
  std::string message = s.message();
  for (size_t at = message.find(full); at != std::string::npos; at = message.find(full, at)) {
    message.replace(at, full.size(), url_);
    at += url_.size();
  }
  return Status(s.code(), std::move(message));
}

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                         const HttpHeaders& headers, std::string body) {
  net::HttpRequest r = Make(method, target);
  r.headers = headers;
  r.headers.emplace_back("Accept", "application/json");
  r.body = std::move(body);
  auto res = http_->Send(r);
  if (!res.ok()) return Adapt(res.status(), target);
  return res;
}

Result<HttpResponse> HttpClient::RequestStreamingUpload(std::string_view target,
                                                        const std::string& path,
                                                        std::string_view content_type,
                                                        const UploadProgress& progress) {
  net::HttpRequest r = Make("POST", target);
  r.headers.emplace_back("Accept", "application/json");
  r.headers.emplace_back("Content-Type", std::string(content_type));
  auto res = http_->Upload(r, path, progress);
  if (!res.ok()) return Adapt(res.status(), target);
  return res;
}

Result<HttpResponse> HttpClient::DownloadToFile(std::string_view target, const std::string& path,
                                                int permissions) {
  auto res = http_->Download(Make("GET", target), path, permissions);
  if (!res.ok()) return Adapt(res.status(), target);
  return res;
}

}  // namespace datasite::cli
