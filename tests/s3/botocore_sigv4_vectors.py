#!/usr/bin/python3
"""Prints SigV4 test vectors signed by botocore's own S3 signer, one JSON object a line.

Run by src/net/sigv4_test.cc (with Debian's /usr/bin/python3 and python3-botocore, offline): the
C++ signer must produce the same Authorization header for every request. The requests are generated
from a fixed seed, with the keys and query parameters an S3 client meets in practice and a few it
should survive: spaces, unicode, '+', '~', '/', '=', '&', empty values, repeated names.
"""
import datetime
import json
import random
import sys

import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.utils

# botocore reads the wall clock when it signs; every vector is signed at its own fixed time instead.
_now = [datetime.datetime(2013, 5, 24)]


class _FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return _now[0]


botocore.auth.datetime.datetime = _FixedDatetime

ALPHABET = ["a", "Z", "0", "-", "_", ".", "~", " ", "+", "/", "=", "&", "%", "é", "日本", "😀", "!",
            "*", "'", "(", ")", ",", ";", ":", "@", "$", "?", "#", "[", "]"]


def word(rng, lo=1, hi=12):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(lo, hi)))


def vector(rng, i):
    method = rng.choice(["GET", "PUT", "HEAD", "DELETE", "POST"])
    bucket = rng.choice(["bucket", "my-bucket", "b.1"])
    key = word(rng, 1, 20)
    # A key as an S3 client puts it in a path: botocore's own rule for S3 keys (slashes kept).
    path = "/" + bucket + "/" + botocore.utils.percent_encode(key, safe="/~")
    query = []
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(["uploads", "uploadId", "partNumber", "prefix", "list-type",
                           "continuation-token", "start-after", "max-keys", "x", word(rng, 1, 5)])
        value = rng.choice(["", "", "2", "1000", word(rng, 1, 10)])
        query.append((name, value))
    port = rng.choice([None, 9000, 443])
    host = "127.0.0.1" + (":%d" % port if port else "")
    headers = {"Host": host}
    if rng.random() < 0.4:
        headers["Range"] = "bytes=%d-%d" % (rng.randint(0, 100), rng.randint(100, 10**9))
    if rng.random() < 0.3:
        headers["Content-Type"] = rng.choice(["application/octet-stream", "text/plain;  charset=utf-8"])
    if rng.random() < 0.3:
        headers["x-amz-meta-sha256"] = "%064x" % rng.getrandbits(256)
    if rng.random() < 0.2:
        headers["X-Amz-Storage-Class"] = "  REDUCED_REDUNDANCY "
    body = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 0, 1, 21, 300])))
    unsigned = rng.random() < 0.25
    token = "FwoGZXIvYXdzE" + word(rng, 4, 8).replace(" ", "x") if rng.random() < 0.2 else None
    when = datetime.datetime(2013, 5, 24) + datetime.timedelta(seconds=rng.randint(0, 10**9))
    _now[0] = when

    scheme = "https" if unsigned else "http"
    request = botocore.awsrequest.AWSRequest(method=method, url=scheme + "://" + host + path,
                                             headers=dict(headers), data=body, params=query)
    if unsigned:
        request.context["client_config"] = botocore.config.Config(
            s3={"payload_signing_enabled": False})
    region = rng.choice(["us-east-1", "eu-west-3", "garage"])
    creds = botocore.credentials.Credentials("AKIDEXAMPLE%d" % i, "secret/+%d" % i, token)
    botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(request)
    return {
        "method": method,
        "path": "/" + bucket + "/" + key,
        "query": query,
        "headers": list(headers.items()),
        "body_hex": body.hex(),
        "unsigned_payload": unsigned,
        "access_key_id": creds.access_key,
        "secret_access_key": creds.secret_key,
        "session_token": token or "",
        "region": region,
        "unix_seconds": int(when.replace(tzinfo=datetime.timezone.utc).timestamp()),
        "authorization": request.headers["Authorization"],
        "x_amz_date": request.headers["X-Amz-Date"],
        "x_amz_content_sha256": request.headers["X-Amz-Content-SHA256"],
    }


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rng = random.Random(20130524)
    for i in range(count):
        print(json.dumps(vector(rng, i), ensure_ascii=False))


if __name__ == "__main__":
    main()
