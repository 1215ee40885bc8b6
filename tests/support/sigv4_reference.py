#!/usr/bin/env python3
"""Signs one request with botocore, as the reference for tattle's SigV4 signer.

Reads a JSON object on stdin:

    {"method": "GET", "url": "https://s3.eu-west-1.amazonaws.com/bucket/key%20x",
     "headers": [["Content-Type", "text/plain"]], "body": "text",
     "service": "s3", "region": "eu-west-1", "time": "20150830T123600Z",
     "access_key": "AKID", "secret_key": "SECRET", "token": "",
     "unsigned_payload": false}

and prints {"authorization": "...", "canonical_request": "...", "string_to_sign": "..."}.
The URL is in wire form (percent-encoded once), exactly what tattle signs and sends.
Service "s3" uses botocore's S3 signer (no path normalisation, X-Amz-Content-SHA256).
"""

import datetime
import json
import sys
from types import SimpleNamespace

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(spec):
    fixed_time = datetime.datetime.strptime(spec["time"], "%Y%m%dT%H%M%SZ")
    # botocore reads the clock through this module-level name when it signs.
    botocore.auth.get_current_datetime = lambda *args, **kwargs: fixed_time

    request = AWSRequest(method=spec["method"], url=spec["url"], data=spec.get("body", "").encode("utf-8"))
    for name, value in spec.get("headers", []):
        request.headers[name] = value

    credentials = Credentials(spec["access_key"], spec["secret_key"], spec.get("token") or None)
    signer_class = botocore.auth.S3SigV4Auth if spec["service"] == "s3" else botocore.auth.SigV4Auth
    signer = signer_class(credentials, spec["service"], spec["region"])
    if spec.get("unsigned_payload"):
        # The S3 signer takes this switch from the client's S3 configuration.
        request.context["client_config"] = SimpleNamespace(s3={"payload_signing_enabled": False})
        request.context["payload_signing_enabled"] = False

    captured = {}
    original_canonical_request = signer.canonical_request
    original_string_to_sign = signer.string_to_sign

    def canonical_request(req):
        captured["canonical_request"] = original_canonical_request(req)
        return captured["canonical_request"]

    def string_to_sign(req, canonical):
        captured["string_to_sign"] = original_string_to_sign(req, canonical)
        return captured["string_to_sign"]

    signer.canonical_request = canonical_request
    signer.string_to_sign = string_to_sign
    signer.add_auth(request)
    return {
        "authorization": request.headers["Authorization"],
        "canonical_request": captured.get("canonical_request", ""),
        "string_to_sign": captured.get("string_to_sign", ""),
    }


def main():
    print(json.dumps(sign(json.load(sys.stdin))))


if __name__ == "__main__":
    main()
