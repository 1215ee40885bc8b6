#!/usr/bin/env python3
"""A small local HTTP(S) server for tattle's tests (Python 3.11 standard library only).

Started by a test as a subprocess; it binds 127.0.0.1 on an ephemeral port and prints the
port alone on its first stdout line. It exits when its stdin reaches end of file (so a test
that dies cannot leave it behind: give it a pipe) or on SIGTERM.

    https_server.py [--cert PEM --key PEM] [--log FILE] [--script FILE]
                    [--rate-limit N --burst B] [--proxy] [--tls-max 1.1]

Without --cert/--key it serves plain HTTP. Every request is recorded as one JSON object:

    {"seq": 0, "connection": 0, "client_port": 51234, "method": "POST", "path": "/x?y=1",
     "headers": [["Host", "127.0.0.1:8443"], ...], "body": "text", "body_base64": "...",
     "response": 200, "time": 1700000000.123}

appended to --log FILE (one line each, flushed before the response is sent) and served
by GET /_control/requests as a JSON array. PUT /_control/script with a script (below) as
its body replaces the script and starts it from its first response, e.g. to end an
outage mid-test. Control requests are not recorded and take no script response.
"connection" numbers the TCP connections the server accepted, in order: two requests with
the same number came over one kept-alive connection. "response" is the status answered,
or "hang" / "close".

--script FILE holds a JSON list of responses used in order, the last one repeating:

    {"status": 200, "headers": {"Retry-After": "2"}, "body": "text or any JSON value",
     "delay_ms": 100, "chunked": true, "hang": true, "close": true}

"hang" never answers (the connection stays open), "close" closes the connection without
answering, "chunked" sends the body with Transfer-Encoding: chunked. A JSON (non-string)
body is sent as application/json. Without a script every request gets 200 "ok".

--rate-limit N --burst B: a token bucket (N requests a second, B at once); a request
without a token gets 429 with Retry-After (whole seconds) and does not consume the script.

--proxy turns the server into an HTTP CONNECT proxy (plain TCP): each CONNECT is recorded
like a request (method "CONNECT", path "host:port") and tunnelled; a script entry with a
status other than 200 refuses the tunnel with that status.

--tls-max 1.1 caps the server's TLS version (to show that clients refuse old TLS).
"""

import argparse
import base64
import itertools
import json
import math
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTROL_PREFIX = "/_control/"


class Recorder:
    """Keeps every request in memory and, when asked, in a JSON-lines file."""

    def __init__(self, log_path):
        self._lock = threading.Lock()
        self._entries = []
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None

    def record(self, entry):
        with self._lock:
            entry["seq"] = len(self._entries)
            self._entries.append(entry)
            if self._log:
                self._log.write(json.dumps(entry) + "\n")
                self._log.flush()

    def entries(self):
        with self._lock:
            return list(self._entries)


class Script:
    """Scripted responses handed out in order; the last one repeats forever."""

    def __init__(self, responses):
        self._lock = threading.Lock()
        self.replace(responses)

    def replace(self, responses):
        if isinstance(responses, dict):
            responses = [responses]
        if not isinstance(responses, list) or not all(isinstance(r, dict) for r in responses):
            raise ValueError("a script is a list of response objects")
        with self._lock:
            self._responses = responses or [{"status": 200, "body": "ok"}]
            self._next = 0

    def next(self):
        with self._lock:
            response = self._responses[min(self._next, len(self._responses) - 1)]
            self._next += 1
            return response


class TokenBucket:
    def __init__(self, rate, burst):
        self._lock = threading.Lock()
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self):
        """Returns 0 when a token was taken, else the seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


class State:
    def __init__(self, args):
        self.recorder = Recorder(args.log)
        responses = []
        if args.script:
            with open(args.script, encoding="utf-8") as script_file:
                responses = json.load(script_file)
        self.script = Script(responses)
        self.bucket = TokenBucket(args.rate_limit, args.burst) if args.rate_limit else None
        self._connections = itertools.count()
        self._connections_lock = threading.Lock()

    def new_connection_id(self):
        with self._connections_lock:
            return next(self._connections)


def wait_forever():
    threading.Event().wait()


class RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the script says otherwise
    server_version = "tattle-test-server"
    state = None  # set by main()

    def setup(self):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # stalls or refuses our certificate cannot block the accept loop.
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.connection_id = self.state.new_connection_id()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # the recorder is the log; stderr stays for real problems

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self):
        body = self._read_body()
        if self.path.startswith(CONTROL_PREFIX):
            self._control(body)
            return

        response = None
        if self.state.bucket:
            wait = self.state.bucket.take()
            if wait > 0:
                response = {"status": 429, "headers": {"Retry-After": str(math.ceil(wait))},
                            "body": "rate limited"}
        if response is None:
            response = self.state.script.next()

        if response.get("hang"):
            outcome = "hang"
        elif response.get("close"):
            outcome = "close"
        else:
            outcome = int(response.get("status", 200))
        self.state.recorder.record({
            "connection": self.connection_id,
            "client_port": self.client_address[1],
            "method": self.command,
            "path": self.path,
            "headers": [[name, value] for name, value in self.headers.items()],
            "body": body.decode("utf-8", errors="replace"),
            "body_base64": base64.b64encode(body).decode("ascii"),
            "response": outcome,
            "time": time.time(),
        })

        if response.get("delay_ms"):
            time.sleep(response["delay_ms"] / 1000)
        if outcome == "hang":
            wait_forever()
        if outcome == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(outcome, response.get("headers", {}), response.get("body", ""),
                     bool(response.get("chunked")))

    def _answer(self, status, headers, body, chunked):
        content_type = "text/plain; charset=utf-8"
        if not isinstance(body, str):
            body = json.dumps(body)
            content_type = "application/json"
        payload = body.encode("utf-8")
        self.send_response(status)
        names = {name.lower() for name in headers}
        if "content-type" not in names:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, str(value))
            if name.lower() == "connection" and str(value).lower() == "close":
                self.close_connection = True
        if self.command == "HEAD":
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            return
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            piece = 7  # small and odd, so the client sees many chunks
            for start in range(0, len(payload), piece):
                chunk = payload[start:start + piece]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        self.wfile.flush()

    def _control(self, body):
        if self.path == CONTROL_PREFIX + "requests" and self.command == "GET":
            self._answer(200, {}, self.state.recorder.entries(), False)
        elif self.path == CONTROL_PREFIX + "script" and self.command in ("PUT", "POST"):
            try:
                self.state.script.replace(json.loads(body))
            except ValueError as error:
                self._answer(400, {}, f"bad script: {error}", False)
                return
            self._answer(204, {}, "", False)
        else:
            self._answer(404, {}, "unknown control request", False)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class ProxyHandler(socketserver.StreamRequestHandler):
    """A CONNECT-only forward proxy: records the CONNECT, then pipes bytes both ways."""

    state = None  # set by main()

    def handle(self):
        request_line = self.rfile.readline(65537).decode("latin-1").rstrip("\r\n")
        headers = []
        while True:
            line = self.rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append([name.strip(), value.strip()])
        method, _, rest = request_line.partition(" ")
        target = rest.partition(" ")[0]

        status = 405 if method != "CONNECT" else int(self.state.script.next().get("status", 200))
        self.state.recorder.record({
            "connection": self.state.new_connection_id(),
            "client_port": self.client_address[1],
            "method": method,
            "path": target,
            "headers": headers,
            "body": "",
            "body_base64": "",
            "response": status,
            "time": time.time(),
        })
        if status != 200:
            self.wfile.write(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % status)
            return

        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        upstream.settimeout(None)
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()

        def upstream_to_client():
            try:
                while data := upstream.recv(65536):
                    self.connection.sendall(data)
            except OSError:
                pass
            finally:
                shutdown_quietly(self.connection, socket.SHUT_WR)

        pump = threading.Thread(target=upstream_to_client, daemon=True)
        pump.start()
        try:
            # rfile may already hold bytes the client sent right after the CONNECT.
            while data := self.rfile.read1(65536):
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            shutdown_quietly(upstream, socket.SHUT_WR)
        pump.join()
        upstream.close()


def shutdown_quietly(sock, how):
    try:
        sock.shutdown(how)
    except OSError:
        pass


class QuietErrors:
    """Handshake failures and clients that hang up are expected in these tests: one line."""

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if not isinstance(error, (ssl.SSLError, ConnectionError, TimeoutError, BrokenPipeError)):
            print(f"https_server: {type(error).__name__}: {error}", file=sys.stderr, flush=True)


class HttpServer(QuietErrors, ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class ProxyServer(QuietErrors, socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def tls_context(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    if args.tls_max:
        # OpenSSL 3 refuses TLS 1.0/1.1 at its default security level; lower it on purpose.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # old TLS is the point here
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = {"1.0": ssl.TLSVersion.TLSv1,
                                       "1.1": ssl.TLSVersion.TLSv1_1,
                                       "1.2": ssl.TLSVersion.TLSv1_2}[args.tls_max]
    return context


def exit_now(*_):
    os._exit(0)  # handler threads may be hanging on purpose; do not wait for them


def watch_stdin():
    try:
        while sys.stdin.buffer.read1(4096):
            pass
    finally:
        exit_now()  # also when stdin is closed or unreadable: never outlive the parent


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cert", help="PEM certificate (chain): serve HTTPS")
    parser.add_argument("--key", help="PEM private key of --cert")
    parser.add_argument("--log", help="append every request to this JSON-lines file")
    parser.add_argument("--script", help="JSON file: the list of responses")
    parser.add_argument("--rate-limit", type=float, default=0, metavar="N",
                        help="requests per second before answering 429")
    parser.add_argument("--burst", type=int, default=1, metavar="B")
    parser.add_argument("--proxy", action="store_true", help="be an HTTP CONNECT proxy")
    parser.add_argument("--tls-max", choices=["1.0", "1.1", "1.2"])
    parser.add_argument("--port", type=int, default=0, help="default: an ephemeral port")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="keep running at stdin EOF (manual use)")
    args = parser.parse_args()
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    if args.proxy and args.cert:
        parser.error("--proxy is a plain-TCP CONNECT proxy; it takes no certificate")
    if args.rate_limit < 0 or args.burst < 1:
        parser.error("--rate-limit must be >= 0 and --burst >= 1")
    return args


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, exit_now)
    state = State(args)
    address = ("127.0.0.1", args.port)
    if args.proxy:
        ProxyHandler.state = state
        server = ProxyServer(address, ProxyHandler)
    else:
        RecordingHandler.state = state
        server = HttpServer(address, RecordingHandler)
        if args.cert:
            server.socket = tls_context(args).wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False)
    print(server.server_address[1], flush=True)
    if not args.ignore_stdin:
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
