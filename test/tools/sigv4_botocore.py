#!/usr/bin/python3
"""Signs S3 requests with botocore (an independent SigV4 implementation) for shardy's
cross-check test. Reads one JSON request per line on stdin, writes one JSON line per request:
{"authorization": ..., "canonical_request": ...}.

Input fields: method, scheme, host (connect host), port ("" = default), virtual_host (bool),
bucket, key, query ([[name, value], ...] raw), headers ([[name, value], ...] extra signed
headers), body (text, UTF-8) or null, unsigned_payload (bool), access_key, secret_key,
token ("" = none), region, timestamp ("YYYYMMDDTHHMMSSZ").
"""
import datetime
import json
import sys
import types

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode


def signer_at(timestamp):
    fixed = datetime.datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ")

    class FixedDateTime(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    botocore.auth.datetime = types.SimpleNamespace(datetime=FixedDateTime)


class RecordingSigner(botocore.auth.S3SigV4Auth):
    """Remembers the canonical request it signed (for failure messages)."""

    def canonical_request(self, request):
        self.last_canonical_request = super().canonical_request(request)
        return self.last_canonical_request


def sign(req):
    signer_at(req["timestamp"])
    host = req["host"]
    if ":" in host:
        host = "[" + host + "]"
    if req["virtual_host"]:
        host = req["bucket"] + "." + host
        path = "/" + percent_encode(req["key"], safe="/~")
    else:
        path = "/" + percent_encode(req["bucket"], safe="~")
        if req["key"]:
            path += "/" + percent_encode(req["key"], safe="/~")
    netloc = host + (":" + req["port"] if req["port"] else "")
    url = req["scheme"] + "://" + netloc + path
    headers = {}
    for name, value in req["headers"]:
        headers[name] = value
    body = req["body"].encode("utf-8") if req["body"] is not None else b""
    request = AWSRequest(method=req["method"], url=url, headers=headers, data=body,
                         params=[tuple(p) for p in req["query"]])
    if req["unsigned_payload"]:
        request.context["client_config"] = types.SimpleNamespace(
            s3={"payload_signing_enabled": False})
    creds = Credentials(req["access_key"], req["secret_key"], req["token"] or None)
    auth = RecordingSigner(creds, "s3", req["region"])
    auth.add_auth(request)
    return {"authorization": request.headers["Authorization"],
            "canonical_request": auth.last_canonical_request}


def main():
    for line in sys.stdin:
        line = line.strip()
        if line:
            sys.stdout.write(json.dumps(sign(json.loads(line))) + "\n")


if __name__ == "__main__":
    main()
