"""[limits] and hostile input through the real `tattle run` (TATTLE_BIN).

Each limit hit is an error naming the origin and the limit's key, counted in the
run's summary, and loses nothing else: the other records, and the other batches,
still raise their alerts. Hostile field values (invalid UTF-8, NUL, terminal escape
sequences, huge numbers, duplicate keys) and hostile file names keep stdout JSON
valid and the logs free of control characters.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import tattle_process  # noqa: E402
from tattle_process import ScratchDirTestCase  # noqa: E402

CONFIG_HEAD = """
[[rule]]
name = "Every event"
jq_match = 'select(.eventName != null) | .eventName'
destinations = ["out"]

[[destination]]
id = "out"
type = "stdout"
format = "json"
"""


def records(*events: str) -> bytes:
    return ('{"Records": [' + ", ".join(events) + "]}").encode()


def event(name: str, extra: str = "") -> str:
    return '{"eventName": "%s", "eventID": "%s"%s}' % (name, name, extra)


class InputLimits(ScratchDirTestCase):
    scratch_prefix = "tattle_limits_"

    def write(self, name: str, data: bytes, gz: bool = False) -> str:  # bytes, not text: hostile input
        with (gzip.open if gz else open)(self.path(name), "wb") as out:
            out.write(data)
        return self.path(name)

    def run_tattle(self, limits: str, *inputs: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
        config = self.path("tattle.toml")
        with open(config, "w") as out:
            out.write("[limits]\n" + limits + "\n" + CONFIG_HEAD)
        result = tattle_process.run_tattle("run", "--config", config, *inputs, timeout=120)
        # Strict: bytes must be UTF-8 and every line one JSON document.
        alerts = [json.loads(line.decode("utf-8")) for line in result.stdout.splitlines() if line.strip()]
        return result, alerts

    def annotations(self, alerts: list[dict]) -> list[str]:
        return sorted(alert["annotation"] for alert in alerts)

    def assert_summary_counts(self, stderr: str, limits_hit: int) -> None:
        self.assertRegex(stderr, rf"\b{limits_hit} input limits hit\b")

    def test_each_limit_is_named_counted_and_loses_nothing_else(self) -> None:
        big_field = ', "big": "%s"' % ("x" * 3000)
        deep_field = ', "deep": ' + "[" * 40 + "]" * 40
        record_size = self.write("record-size.json", records(event("A1"), event("A2", big_field), event("A3")))
        depth = self.write("depth.json", records(event("B1", deep_field), event("B2")))
        many = self.write("many.json", records(*(event(f"C{i}") for i in range(6))))
        batch_size = self.write("batch-size.json", records(event("D1", ', "pad": "%s"' % ("y" * 20000))))
        bomb = self.write("bomb.json.gz", b'{"eventName": "E1"' + b" " * (3 << 20) + b"}", gz=True)
        fine = self.write("fine.json", records(event("F1"), event("F2")))
        limits = "\n".join(["max_record_bytes = 2048", "max_depth = 20", "max_records_per_batch = 5",
                            "max_batch_bytes = 16384", "max_decompressed_bytes = 1048576",
                            "max_alerts_per_batch = 4"])
        result, alerts = self.run_tattle(limits, record_size, depth, many, batch_size, bomb, fine)
        stderr = result.stderr.decode("utf-8")
        self.assertEqual(result.returncode, 1, stderr)
        # Skipped records cost only themselves; failed batches only themselves. many.json
        # is over both max_records_per_batch and max_alerts_per_batch: the alerts limit
        # (4) comes first, after which its batch is failed (its 4 alerts were sent).
        self.assertEqual(self.annotations(alerts), ["A1", "A3", "B2", "C0", "C1", "C2", "C3", "F1", "F2"])
        self.assertIn("record-size.json:1:", stderr)
        self.assertIn("Records[1]: record larger than limits.max_record_bytes = 2048", stderr)
        self.assertIn("depth.json:1:", stderr)
        self.assertIn("Records[0]: record nests deeper than limits.max_depth = 20", stderr)
        self.assertIn("many.json: more than 4 alerts from one batch (limits.max_alerts_per_batch)", stderr)
        self.assertRegex(stderr, r"batch-size\.json: batch of \d+ bytes is larger than limits\.max_batch_bytes = 16384")
        self.assertIn("bomb.json.gz: gzip: decompressed data exceeds the limit of 1048576 bytes "
                      "(limits.max_decompressed_bytes = 1048576)", stderr)
        self.assert_summary_counts(stderr, 5)

    def test_records_per_batch(self) -> None:
        many = self.write("many.json", records(*(event(f"C{i}") for i in range(6))))
        fine = self.write("fine.json", records(event("F1")))
        result, alerts = self.run_tattle("max_records_per_batch = 5", many, fine)
        stderr = result.stderr.decode("utf-8")
        self.assertEqual(result.returncode, 1, stderr)
        self.assertIn("many.json: more than 5 records in the batch (limits.max_records_per_batch = 5)", stderr)
        # The records before the limit were evaluated (their alerts sent); the batch is failed.
        self.assertEqual(self.annotations(alerts), ["C0", "C1", "C2", "C3", "C4", "F1"])
        self.assert_summary_counts(stderr, 1)

    def test_unknown_limit_key_is_a_config_error_with_its_place(self) -> None:
        config = self.path("bad.toml")
        with open(config, "w") as out:
            out.write("[limits]\nmax_record_byte = 10\nmax_depth = 0\n" + CONFIG_HEAD)
        result = tattle_process.run_tattle("check", "--config", config, timeout=60)
        self.assertEqual(result.returncode, 2)
        stderr = result.stderr.decode()
        self.assertIn("bad.toml:2:1: limits: unknown key \"max_record_byte\" (did you mean \"max_record_bytes\"?)",
                      stderr)
        self.assertIn("bad.toml:3:13: limits.max_depth must be an integer from 1 to 1000", stderr)

    def test_hostile_fields_and_names_keep_output_json_and_logs_clean(self) -> None:
        hostile = (b'{"Records": [{"eventName": "H1", "eventID": "h1", '
                   b'"userAgent": "\\u001b[2J\\u001b]0;pwned\\u0007 <!channel> \\u0000 end", '
                   b'"raw": "bad \xff\xfe\xc0\x80 utf8", "huge": 1e400, '
                   b'"digits": 1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890, '
                   b'"dup": 1, "dup": 2}]}')
        good = self.write("hostile.json", hostile)
        # An origin an attacker chose (S3 keys may hold any character): newline, ESC.
        evil_name = self.write("evil\x1b[31m\nFORGED ERROR line.json", b'{"eventName": @}')
        result, alerts = self.run_tattle("max_depth = 128", good, evil_name)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(alerts), 1)
        event_out = alerts[0]["event"]
        self.assertEqual(event_out["userAgent"], "\x1b[2J\x1b]0;pwned\x07 <!channel> \x00 end")
        self.assertEqual(event_out["raw"], "bad \ufffd\ufffd\ufffd\ufffd utf8")
        self.assertEqual(event_out["dup"], 2)
        self.assertIsInstance(event_out["digits"], float)
        # Control characters only as JSON escapes in the output.
        self.assertIsNone(re.search(rb"[\x00-\x09\x0b-\x1f]", result.stdout))
        # Logs: no raw control character but the newlines ending lines, and the file
        # name cannot start a line of its own.
        stderr = result.stderr
        self.assertIsNone(re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", stderr), stderr)
        self.assertIn(rb"evil\x1b[31m\x0aFORGED ERROR line.json:1:15: JSON syntax error", stderr)
        self.assertFalse(any(line.startswith(b"FORGED") for line in stderr.splitlines()))
        stderr.decode("utf-8")  # valid UTF-8


if __name__ == "__main__":
    unittest.main()
