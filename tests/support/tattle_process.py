"""Running the tattle under test from the integration tests, and reading what it prints.

Every integration test starts tattle through TATTLE_BIN, which tests/CMakeLists.txt points
at the audited wrapper (tests/support/audited_tattle.sh): the wrapper copies what tattle
prints, and the secrets its environment holds, to where tests/integration/secret_audit.py
searches them after the suite. A tattle started any other way escapes that audit, so the
tests start it through run_tattle and start_tattle here (lambda_runtime_test through a
`bootstrap` link to TATTLE_BIN, as Lambda starts it). The paths of the source tree
and the shared test data, a scratch-directory test case, the alert lines tattle prints and
the file-source snippet that several configs share live here too, written once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

TATTLE_BIN = os.environ.get("TATTLE_BIN", "")
SOURCE_DIR = os.environ.get("TATTLE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED_DATA_DIR = os.environ.get("TATTLE_SHARED_DATA_DIR", os.path.join(SOURCE_DIR, "..", "shared", "data"))
SUPPORT_DIR = os.path.join(SOURCE_DIR, "tests", "support")
SAMPLES_DIR = os.path.join(SOURCE_DIR, "configs", "samples")
# cloudtrail-tattletail's own test log: one CreateUser among other IAM calls.
TATTLETAIL_TESTDATA = os.path.join(SHARED_DATA_DIR, "tattletail", "testdata-1.json")


def run_tattle(*args: str, timeout: float, env: dict | None = None, stdin: bytes | str | None = None,
               text: bool = False, cwd: str | None = None) -> subprocess.CompletedProcess:
    """tattle ARGS to its end, stdout and stderr captured; env, when given, is its whole
    environment. The timeout is the caller's: each test keeps its own."""
    return subprocess.run([TATTLE_BIN, *args], input=stdin, capture_output=True, timeout=timeout, env=env,
                          text=text, cwd=cwd)


def start_tattle(*args: str, **popen_arguments) -> subprocess.Popen:
    """tattle ARGS left running (a daemon, or a run to kill mid-way); popen_arguments as for Popen."""
    return subprocess.Popen([TATTLE_BIN, *args], **popen_arguments)


def with_environment(extra: dict | None) -> dict:
    """This process's environment with extra set on top of it."""
    environment = dict(os.environ)
    environment.update(extra or {})
    return environment


def output_of(result: subprocess.CompletedProcess) -> str:
    """Everything a finished tattle printed, stdout then stderr, as text."""
    def as_text(output) -> str:
        return output.decode() if isinstance(output, bytes) else output
    return as_text(result.stdout) + as_text(result.stderr)


def json_lines(output: bytes | str, skip_blank: bool = False) -> list:
    """One JSON document per line of output (tattle's alerts with format = "json"); a line
    that is not JSON fails the test, as does a blank one unless skip_blank."""
    text = output.decode() if isinstance(output, bytes) else output
    return [json.loads(line) for line in text.splitlines() if not skip_blank or line.strip()]


def sample_cloudtrail_files() -> list[str]:
    """The names of the gzipped CloudTrail logs in configs/samples (not the digest files)."""
    return sorted(name for name in os.listdir(SAMPLES_DIR) if name.endswith(".json.gz") and "_CloudTrail_" in name)


def followed_file_source(paths: str, checkpoint: str, source_id: str = "incoming") -> str:
    """The TOML of a file source that follows a directory, rescanning every 0.1 s, its
    checkpoint where given: what a daemon under test reads from."""
    return textwrap.dedent(f"""
        [[source]]
        id = "{source_id}"
        type = "file"
        paths = ["{paths}"]
        follow = true
        scan_interval_seconds = 0.1
        checkpoint = "{checkpoint}"
        """)


class ScratchDirTestCase(unittest.TestCase):
    """A test case with a fresh directory of its own (self.dir), removed afterwards."""

    scratch_prefix = "tattle_test_"

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix=self.scratch_prefix)

    def tearDown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def write(self, name: str, text: str) -> str:
        """Writes text, dedented, to NAME under self.dir (its directories made); returns the path."""
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as out:
            out.write(textwrap.dedent(text))
        return path


def require_tattle_bin() -> None:
    """Stops a test script run by hand without TATTLE_BIN, before its first test fails obscurely."""
    if not TATTLE_BIN or not os.access(TATTLE_BIN, os.X_OK):
        raise SystemExit(f"TATTLE_BIN must name the tattle binary (got {TATTLE_BIN!r})")
