"""`tattle backtest` and `tattle run --workers N` through the real binary.

The backtest's per-rule numbers are checked against what `tattle run` delivers on the
same logs (a different path through the core: outboxes and a sink), and parallel runs
against the one-worker run, alert for alert and in order.
"""

from __future__ import annotations

import collections
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import (SHARED_DATA_DIR, SOURCE_DIR, ScratchDirTestCase, json_lines, run_tattle,  # noqa: E402
                            with_environment)

CLOUDTRAIL = os.path.join(SHARED_DATA_DIR, "cloudtrail")
RULES = os.path.join(SOURCE_DIR, "configs", "rules", "cloudtrail.toml")


def tattle(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_tattle(*args, timeout=300, env=with_environment(env))


def alerts_of(stdout: bytes) -> list[dict]:
    return json_lines(stdout, skip_blank=True)


class Workers(unittest.TestCase):
    def test_parallel_runs_give_the_one_worker_alerts_in_the_same_order(self) -> None:
        one = tattle("run", "--config", RULES, "--workers", "1", CLOUDTRAIL)
        self.assertIn(one.returncode, (0, 1), one.stderr.decode()[-2000:])
        reference = [(a["alert_id"], a["origin"]["batch"], a["origin"]["index"]) for a in alerts_of(one.stdout)]
        self.assertGreater(len(reference), 100)
        for workers in ("2", "3"):
            many = tattle("run", "--config", RULES, "--workers", workers, CLOUDTRAIL)
            self.assertEqual(many.returncode, one.returncode, many.stderr.decode()[-2000:])
            got = [(a["alert_id"], a["origin"]["batch"], a["origin"]["index"]) for a in alerts_of(many.stdout)]
            self.assertEqual(got, reference, f"--workers {workers}")

    def test_workers_key_and_option_are_validated(self) -> None:
        with tempfile.TemporaryDirectory() as work:
            config = os.path.join(work, "tattle.toml")
            with open(config, "w", encoding="utf-8") as out:
                out.write("workers = -1\n[[destination]]\nid = \"out\"\ntype = \"stdout\"\n")
            result = tattle("check", "--config", config)
            self.assertEqual(result.returncode, 2)
            self.assertIn("tattle.toml:1", result.stderr.decode() + result.stdout.decode())
        result = tattle("run", "--config", RULES, "--workers", "many", CLOUDTRAIL)
        self.assertEqual(result.returncode, 2)
        self.assertIn("workers", result.stderr.decode())


class Backtest(ScratchDirTestCase):
    scratch_prefix = "tattle_backtest_"

    def test_counts_per_rule_equal_what_run_delivers_and_nothing_is_sent(self) -> None:
        sent_file = os.path.join(self.dir, "sent.jsonl")
        config = self.write("tattle.toml", f"""\
            [[destination]]
            id = "file"
            type = "file"
            path = "{sent_file}"

            [[rule]]
            name = "access keys"
            jq_match = 'select(.eventName == "CreateAccessKey")'
            destinations = ["file"]

            [[rule]]
            id = "denied"
            name = "access denied"
            severity = "low"
            jq_match = '.errorCode == "AccessDenied"'
            destinations = ["file"]

            [[rule]]
            id = "console"
            name = "console logins (not enabled yet)"
            enabled = false
            jq_match = 'select(.eventName == "ConsoleLogin")'
            destinations = ["file"]

            [[rule]]
            id = "denied-once-per-actor"
            name = "access denied, once per actor"
            jq_match = '.errorCode == "AccessDenied"'
            dedup = {{ key = '.userIdentity.arn // "nobody"', window = "1d" }}
            destinations = ["file"]

            [[rule]]
            id = "denied-storm"
            name = "a million denials"
            jq_match = '.errorCode == "AccessDenied"'
            threshold = {{ key = '.sourceIPAddress', count = 1000000, window = "1h" }}
            destinations = ["file"]

            [[rule]]
            id = "none"
            name = "never"
            jq_match = 'select(.eventName == "NoSuchCall")'
            destinations = ["file"]
            """)
        result = tattle("backtest", "--config", config, "--json", "--top", "2", CLOUDTRAIL)
        self.assertIn(result.returncode, (0, 1), result.stderr.decode()[-2000:])
        self.assertFalse(os.path.exists(sent_file), "a backtest must not deliver anything")
        report = json.loads(result.stdout)
        rows = {row["rule"]: row for row in report["rules"]}
        self.assertEqual(set(rows), {"access keys", "denied", "console", "none", "denied-once-per-actor",
                                     "denied-storm"})

        # The reference: every event of the same logs, read here, counted by hand.
        expected = collections.Counter()
        actors = collections.defaultdict(collections.Counter)
        events = 0
        denied_actors: set[str] = set()
        for root, _, files in os.walk(CLOUDTRAIL):
            for name in files:
                path = os.path.join(root, name)
                try:
                    with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as data:
                        document = json.loads(data.read())
                except (ValueError, OSError):
                    continue
                records = document.get("Records") if isinstance(document, dict) else None
                if not isinstance(records, list):
                    continue
                for event in records:
                    if not isinstance(event, dict):
                        continue
                    events += 1
                    arn = (event.get("userIdentity") or {}).get("arn")
                    if event.get("errorCode") == "AccessDenied":
                        denied_actors.add(arn or "nobody")
                    for rule, hit in (("access keys", event.get("eventName") == "CreateAccessKey"),
                                      ("denied", event.get("errorCode") == "AccessDenied"),
                                      ("console", event.get("eventName") == "ConsoleLogin")):
                        if hit:
                            expected[rule] += 1
                            if arn:
                                actors[rule][arn] += 1
        self.assertGreater(expected["access keys"], 0)
        self.assertGreater(expected["console"], 0)
        self.assertGreaterEqual(report["events"], events)
        for rule in ("access keys", "denied", "console"):
            self.assertEqual(rows[rule]["matches"], expected[rule], rule)
            top = rows[rule]["top_actors"]
            self.assertLessEqual(len(top), 2)
            if actors[rule]:
                best = max(actors[rule].values())
                self.assertEqual(top[0]["matches"], best, rule)
        self.assertEqual(rows["none"]["matches"], 0)
        # Shaping: the same matches, fewer alerts.
        once = rows["denied-once-per-actor"]
        self.assertEqual(once["matches"], expected["denied"])
        self.assertEqual(once["distinct_dedup_keys"], len(denied_actors))
        self.assertEqual(once["alerts"] + once["deduplicated"], once["matches"])
        self.assertGreaterEqual(once["alerts"], len(denied_actors))
        self.assertLess(once["alerts"], once["matches"])
        storm = rows["denied-storm"]
        self.assertEqual((storm["alerts"], storm["below_threshold"]), (0, expected["denied"]))
        self.assertEqual(rows["denied"]["alerts"], rows["denied"]["matches"])
        self.assertFalse(rows["console"]["enabled"])
        self.assertEqual(rows["denied"]["severity"], "low")
        ordered = [row["matches"] for row in report["rules"]]
        self.assertEqual(ordered, sorted(ordered, reverse=True), "noisiest rule first")

        # The same config through `run`: what it delivers per rule is what backtest counted
        # (the disabled rule aside).
        run = tattle("run", "--config", config, CLOUDTRAIL)
        self.assertIn(run.returncode, (0, 1), run.stderr.decode()[-2000:])
        with open(sent_file, encoding="utf-8") as sent:
            delivered = collections.Counter(json.loads(line)["rule"]["name"] for line in sent if line.strip())
        self.assertEqual(delivered["access keys"], rows["access keys"]["matches"])
        self.assertEqual(delivered["access denied"], rows["denied"]["matches"])
        self.assertEqual(delivered["console logins (not enabled yet)"], 0)

    def test_table_progress_and_a_corrupt_file(self) -> None:
        logs = os.path.join(self.dir, "logs")
        os.makedirs(logs)
        sample = os.path.join(SOURCE_DIR, "configs", "samples")
        for name in os.listdir(sample):
            if name.endswith(".json.gz"):
                shutil.copy(os.path.join(sample, name), logs)
        with open(os.path.join(logs, "broken.json.gz"), "wb") as out:
            out.write(b"\x1f\x8b\x08\x00garbage")
        result = tattle("backtest", "--config", RULES, "--progress", "always", logs)
        self.assertEqual(result.returncode, 1, result.stderr.decode()[-2000:])
        out = result.stdout.decode()
        self.assertTrue(out.startswith("RULE"), out[:200])
        self.assertIn("nothing was sent", out)
        self.assertIn("broken.json.gz", out)
        err = result.stderr.decode()
        self.assertIn("events/s", err)
        self.assertIn("%", err)

    def test_needs_inputs(self) -> None:
        result = tattle("backtest", "--config", RULES)
        self.assertEqual(result.returncode, 2)
        self.assertIn("give the logs to read", result.stderr.decode())


if __name__ == "__main__":
    unittest.main()
