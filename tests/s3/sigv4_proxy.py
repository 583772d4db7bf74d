#!/usr/bin/python3
"""A SigV4-checking HTTP proxy in front of s3rver, for the tests of src/net/s3_client.

s3rver (3.7) does not check V4 signatures: for an Authorization header of V4 form it checks only
that the access key id is one it knows (its own code says "Signature version 4 calculation is
unimplemented"), and a request without one passes as anonymous. So every request goes through this
proxy first, which:

- refuses (403, an S3-style XML error) a request without an `AWS4-HMAC-SHA256` Authorization header,
  with an unknown access key id, a credential scope of another region or service, a missing or
  malformed x-amz-date, a date more than 15 minutes from the proxy's clock (RequestTimeTooSkewed),
  signed headers without host and x-amz-date, or a signature that differs from the one botocore's
  own S3 signer (Debian's python3-botocore, not our C++ signer) computes for the same request:
  the method, the path and query as S3 decodes and re-encodes them, the signed headers' values, and
  the body's SHA-256 (so a body that does not match its x-amz-content-sha256 is refused too), or
  UNSIGNED-PAYLOAD when the client said so;
- forwards a good request to s3rver without its Authorization header, and relays the answer;
- answers itself what s3rver does not implement: ListMultipartUploads (GET ?uploads) and
  AbortMultipartUpload (DELETE ?uploadId=), from its record of the uploads created through it and
  not yet completed or aborted; a part sent to an upload not in that record is NoSuchUpload (as S3
  answers). Parts of an aborted upload stay in s3rver's directory (the test's, removed with it).

For the tests of how many requests a client makes, it also answers `GET /__datasite_test/gets?path=P`
(unsigned) with the number of GET requests it forwarded for the path P (`/bucket/key`), as text. And for
the tests of a part that fails while its upload lives on, it answers part 2 of any upload to a key
holding `fail-part-2` with a 500 InternalError, and a whole-object PUT of a key holding `fail-put`
likewise; a PUT with a body to a key holding `refuse-early` it answers 403 on its headers, the body
unread. A request whose body ends before its Content-Length is dropped, as S3 drops it.

Usage: sigv4_proxy.py --upstream http://127.0.0.1:PORT --port-file FILE
       [--access-key-id ID --secret-access-key SECRET --region R]
It binds 127.0.0.1:0 and writes the port to FILE. Loopback only; for tests only.
"""
import argparse
import calendar
import datetime
import hmac
import http.client
import http.server
import re
import socketserver
import os
import sys
import threading
import time
import urllib.parse
import uuid
from xml.sax.saxutils import escape

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.utils

MAX_SKEW_SECONDS = 15 * 60

# botocore takes the signing time from the wall clock; the proxy signs at the request's own
# x-amz-date instead. One request is checked at a time (the lock), so the borrowed clock is safe.
_sign_lock = threading.Lock()
_sign_time = [datetime.datetime(2000, 1, 1)]


class _RequestDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return _sign_time[0]


botocore.auth.datetime.datetime = _RequestDatetime

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,]+)/(\d{8})/([^/,]+)/([^/,]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;\-]+),\s*Signature=([0-9a-f]{64})$")


class Refusal(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_xml(code, message):
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
            "<RequestId>%s</RequestId></Error>" % (code, escape(message), uuid.uuid4().hex)).encode()


def split_query(query):
    """Query pairs decoded as S3 decodes them ('+' stays '+')."""
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return pairs


class Proxy:
    def __init__(self, upstream, access_key_id, secret, region):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.access_key_id, self.secret, self.region = access_key_id, secret, region
        self.uploads = {}  # upload id -> (bucket, key, initiated)
        self.gets = {}  # path -> GET requests forwarded
        self.lock = threading.Lock()

    def verify(self, method, raw_path, headers, body):
        auth = headers.get("Authorization")
        if not auth:
            raise Refusal(403, "AccessDenied", "Anonymous access is refused by this proxy.")
        m = AUTH_RE.match(auth)
        if not m:
            raise Refusal(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
        key_id, date, region, service, signed, signature = m.groups()
        if not hmac.compare_digest(key_id, self.access_key_id):
            raise Refusal(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not exist in our records.")
        if region != self.region or service != "s3":
            raise Refusal(400, "AuthorizationHeaderMalformed",
                          "The credential scope is not %s/s3." % self.region)
        signed_names = signed.split(";")
        if "host" not in signed_names or "x-amz-date" not in signed_names:
            raise Refusal(403, "AccessDenied", "host and x-amz-date must be signed.")
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise Refusal(403, "AccessDenied", "x-amz-date is missing or malformed.")
        if when.strftime("%Y%m%d") != date:
            raise Refusal(403, "SignatureDoesNotMatch", "The credential date is not x-amz-date's.")
        if abs(calendar.timegm(when.timetuple()) - time.time()) > MAX_SKEW_SECONDS:
            raise Refusal(403, "RequestTimeTooSkewed",
                          "The difference between the request time and the current time is too large.")
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is None:
            raise Refusal(400, "InvalidRequest", "x-amz-content-sha256 is missing.")

        path, _, query = raw_path.partition("?")
        # As S3 does: the path decoded, then encoded again by SigV4's rules (botocore's for S3).
        canonical_path = botocore.utils.percent_encode(urllib.parse.unquote(path), safe="/~")
        sign_headers = {}
        for name in signed_names:
            if name in ("x-amz-date", "x-amz-content-sha256"):
                continue  # botocore sets these two itself, from the time and the body
            values = headers.get_all(name)
            if values is None:
                raise Refusal(403, "AccessDenied", "A signed header is missing: %s." % name)
            sign_headers[name] = ",".join(values)
        request = botocore.awsrequest.AWSRequest(
            method=method, url="http://%s%s" % (headers.get("host", ""), canonical_path),
            headers=sign_headers, data=body, params=split_query(query))
        if content_sha == "UNSIGNED-PAYLOAD":
            request.context["client_config"] = botocore.config.Config(
                s3={"payload_signing_enabled": False})
        creds = botocore.credentials.Credentials(self.access_key_id, self.secret)
        signer = botocore.auth.S3SigV4Auth(creds, "s3", self.region)
        with _sign_lock:
            _sign_time[0] = when
            signer.add_auth(request)
        authorization = request.headers["Authorization"]
        del request.headers["Authorization"]
        request.context["canonical_request"] = signer.canonical_request(request)
        expected = AUTH_RE.match(authorization)
        if expected.group(5) != signed:
            # botocore signs every header it was given: the same set unless one was dropped.
            raise Refusal(403, "SignatureDoesNotMatch", "The signed headers do not match.")
        if not hmac.compare_digest(expected.group(6), signature):
            # The canonical request holds no secret: it is what a client's author needs to see.
            sys.stderr.write("SignatureDoesNotMatch; botocore's canonical request:\n%s\n" %
                             request.context.get("canonical_request", "?"))
            raise Refusal(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature you "
                          "provided. Check your key and signing method.")

    def emulated(self, method, raw_path):
        """The answer of an operation s3rver lacks, or None to forward the request."""
        path, _, query = raw_path.partition("?")
        params = dict(split_query(query))
        parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
        bucket, key = parts[0], (parts[1] if len(parts) > 1 else "")
        if method == "GET" and not key and "uploads" in params:
            prefix = params.get("prefix", "")
            with self.lock:
                mine = sorted((k, uid, t) for uid, (b, k, t) in self.uploads.items()
                              if b == bucket and k.startswith(prefix))
            body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListMultipartUploadsResult>"
            body += "<Bucket>%s</Bucket><IsTruncated>false</IsTruncated>" % escape(bucket)
            for k, uid, t in mine:
                body += ("<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated>"
                         "</Upload>" % (escape(k), escape(uid), t))
            return 200, body.encode() + b"</ListMultipartUploadsResult>"
        if method == "DELETE" and key and "uploadId" in params:
            with self.lock:
                if self.uploads.pop(params["uploadId"], None) is None:
                    return 404, error_xml("NoSuchUpload", "The specified upload does not exist.")
            return 204, b""
        if method == "PUT" and key and "uploadId" in params:
            with self.lock:
                if params["uploadId"] not in self.uploads:
                    return 404, error_xml("NoSuchUpload", "The specified upload does not exist.")
        return None

    def observe(self, method, raw_path, status, body):
        """Keeps the record of open uploads from s3rver's answers."""
        path, _, query = raw_path.partition("?")
        params = dict(split_query(query))
        parts = urllib.parse.unquote(path).lstrip("/").split("/", 1)
        if method != "POST" or len(parts) < 2 or status != 200:
            return
        if "uploads" in params:
            m = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
            if m:
                now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                with self.lock:
                    self.uploads[m.group(1).decode()] = (parts[0], parts[1], now)
        elif "uploadId" in params:
            with self.lock:
                self.uploads.pop(params["uploadId"], None)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy = None

    def log_message(self, fmt, *args):
        pass  # requests carry signatures: nothing is logged

    def reply(self, status, body, headers=()):
        self.send_response(status)
        sent = set()
        for k, v in headers:
            if k.lower() in ("transfer-encoding", "connection", "content-length"):
                continue
            self.send_header(k, v)
            sent.add(k.lower())
        if status != 204 and status != 304:
            # A HEAD answer states the object's length without sending it.
            length = dict((k.lower(), v) for k, v in headers).get("content-length")
            self.send_header("Content-Length",
                             length if self.command == "HEAD" and length else str(len(body)))
        if "content-type" not in sent and body:
            self.send_header("Content-Type", "application/xml")
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def handle_one(self):
        length = int(self.headers.get("Content-Length", "0") or "0")
        if (self.command == "PUT" and "refuse-early" in self.path.partition("?")[0]
                and length > 0):
            # Refused on its headers, its body unread, as S3 may refuse (a bad signature, no
            # such bucket): the client learns it while still sending.
            self.close_connection = True
            return self.reply(403, error_xml("AccessDenied", "Refused early, for the tests."))
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # Cut short: S3 stores nothing of such a request (IncompleteBody), nor does the proxy.
            self.close_connection = True
            return
        if self.command == "GET" and self.path.startswith("/__datasite_test/gets?"):
            path = dict(split_query(self.path.partition("?")[2])).get("path", "")
            with self.proxy.lock:
                count = self.proxy.gets.get(path, 0)
            return self.reply(200, str(count).encode(), [("Content-Type", "text/plain")])
        try:
            self.proxy.verify(self.command, self.path, self.headers, body)
        except Refusal as r:
            return self.reply(r.status, error_xml(r.code, r.message) if self.command != "HEAD" else b"")
        if (self.command == "PUT" and "fail-part-2" in self.path.partition("?")[0]
                and dict(split_query(self.path.partition("?")[2])).get("partNumber") == "2"):
            return self.reply(500, error_xml("InternalError", "This part fails, for the tests."))
        if (self.command == "PUT" and "fail-put" in self.path.partition("?")[0]
                and "partNumber" not in dict(split_query(self.path.partition("?")[2]))):
            return self.reply(500, error_xml("InternalError", "This PUT fails, for the tests."))
        answer = self.proxy.emulated(self.command, self.path)
        if answer is not None:
            return self.reply(answer[0], answer[1])
        if self.command == "GET":
            with self.proxy.lock:
                path = urllib.parse.unquote(self.path.partition("?")[0])
                self.proxy.gets[path] = self.proxy.gets.get(path, 0) + 1
        up = self.proxy.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "expect", "connection")}
        try:
            conn.request(self.command, self.path, body=body if length else None, headers=headers)
            res = conn.getresponse()
            data = res.read()
        except OSError as e:
            return self.reply(502, error_xml("InternalError", "s3rver: %s" % e))
        finally:
            conn.close()
        self.proxy.observe(self.command, self.path, res.status, data)
        self.reply(res.status, data, res.getheaders())

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--access-key-id", default="AKIDDATASITETEST")
    ap.add_argument("--secret-access-key", default="datasite/test+secret")
    ap.add_argument("--region", default="us-east-1")
    args = ap.parse_args()
    Handler.proxy = Proxy(args.upstream, args.access_key_id, args.secret_access_key, args.region)
    server = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))

    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
