"""Alert shaping with the real binary and plugins: a rule's title and its dedup count
reach the sinks, threshold holds alerts back by event time, lists and macros apply,
and `tattle test` checks event sequences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import ScratchDirTestCase, run_tattle  # noqa: E402


def tattle(*args: str) -> subprocess.CompletedProcess:
    return run_tattle(*args, timeout=120, text=True)


def failed_login(event_id: str, time: str, ip: str = "198.51.100.7", user: str = "bob") -> dict:
    return {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": time,
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "eventType": "AwsConsoleSignIn",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": user,
                         "arn": f"arn:aws:iam::111122223333:user/{user}"},
        "responseElements": {"ConsoleLogin": "Failure"},
    }


CONFIG = """\
state_dir = "state"
spool_dir = "spool"

[lists]
watched_addresses = ["198.51.100.7", "203.0.113.5"]

[macros]
failed_console_login = '.eventName == "ConsoleLogin" and .responseElements.ConsoleLogin == "Failure"'

[[destination]]
id = "document"
type = "stdout"
format = "json"

[[destination]]
id = "terminal"
type = "stdout"
format = "text"

[[rule]]
id = "watched-login-failure"
name = "Failed sign-in from a watched address"
jq_match = 'failed_console_login and (.sourceIPAddress as $ip | watched_addresses | index($ip) != null)'
title = '"\\(.userIdentity.userName) failed to sign in from \\(.sourceIPAddress)"'
dedup = { key = ".sourceIPAddress", window = "1h" }
destinations = ["document", "terminal"]

[[rule]]
id = "brute-force"
name = "Console brute force"
jq_match = 'failed_console_login'
threshold = { key = ".sourceIPAddress", count = 3, window = "10m" }
destinations = ["document"]
"""


class AlertShapingTest(ScratchDirTestCase):
    scratch_prefix = "tattle_shaping_"

    def test_title_and_suppressed_count_reach_the_sinks(self) -> None:
        config = self.write("tattle.toml", CONFIG)
        # Two files, one after the other: state carries over from batch to batch.
        self.write("logs/1.json", json.dumps({"Records": [
            failed_login("a1", "2026-11-27T10:00:00Z"),
            failed_login("a2", "2026-11-27T10:05:00Z"),
            failed_login("other", "2026-11-27T10:06:00Z", ip="192.0.2.44", user="carol"),
            failed_login("a3", "2026-11-27T10:09:59Z"),
        ]}))
        self.write("logs/2.json", json.dumps({"Records": [
            failed_login("a4", "2026-11-27T10:30:00Z"),
            failed_login("a5", "2026-11-27T11:00:00Z"),   # one hour after a1: a new alert
            failed_login("a6", "2026-11-27T11:20:00Z"),
        ]}))
        result = tattle("run", "--config", config, os.path.join(self.dir, "logs", "1.json"),
                        os.path.join(self.dir, "logs", "2.json"))
        self.assertEqual(result.returncode, 0, result.stderr)
        documents = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
        text_lines = [line for line in result.stdout.splitlines() if not line.startswith("{")]

        watched = [d for d in documents if d["rule"]["id"] == "watched-login-failure"]
        watched.sort(key=lambda d: d["event"]["eventID"])
        self.assertEqual([(d["event"]["eventID"], d["dedup"]["suppressed"]) for d in watched],
                         [("a1", 0), ("a5", 3)])
        self.assertEqual(watched[1]["title"], "bob failed to sign in from 198.51.100.7")
        self.assertEqual(watched[1]["dedup"], {"key": "198.51.100.7", "window_seconds": 3600, "suppressed": 3})
        self.assertEqual(len(text_lines), 2, result.stdout)
        self.assertTrue(any('title="bob failed to sign in from 198.51.100.7" suppressed=3' in line
                            for line in text_lines), text_lines)

        # Three failures from one address within ten minutes of event time: a1, a2, a3 (at 9:59).
        brute = [d for d in documents if d["rule"]["id"] == "brute-force"]
        self.assertEqual([(d["event"]["eventID"], d["threshold"]["count"]) for d in brute], [("a3", 3)])
        self.assertNotIn("title", brute[0])
        self.assertIn("matches deduplicated", result.stderr)

    def test_sequences_are_tested_and_a_wrong_count_fails_readably(self) -> None:
        events = ", ".join("'" + json.dumps(failed_login(f"e{i}", f"2026-11-27T10:0{i}:00Z")) + "'"
                           for i in range(3))
        config = self.write("tattle.toml", CONFIG + textwrap.dedent(f"""
            [[rule.test]]
            events = [{events}]
            alerts = 1

            [[rule.test]]
            events = [{events}]
            alerts = 3

            [[rule.test]]
            event = '{json.dumps(failed_login("x", "2026-11-27T10:00:00Z"))}'
            match = true
            """))
        result = tattle("test", config)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("3 tests, 2 passed, 1 failed", result.stdout)
        self.assertIn("        expected: 3 alerts\n"
                      "        got:      1 alert (3 events, 3 matched, 0 deduplicated, 2 below threshold)\n",
                      result.stdout)

    def test_bad_shaping_keys_are_reported_with_file_and_line(self) -> None:
        config = self.write("tattle.toml", CONFIG.replace('window = "10m"', 'window = "10 minutes"')
                            .replace("[macros]", "[macros]\nlength = '1'"))
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn(config + ":33:", result.stderr)
        self.assertIn("threshold.window must be a duration", result.stderr)
        # Only once the structure is right are the jq definitions checked.
        config = self.write("tattle.toml", CONFIG.replace("[macros]", "[macros]\nlength = '1'"))
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertIn(config + ":8:", result.stderr)
        self.assertIn("length is a jq builtin", result.stderr)


if __name__ == "__main__":
    unittest.main()
