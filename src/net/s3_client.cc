#include "net/s3_client.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "core/markup.h"
#include "core/sha256.h"

namespace datasite::net {
namespace {

using Query = std::vector<std::pair<std::string, std::string>>;

// The contents of each <tag>...</tag> element in `xml`, in order. S3's answers are flat enough
// for this: the elements read here never nest inside one of their own name.
std::vector<std::string_view> Elements(std::string_view xml, std::string_view tag) {
  std::vector<std::string_view> out;
  std::string open = "<" + std::string(tag);
  std::string close = "</" + std::string(tag) + ">";
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t after = pos + open.size();
    if (after >= xml.size() || (xml[after] != '>' && xml[after] != ' ' && xml[after] != '/')) {
      pos = after;  // a longer name that starts the same
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <Tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

// Replaces XML's five named entities and numeric character references.
std::string Unescape(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out.push_back(text[i]);
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) {
      out.push_back('&');
      continue;
    }
    std::string_view name = text.substr(i + 1, semi - i - 1);
    if (name == "amp") {
      out.push_back('&');
    } else if (name == "lt") {
      out.push_back('<');
    } else if (name == "gt") {
      out.push_back('>');
    } else if (name == "quot") {
      out.push_back('"');
    } else if (name == "apos") {
      out.push_back('\'');
    } else if (name.size() > 1 && name[0] == '#') {
      bool hex = name[1] == 'x' || name[1] == 'X';
      unsigned long cp =
          std::strtoul(std::string(name.substr(hex ? 2 : 1)).c_str(), nullptr, hex ? 16 : 10);
      // UTF-8 of the code point.
      if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
      } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
    } else {
      out.append(text.substr(i, semi - i + 1));
    }
    i = semi;
  }
  return out;
}

// The text of the first <tag> element, unescaped; "" when there is none.
std::string Text(std::string_view xml, std::string_view tag) {
  auto all = Elements(xml, tag);
  return all.empty() ? "" : Unescape(all.front());
}

uint64_t ToU64(std::string_view s) { return std::strtoull(std::string(s).c_str(), nullptr, 10); }

// The transport's own failures are kUnavailable to our callers (a timeout included); a failure of
// the caller's reader or writer is theirs and stays as it is.
Status TransportStatus(const Status& st) {
  if (st.code() == StatusCode::kDeadlineExceeded) return UnavailableError(st.message());
  return st;
}

}  // namespace

Status S3ErrorStatus(int status, std::string_view body, std::string_view what) {
  std::string code = Text(body, "Code");
  std::string message = Text(body, "Message");
  std::string text = std::string(what) + ": S3 answered " + std::to_string(status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (code == "NoSuchKey" || code == "NoSuchUpload" || code == "NoSuchBucket" ||
      (code.empty() && status == 404)) {
    return NotFoundError(std::move(text));
  }
  if (status == 403 || code == "AccessDenied" || code == "SignatureDoesNotMatch" ||
      code == "InvalidAccessKeyId" || code == "RequestTimeTooSkewed") {
    return PermissionDeniedError(std::move(text));
  }
  if (status >= 500 || code == "SlowDown" || code == "InternalError") {
    return UnavailableError(std::move(text));
  }
  if (status == 412) return FailedPreconditionError(std::move(text));
  return InvalidArgumentError(std::move(text));
}

class S3Client::Impl {
 public:
  Impl(S3ClientOptions options, std::string host)
      : options_(std::move(options)), host_(std::move(host)), http_(options_.http) {}

  // A request for `key` ("" = the bucket) with `query`, signed; `payload_sha256` is the body's.
  HttpRequest Build(std::string method, std::string_view key, const Query& query,
                    std::string payload_sha256, HttpHeaders extra = {}) {
    SigV4Request s;
    s.method = method;
    s.path = "/" + options_.bucket + "/" + std::string(key);
    s.query = query;
    s.headers = std::move(extra);
    s.headers.emplace_back("Host", host_);
    s.payload_sha256 = std::move(payload_sha256);
    const Clock& clock = options_.clock ? *options_.clock : SystemClock();
    SigV4Signature sig = SignV4(s, options_.credentials, options_.region, "s3", clock.NowSeconds());
    HttpRequest r;
    r.method = std::move(method);
    r.url = options_.endpoint + SigV4Encode(s.path, /*keep_slash=*/true);
    std::string q = SigV4CanonicalQuery(query);
    if (!q.empty()) r.url += "?" + q;
    r.headers = std::move(s.headers);
    for (auto& h : sig.headers) r.headers.push_back(std::move(h));
    return r;
  }

  // Names an operation in error messages: the method and s3://bucket/key, never a credential.
  std::string What(std::string_view op, std::string_view key) const {
    return std::string(op) + " s3://" + options_.bucket + "/" + std::string(key);
  }

  Result<HttpResponse> Send(const HttpRequest& r, std::string_view what) {
    auto res = http_.Send(r);
    if (!res.ok()) return TransportStatus(res.status());
    if (res->status / 100 != 2) return S3ErrorStatus(res->status, res->body, what);
    return res;
  }

  Result<HttpResponse> Stream(const HttpRequest& r, uint64_t size, const BodyReader& reader,
                              const BodyWriter& writer, std::string_view what) {
    auto res = http_.Stream(r, size, reader, writer);
    if (!res.ok()) return TransportStatus(res.status());
    if (res->status / 100 != 2) return S3ErrorStatus(res->status, res->body, what);
    return res;
  }

  const S3ClientOptions options_;
  const std::string host_;
  HttpClient http_;
};

Result<std::unique_ptr<S3Client>> S3Client::Create(S3ClientOptions options) {
  std::string_view e = options.endpoint;
  while (!e.empty() && e.back() == '/') e.remove_suffix(1);
  size_t scheme = e.find("://");
  if (scheme == std::string_view::npos ||
      (e.substr(0, scheme) != "http" && e.substr(0, scheme) != "https")) {
    return InvalidArgumentError("the S3 endpoint must be http://HOST[:PORT] or https://...");
  }
  std::string_view host = e.substr(scheme + 3);
  if (host.empty() || host.find_first_of("/?#@ ") != std::string_view::npos) {
    return InvalidArgumentError("the S3 endpoint must be a scheme and a host[:port], no path");
  }
  if (options.bucket.empty() || options.bucket.find('/') != std::string::npos) {
    return InvalidArgumentError("the S3 bucket must be a name without '/'");
  }
  // Copied before the endpoint they view is replaced.
  std::string h(host);
  options.endpoint = std::string(e);
  return std::unique_ptr<S3Client>(
      new S3Client(std::make_unique<Impl>(std::move(options), std::move(h))));
}

S3Client::S3Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Client::~S3Client() = default;

Status S3Client::PutObject(std::string_view key, std::string_view data) {
  HttpRequest r =
      impl_->Build("PUT", key, {}, Sha256Hex(data), {{"Content-Type", "application/octet-stream"}});
  r.body = std::string(data);
  return impl_->Send(r, impl_->What("PUT", key)).status();
}

Status S3Client::PutObjectFrom(std::string_view key, uint64_t size, const BodyReader& reader,
                               const std::atomic<bool>* cancel) {
  if (size > kMaxPutObjectBytes) return InvalidArgumentError("one PUT holds at most 5 GiB");
  HttpRequest r = impl_->Build("PUT", key, {}, std::string(kUnsignedPayload),
                               {{"Content-Type", "application/octet-stream"}});
  r.cancel = cancel;
  return impl_->Stream(r, size, reader, nullptr, impl_->What("PUT", key)).status();
}

Result<S3Object> S3Client::GetObject(std::string_view key, std::optional<ByteRange> range,
                                     const BodyWriter& writer) {
  HttpHeaders extra;
  if (range) {
    if (range->last < range->first) return InvalidArgumentError("an empty byte range");
    extra.emplace_back("Range",
                       "bytes=" + std::to_string(range->first) + "-" + std::to_string(range->last));
  }
  HttpRequest r = impl_->Build("GET", key, {}, std::string(kEmptySha256), std::move(extra));
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Stream(r, 0, nullptr, writer, impl_->What("GET", key)));
  if (range && res.status != 206) {
    // A server that ignores Range sends the whole object: the writer got more than was asked.
    return InternalError(impl_->What("GET", key) + ": the server ignored the byte range");
  }
  S3Object o;
  o.key = std::string(key);
  o.size = ToU64(res.Header("Content-Length"));
  o.etag = res.Header("ETag");
  o.last_modified = res.Header("Last-Modified");
  return o;
}

Result<S3Object> S3Client::HeadObject(std::string_view key) {
  HttpRequest r = impl_->Build("HEAD", key, {}, std::string(kEmptySha256));
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Send(r, impl_->What("HEAD", key)));
  S3Object o;
  o.key = std::string(key);
  o.size = ToU64(res.Header("Content-Length"));
  o.etag = res.Header("ETag");
  o.last_modified = res.Header("Last-Modified");
  return o;
}

Status S3Client::DeleteObject(std::string_view key) {
  HttpRequest r = impl_->Build("DELETE", key, {}, std::string(kEmptySha256));
  return impl_->Send(r, impl_->What("DELETE", key)).status();
}

Result<S3ListPage> S3Client::ListObjects(std::string_view prefix,
                                         std::string_view continuation_token,
                                         std::string_view start_after, int max_keys) {
  Query q = {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}};
  if (!prefix.empty()) q.emplace_back("prefix", std::string(prefix));
  if (!continuation_token.empty()) {
    q.emplace_back("continuation-token", std::string(continuation_token));
  } else if (!start_after.empty()) {
    q.emplace_back("start-after", std::string(start_after));
  }
  HttpRequest r = impl_->Build("GET", "", q, std::string(kEmptySha256));
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Send(r, impl_->What("LIST", prefix)));
  S3ListPage page;
  for (std::string_view c : Elements(res.body, "Contents")) {
    S3Object o;
    o.key = Text(c, "Key");
    o.size = ToU64(Text(c, "Size"));
    o.etag = Text(c, "ETag");
    o.last_modified = Text(c, "LastModified");
    page.objects.push_back(std::move(o));
  }
  if (Text(res.body, "IsTruncated") == "true") {
    page.next_continuation_token = Text(res.body, "NextContinuationToken");
    if (page.next_continuation_token.empty()) {
      return InternalError(impl_->What("LIST", prefix) +
                           ": a truncated listing without a continuation token");
    }
  }
  return page;
}

Result<std::string> S3Client::CreateMultipartUpload(std::string_view key) {
  HttpRequest r = impl_->Build("POST", key, {{"uploads", ""}}, std::string(kEmptySha256),
                               {{"Content-Type", "application/octet-stream"}});
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Send(r, impl_->What("CREATE UPLOAD", key)));
  std::string id = Text(res.body, "UploadId");
  if (id.empty()) return InternalError(impl_->What("CREATE UPLOAD", key) + ": no UploadId");
  return id;
}

Result<std::string> S3Client::UploadPart(std::string_view key, std::string_view upload_id,
                                         int part_number, uint64_t size, const BodyReader& reader,
                                         std::string_view sha256_hex) {
  if (part_number < 1 || part_number > 10000) {
    return InvalidArgumentError("a part number must be 1 to 10000");
  }
  std::string payload =
      sha256_hex.empty() ? std::string(kUnsignedPayload) : std::string(sha256_hex);
  HttpRequest r = impl_->Build(
      "PUT", key,
      {{"partNumber", std::to_string(part_number)}, {"uploadId", std::string(upload_id)}},
      std::move(payload), {{"Content-Type", "application/octet-stream"}});
  std::string what = impl_->What("UPLOAD PART " + std::to_string(part_number), key);
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Stream(r, size, reader, nullptr, what));
  std::string etag = res.Header("ETag");
  if (etag.empty()) return InternalError(what + ": no ETag");
  return etag;
}

Status S3Client::CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                         const std::vector<S3CompletedPart>& parts) {
  std::string body = "<CompleteMultipartUpload>";
  for (const auto& p : parts) {
    body += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>" +
            EscapeMarkup(p.etag) + "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  HttpRequest r = impl_->Build("POST", key, {{"uploadId", std::string(upload_id)}}, Sha256Hex(body),
                               {{"Content-Type", "application/xml"}});
  r.body = std::move(body);
  std::string what = impl_->What("COMPLETE UPLOAD", key);
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Send(r, what));
  // S3 may answer 200 and report a failure in the body (it has sent the 200 before it knew).
  if (!Elements(res.body, "Error").empty()) return S3ErrorStatus(500, res.body, what);
  return Status::Ok();
}

Status S3Client::AbortMultipartUpload(std::string_view key, std::string_view upload_id) {
  HttpRequest r = impl_->Build("DELETE", key, {{"uploadId", std::string(upload_id)}},
                               std::string(kEmptySha256));
  return impl_->Send(r, impl_->What("ABORT UPLOAD", key)).status();
}

Result<S3UploadsPage> S3Client::ListMultipartUploads(std::string_view prefix,
                                                     std::string_view key_marker,
                                                     std::string_view upload_id_marker) {
  Query q = {{"uploads", ""}};
  if (!prefix.empty()) q.emplace_back("prefix", std::string(prefix));
  if (!key_marker.empty()) q.emplace_back("key-marker", std::string(key_marker));
  if (!upload_id_marker.empty()) q.emplace_back("upload-id-marker", std::string(upload_id_marker));
  HttpRequest r = impl_->Build("GET", "", q, std::string(kEmptySha256));
  ASSIGN_OR_RETURN(HttpResponse res, impl_->Send(r, impl_->What("LIST UPLOADS", prefix)));
  S3UploadsPage page;
  for (std::string_view u : Elements(res.body, "Upload")) {
    page.uploads.push_back({Text(u, "Key"), Text(u, "UploadId"), Text(u, "Initiated")});
  }
  if (Text(res.body, "IsTruncated") == "true") {
    page.next_key_marker = Text(res.body, "NextKeyMarker");
    page.next_upload_id_marker = Text(res.body, "NextUploadIdMarker");
  }
  return page;
}

}  // namespace datasite::net
