"""The receiving end of tattle's HTTP destinations in the integration tests:
tests/support/https_server.py run as a subprocess, and what it recorded.

Several tests need the same receiver (a webhook, Slack, PagerDuty), plain or over TLS with
the test CA of make_test_ca.sh, answering by a script; they share this one so that starting
it, reading its request log and stopping it are written once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

SUPPORT_DIR = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(SUPPORT_DIR, "https_server.py")


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago: a receiver that is down,
    or one to start there later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_test_ca(directory: str) -> str:
    """A CA and a server certificate for 127.0.0.1 in directory (ca.pem, server.pem, server.key)."""
    subprocess.run(["bash", os.path.join(SUPPORT_DIR, "make_test_ca.sh"), directory], check=True,
                   capture_output=True)
    return directory


class Receiver:
    """https_server.py as a subprocess: plain HTTP, or HTTPS with the certificate of ca_dir
    (made by make_test_ca); answering by script (a list of responses, see https_server.py);
    on port (0: any). Its stdin pipe keeps it alive, so it never outlives the test."""

    def __init__(self, directory: str, name: str = "requests", script: list | None = None, port: int = 0,
                 extra: tuple = (), ca_dir: str | None = None):
        self.log = os.path.join(directory, f"{name}.jsonl")
        args = [sys.executable, SERVER, "--log", self.log, "--port", str(port), *extra]
        if ca_dir is not None:
            args += ["--cert", os.path.join(ca_dir, "server.pem"), "--key", os.path.join(ca_dir, "server.key")]
        if script is not None:
            script_path = os.path.join(directory, f"{name}.script.json")
            with open(script_path, "w", encoding="utf-8") as f:
                json.dump(script, f)
            args += ["--script", script_path]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.process.stdout.readline())
        self.scheme = "https" if ca_dir is not None else "http"

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[dict]:
        """Every request recorded so far, in arrival order (a line still being written is not one yet)."""
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        self.process.stdout.close()
