"""A local AWS Lambda Runtime API (2018-06-01) for the tests, after the OpenAPI spec in
../shared/data/lambda_runtime_api/: GET /runtime/invocation/next hands out queued events
with Lambda-Runtime-Aws-Request-Id, Lambda-Runtime-Deadline-Ms (epoch milliseconds),
Lambda-Runtime-Trace-Id and Lambda-Runtime-Invoked-Function-Arn; POST
/runtime/invocation/{id}/response and /error, and /runtime/init/error, are recorded and
answered 202 (an unknown request id: 400, as Lambda does for a stale id).

    with RuntimeApi() as api:
        request_id = api.invoke({"Records": [...]}, timeout_ms=30000)
        ... start tattle with AWS_LAMBDA_RUNTIME_API=api.address ...
        result = api.result(request_id, timeout=60)   # {"kind": "response"|"error", "body": ..., "at": epoch s}
"""

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        api = self.server.api
        if self.path != PREFIX + "/runtime/invocation/next":
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        api.next_calls += 1
        event = api.pending.get()  # blocks, as Lambda does, until there is work
        if event is None:  # shutting down: the runtime's next call never returns usefully
            self._reply(500, b'{"errorMessage":"shutting down"}')
            return
        api.handed_out[event["id"]] = event
        body = json.dumps(event["payload"]).encode()
        self._reply(200, body, {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": event["id"],
            "Lambda-Runtime-Deadline-Ms": str(event["deadline_ms"]),
            "Lambda-Runtime-Trace-Id": event["trace_id"],
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:tattle",
        })

    def do_POST(self):  # noqa: N802
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        now = time.time()
        if self.path == PREFIX + "/runtime/init/error":
            self._reply(202, b'{"status":"OK"}')
            api.init_errors.put({"body": body, "error_type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                 "at": now})
            return
        parts = self.path[len(PREFIX):].split("/")  # ["", "runtime", "invocation", id, kind]
        if len(parts) == 5 and parts[1] == "runtime" and parts[2] == "invocation" and parts[4] in ("response", "error"):
            request_id = parts[3]
            if request_id not in api.handed_out or request_id in api.results:
                self._reply(400, b'{"errorMessage":"invalid request id","errorType":"InvalidRequestID"}')
                return
            # Answered first: a test that stops the runtime once it has the result must not
            # cut the runtime's request short.
            self._reply(202, b'{"status":"OK"}')
            with api.changed:
                api.results[request_id] = {"kind": parts[4], "body": body, "at": now,
                                           "error_type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                                           "content_type": self.headers.get("Content-Type")}
                api.changed.notify_all()
            return
        self._reply(404, b'{"errorMessage":"not found"}')


class RuntimeApi:
    def __init__(self):
        self.pending = queue.Queue()
        self.handed_out = {}
        self.results = {}
        self.init_errors = queue.Queue()
        self.changed = threading.Condition()
        self.next_calls = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.api = self
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        for _ in range(4):
            self.pending.put(None)
        self.server.shutdown()
        self.server.server_close()

    def invoke(self, payload, timeout_ms=60000):
        """Queues an invocation; returns its request id. The deadline counts from now."""
        request_id = str(uuid.uuid4())
        self.pending.put({"id": request_id, "payload": payload,
                          "deadline_ms": int(time.time() * 1000) + timeout_ms,
                          "trace_id": "Root=1-%08x-%s;Sampled=0" % (int(time.time()), uuid.uuid4().hex[:24])})
        return request_id

    def result(self, request_id, timeout=60):
        deadline = time.monotonic() + timeout
        with self.changed:
            while request_id not in self.results:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no answer to invocation %s within %s s" % (request_id, timeout))
                self.changed.wait(remaining)
            return self.results[request_id]
