#!/usr/bin/env python3
"""Checks the S3 test server (server.js) with an independent SigV4 signer (botocore).

Usage: selftest.py INFO_JSON     (the file the server writes with --info-file)
Every request here is signed by botocore, so this also cross-checks the server's SigV4
verification. Keys live under /<bucket>/selftest-<random>/ so it can share a server with
other tests. Prints 'N passed, N failed' and exits non-zero on any failure.
"""
import hashlib
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

info = json.load(open(sys.argv[1]))
BUCKET = info["buckets"][0]
PFX = f"selftest-{uuid.uuid4().hex[:8]}"
NS = "{http://doc.s3.amazonaws.com/2006-03-01/}"


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def code(self):
        try:
            return ET.fromstring(self.body).findtext("Code")
        except ET.ParseError:
            return None


def signed_headers(method, path, query="", body=b"", headers=None, creds=None, unsigned=False, port=None):
    port = port or info["port"]
    url = f"http://127.0.0.1:{port}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if unsigned:
        req.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    ak, sk, tok = creds or (info["access_key"], info["secret_key"], None)
    S3SigV4Auth(Credentials(ak, sk, tok), "s3", info["region"]).add_auth(req)
    return dict(req.headers.items())


def send(method, path, query="", body=b"", headers=None, sign=True, creds=None, unsigned=False,
         port=None, timeout=10, send_body=None, conn=None):
    port = port or info["port"]
    h = signed_headers(method, path, query, body, headers, creds, unsigned, port) if sign else dict(headers or {})
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path + (f"?{query}" if query else ""), body=send_body if send_body is not None else body, headers=h)
        r = c.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        if own:
            c.close()


def q(path):
    return urllib.parse.quote(path, safe="/~")


results = []


def check(name, cond, detail=""):
    results.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f"  -- {detail}"), flush=True)


def admin(method, path, body=None):
    req = urllib.request.Request(f"{info['endpoint']}/_shardy/{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main():
    k = f"/{BUCKET}/{PFX}/digits"
    data = b"0123456789"

    # --- authentication ---
    r = send("GET", k, sign=False)
    check("anonymous request -> 403 AccessDenied", r.status == 403 and r.code() == "AccessDenied", r.body)
    r = send("GET", k, creds=(info["access_key"], "wrong-secret", None))
    check("wrong secret -> 403 SignatureDoesNotMatch", r.status == 403 and r.code() == "SignatureDoesNotMatch", r.body)
    r = send("GET", k, creds=("nobody", "x", None))
    check("unknown access key -> 403 InvalidAccessKeyId", r.status == 403 and r.code() == "InvalidAccessKeyId", r.body)
    r = send("HEAD", k, creds=(info["access_key"], "wrong-secret", None))
    check("HEAD with wrong secret -> 403, no body", r.status == 403 and r.body == b"", r.status)

    r = send("PUT", k, body=data, headers={"Content-Type": "text/x-digits"})
    check("signed PUT -> 200 with ETag", r.status == 200 and r.headers.get("etag") == '"%s"' % hashlib.md5(data).hexdigest(), (r.status, r.headers))
    r = send("GET", k)
    check("GET whole object", r.status == 200 and r.body == data and r.headers.get("content-type") == "text/x-digits", (r.status, r.body, r.headers))
    r = send("PUT", k, body=b"ABCDEFGHIJ", send_body=b"abcdefghij")
    check("body not matching x-amz-content-sha256 -> 400 XAmzContentSHA256Mismatch", r.status == 400 and r.code() == "XAmzContentSHA256Mismatch", r.body)
    r = send("GET", k)
    check("rejected PUT left the object unchanged", r.body == data, r.body)
    h = signed_headers("GET", k)
    h["x-amz-meta-sneaky"] = "1"
    r = send("GET", k, headers=h, sign=False)
    check("unsigned x-amz-* header -> 403", r.status == 403, r.body)
    r = send("PUT", f"/{BUCKET}/{PFX}/unsigned-payload", body=b"hello", unsigned=True)
    check("UNSIGNED-PAYLOAD PUT accepted", r.status == 200, r.body)
    sess = info["session_credentials"][0] if info.get("session_credentials") else None
    if sess:
        r = send("GET", k, creds=(sess["access_key"], sess["secret_key"], sess["token"]))
        check("session credential with its token -> 200", r.status == 200 and r.body == data, r.body)
        r = send("GET", k, creds=(sess["access_key"], sess["secret_key"], None))
        check("session credential without token -> 403 InvalidToken", r.status == 403 and r.code() == "InvalidToken", r.body)
        r = send("GET", k, creds=(sess["access_key"], sess["secret_key"], "not-the-token"))
        check("session credential with a wrong token -> 403 InvalidToken", r.status == 403 and r.code() == "InvalidToken", r.body)

    # --- ranges ---
    def rng(spec, method="GET", key=k):
        return send(method, key, headers={"Range": spec})

    for spec, want, cr in [("bytes=0-0", b"0", "bytes 0-0/10"), ("bytes=-3", b"789", "bytes 7-9/10"),
                           ("bytes=-1", b"9", "bytes 9-9/10"), ("bytes=-20", data, "bytes 0-9/10"),
                           ("bytes=3-", b"3456789", "bytes 3-9/10"), ("bytes=2-4", b"234", "bytes 2-4/10"),
                           ("bytes=5-100", b"56789", "bytes 5-9/10"), ("bytes=9-9", b"9", "bytes 9-9/10")]:
        r = rng(spec)
        check(f"range {spec} -> 206 {want!r}", r.status == 206 and r.body == want and r.headers.get("content-range") == cr
              and r.headers.get("content-length") == str(len(want)), (r.status, r.body, r.headers.get("content-range")))
    for spec in ["bytes=10-", "bytes=10-20", "bytes=-0"]:
        r = rng(spec)
        check(f"range {spec} -> 416 InvalidRange, Content-Range bytes */10",
              r.status == 416 and r.code() == "InvalidRange" and r.headers.get("content-range") == "bytes */10", (r.status, r.body, r.headers))
    r = rng("bytes=abc")
    check("malformed range ignored -> 200 whole", r.status == 200 and r.body == data, r.status)
    r = rng("bytes=-3", "HEAD")
    check("HEAD with range -> 206, Content-Length 3", r.status == 206 and r.headers.get("content-length") == "3"
          and r.headers.get("content-range") == "bytes 7-9/10", (r.status, r.headers))
    empty = f"/{BUCKET}/{PFX}/empty"
    send("PUT", empty, body=b"")
    r = send("GET", empty)
    check("empty object -> 200, empty body", r.status == 200 and r.body == b"", r.status)
    r = rng("bytes=0-0", key=empty)
    check("range on empty object -> 416", r.status == 416, r.status)
    big = f"/{BUCKET}/{PFX}/big"
    blob = bytes((i * 7 + 3) % 251 for i in range(3 * 1024 * 1024 + 17))
    send("PUT", big, body=blob)
    r = rng("bytes=1048570-2097160", key=big)
    check("range across chunks of a 3 MiB object", r.status == 206 and r.body == blob[1048570:2097161], len(r.body))
    r = rng("bytes=-100000", key=big)
    check("suffix range of a 3 MiB object", r.status == 206 and r.body == blob[-100000:], len(r.body))
    r = send("GET", big)
    check("whole 3 MiB object", r.status == 200 and r.body == blob, len(r.body))

    # --- preconditions ---
    c = f"/{BUCKET}/{PFX}/cond"
    r = send("PUT", c, body=b"v1", headers={"If-None-Match": "*"})
    check("PUT If-None-Match:* on a new key -> 200", r.status == 200, r.body)
    etag1 = r.headers.get("etag")
    r = send("PUT", c, body=b"v2", headers={"If-None-Match": "*"})
    check("PUT If-None-Match:* on an existing key -> 412 PreconditionFailed", r.status == 412 and r.code() == "PreconditionFailed", r.body)
    check("conflicting create left v1", send("GET", c).body == b"v1")
    r = send("PUT", c, body=b"v2", headers={"If-Match": '"0123"'})
    check("PUT If-Match with a stale ETag -> 412", r.status == 412 and r.code() == "PreconditionFailed", r.body)
    r = send("PUT", c, body=b"v2", headers={"If-Match": etag1})
    check("PUT If-Match with the current ETag -> 200", r.status == 200, r.body)
    etag2 = r.headers.get("etag")
    check("If-Match PUT replaced the object", send("GET", c).body == b"v2")
    r = send("PUT", f"/{BUCKET}/{PFX}/missing", body=b"x", headers={"If-Match": etag1})
    check("PUT If-Match on a missing key -> 404 NoSuchKey", r.status == 404 and r.code() == "NoSuchKey", r.body)
    r = send("GET", c, headers={"If-Match": etag1})
    check("GET If-Match stale -> 412", r.status == 412 and r.code() == "PreconditionFailed", r.body)
    r = send("GET", c, headers={"If-Match": etag2})
    check("GET If-Match current -> 200", r.status == 200 and r.body == b"v2", r.status)
    r = send("HEAD", c, headers={"If-Match": etag1})
    check("HEAD If-Match stale -> 412", r.status == 412, r.status)
    r = send("GET", c, headers={"If-None-Match": etag2})
    check("GET If-None-Match current -> 304", r.status == 304 and r.body == b"", r.status)
    r = send("GET", c, headers={"If-Match": etag2, "Range": "bytes=1-1"})
    check("GET If-Match + range -> 206", r.status == 206 and r.body == b"2", r.status)
    r = send("GET", c, headers={"If-Match": etag1, "Range": "bytes=0-1"})
    check("GET If-Match stale + range -> 412", r.status == 412, r.status)

    race = f"/{BUCKET}/{PFX}/race"
    statuses = []

    def racer(i):
        statuses.append(send("PUT", race, body=f"writer {i}".encode(), headers={"If-None-Match": "*"}).status)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    check("8 racing create-only PUTs: exactly one wins", sorted(statuses) == [200] + [412] * 7, statuses)

    # --- delete ---
    r = send("DELETE", c)
    check("DELETE -> 204", r.status == 204, r.status)
    r = send("GET", c)
    check("GET after DELETE -> 404 NoSuchKey", r.status == 404 and r.code() == "NoSuchKey", r.body)

    # --- odd keys (canonical URI encoding) ---
    for name in ["with space", "plus+sign", "tilde~x", "uni-\u00e9\u4e2d", "bang!*'()", "a=b&c", "semi;colon", "dir/sub/x.y"]:
        path = f"/{BUCKET}/{PFX}/odd/" + name
        r = send("PUT", q(path), body=name.encode())
        r2 = send("GET", q(path))
        check(f"odd key {name!r} round trip", r.status == 200 and r2.status == 200 and r2.body == name.encode(), (r.status, r.body[:300]))

    # --- listing ---
    conn = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=10)
    t0 = time.time()
    n = 250  # paged by max-keys=100 (the C++ client test lists > 1000 keys)
    failures = []

    def put_many(worker, workers=4):
        c = http.client.HTTPConnection("127.0.0.1", info["port"], timeout=30)
        for i in range(worker, n, workers):
            rr = send("PUT", f"/{BUCKET}/{PFX}/many/k{i:05d}", body=b"x", unsigned=True, conn=c)
            if rr.status != 200:
                failures.append(rr.body)
                break
        c.close()

    threads = [threading.Thread(target=put_many, args=(w,)) for w in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    check(f"{n} PUTs on 4 connections", not failures, failures[:1])
    for sub in ["a/1", "a/2", "b/1", "top", "deep/x/y/z", "deeper/p/q/r/s"]:
        send("PUT", f"/{BUCKET}/{PFX}/tree/{sub}", body=b"t", conn=conn)
    put_rate = n / (time.time() - t0)
    keys, token, pages = [], None, 0
    while True:
        qs = f"list-type=2&max-keys=100&prefix={urllib.parse.quote(PFX + '/many/', safe='')}"
        if token:
            qs = f"continuation-token={urllib.parse.quote(token, safe='')}&" + qs
        r = send("GET", f"/{BUCKET}", query=qs, conn=conn)
        if r.status != 200:
            check("list page", False, r.body)
            break
        doc = ET.fromstring(r.body)
        keys += [e.findtext(f"{NS}Key") for e in doc.findall(f"{NS}Contents")]
        pages += 1
        token = doc.findtext(f"{NS}NextContinuationToken")
        if doc.findtext(f"{NS}IsTruncated") != "true":
            break
    check(f"ListObjectsV2 {n} keys over {pages} pages", pages == 3 and keys == [f"{PFX}/many/k{i:05d}" for i in range(n)], (pages, len(keys)))
    qs = f"delimiter=%2F&list-type=2&prefix={urllib.parse.quote(PFX + '/tree/', safe='')}"
    doc = ET.fromstring(send("GET", f"/{BUCKET}", query=qs, conn=conn).body)
    cps = [e.findtext(f"{NS}Prefix") for e in doc.findall(f"{NS}CommonPrefixes")]
    ks = [e.findtext(f"{NS}Key") for e in doc.findall(f"{NS}Contents")]
    # Prefixes whose objects all lie several levels deeper are listed too (s3rver alone misses them).
    check("delimiter listing: common prefixes (also of deep keys) and keys", cps == [f"{PFX}/tree/{d}/" for d in ("a", "b", "deep", "deeper")] and ks == [f"{PFX}/tree/top"], (cps, ks))
    conn.close()
    print(f"(PUT rate on 4 connections: {put_rate:.0f}/s)")

    # --- fault proxy ---
    fp = info["fault_port"]
    fk = f"/{BUCKET}/{PFX}/fault/obj"
    fbody = bytes(range(256)) * 64
    send("PUT", fk, body=fbody)
    admin("POST", "faults", {"prefix": f"/{BUCKET}/{PFX}/fault/", "faults": [
        {"kind": "status", "status": 503}, {"kind": "status", "status": 500},
        {"kind": "reset_before_response"}, {"kind": "close_before_response"},
        {"kind": "reset_mid_body", "after_bytes": 1000}, {"kind": "short_body", "after_bytes": 1000},
        {"kind": "stall", "ms": 1500}, {"kind": "stall_mid_body", "ms": 1500, "after_bytes": 10}]})
    r = send("GET", fk, port=fp)
    check("fault 503 -> 503 SlowDown", r.status == 503 and r.code() == "SlowDown", (r.status, r.body))
    r = send("GET", fk, port=fp)
    check("fault 500 -> 500 InternalError", r.status == 500 and r.code() == "InternalError", (r.status, r.body))

    def expect_exc(name, fn, exc_types):
        try:
            res = fn()
            check(name, False, f"no error; status {res.status}, {len(res.body)} bytes")
        except exc_types as e:
            check(name, True)
        except Exception as e:  # noqa: BLE001
            check(name, False, repr(e))

    expect_exc("fault reset_before_response -> connection reset", lambda: send("GET", fk, port=fp),
               (ConnectionResetError, http.client.RemoteDisconnected))
    expect_exc("fault close_before_response -> EOF, no response", lambda: send("GET", fk, port=fp),
               (http.client.RemoteDisconnected,))
    expect_exc("fault reset_mid_body -> error mid body", lambda: send("GET", fk, port=fp),
               (ConnectionResetError, http.client.IncompleteRead))
    expect_exc("fault short_body -> IncompleteRead", lambda: send("GET", fk, port=fp), (http.client.IncompleteRead,))
    expect_exc("fault stall (1.5 s) -> client timeout at 0.5 s", lambda: send("GET", fk, port=fp, timeout=0.5), (socket.timeout, TimeoutError))
    r = send("GET", fk, port=fp, timeout=5)
    check("fault stall_mid_body -> complete body after the stall", r.status == 200 and r.body == fbody, (r.status, len(r.body)))
    r = send("GET", fk, port=fp)
    check("faults used up -> correct body through the proxy", r.status == 200 and r.body == fbody, (r.status, len(r.body)))
    st = admin("GET", f"stats?via=proxy&prefix={urllib.parse.quote(f'/{BUCKET}/{PFX}/fault/')}")
    check("proxy stats count 9 requests, 8 faults", st["requests"] == 9 and sum(st["faults"].values()) == 8, st)
    st = admin("GET", f"stats?prefix={urllib.parse.quote(f'/{BUCKET}/{PFX}/digits')}")
    check("front stats count requests by prefix", st["requests"] > 20, st)
    check("no faults left pending", admin("GET", f"faults?prefix=/{BUCKET}/{PFX}/")["pending"] == 0)

    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
