"""Delivery end to end: the real `tattle` binary, its webhook sink and a local receiver
(tests/support/https_server.py) that records every request.

Shows that an alert survives server errors and outages (retries, then the spool, then
`tattle spool replay`), that a kill -9 in the middle of delivery followed by a rerun
delivers every alert exactly once, that a rate limit keeps a receiver from answering 429,
and that the webhook URL (a secret) never shows in what tattle prints.

The receiver speaks plain HTTP (allow_plain_http = true): TLS is the HTTP client's
business and has its own tests; here the subject is what the core does with the answers.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from receiver import Receiver, free_port  # noqa: E402
from tattle_process import (SAMPLES_DIR as SAMPLES, TATTLETAIL_TESTDATA, ScratchDirTestCase, output_of,  # noqa: E402
                            require_tattle_bin, run_tattle, start_tattle)

SECRET_PATH = "hooks/T0123SECRETPATH/B0456"  # part of the webhook URL: must never be printed

# Writes by services other than the two noisy ones: 55 alerts over the 5 sample files.
NOISY = ("ssm.amazonaws.com", "secretsmanager.amazonaws.com")
WRITES_RULE = ('select(.readOnly == false and .eventSource != "ssm.amazonaws.com" '
               'and .eventSource != "secretsmanager.amazonaws.com")')


def expected_sample_event_ids() -> set[str]:
    ids = set()
    for name in sorted(os.listdir(SAMPLES)):
        if not name.endswith(".json.gz"):
            continue
        with gzip.open(os.path.join(SAMPLES, name), "rt", encoding="utf-8") as f:
            for record in json.load(f)["Records"]:
                if record.get("readOnly") is False and record.get("eventSource") not in NOISY:
                    ids.add(record["eventID"])
    return ids


def delivered_event_ids(requests: list[dict]) -> list[str]:
    """The eventID of every alert the receiver accepted (answered 2xx), repeats included."""
    return [json.loads(r["body"])["event"]["eventID"] for r in requests
            if isinstance(r["response"], int) and 200 <= r["response"] < 300]


class DeliveryTest(ScratchDirTestCase):
    scratch_prefix = "tattle_delivery_"

    def setUp(self) -> None:
        super().setUp()
        self.receivers: list[Receiver] = []
        self.printed = ""  # everything tattle wrote, checked for the secret at the end

    def tearDown(self) -> None:
        for receiver in self.receivers:
            receiver.stop()
        self.assertNotIn("T0123SECRETPATH", self.printed, "the webhook URL is a secret")
        super().tearDown()

    def receiver(self, script: list | None = None, port: int = 0, extra: tuple = ()) -> Receiver:
        receiver = Receiver(self.dir, f"requests-{time.monotonic_ns()}", script, port, extra)
        self.receivers.append(receiver)
        return receiver

    def config(self, port: int, delivery: str, rule: str = WRITES_RULE, top: str = "") -> str:
        return self.write("tattle.toml", top + textwrap.dedent(f"""
                spool_dir = "spool"

                [[rule]]
                name = "Writes"
                jq_match = '{rule}'
                destinations = ["hook"]

                [[destination]]
                id = "hook"
                type = "webhook"
                url = "http://127.0.0.1:{port}/{SECRET_PATH}"
                allow_plain_http = true
                timeout_ms = 10000
                delivery = {{ {delivery} }}
                """))

    def tattle(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = run_tattle(*args, timeout=timeout)
        self.printed += output_of(result)
        return result

    def spool_entries(self, config: str) -> list[dict]:
        result = self.tattle("spool", "list", "--json", "--config", config)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)["entries"]

    def test_server_errors_then_ok_deliver_the_alert_once(self) -> None:
        receiver = self.receiver([{"status": 500}, {"status": 500}, {"status": 500}, {"status": 200}])
        config = self.config(receiver.port, "initial_backoff_ms = 50, max_backoff_ms = 200",
                             rule='select(.eventName == "CreateUser")')
        result = self.tattle("run", "--config", config, TATTLETAIL_TESTDATA)
        self.assertEqual(result.returncode, 0, result.stderr)
        requests = receiver.requests()
        self.assertEqual([r["response"] for r in requests], [500, 500, 500, 200])
        self.assertEqual(len({json.loads(r["body"])["alert_id"] for r in requests}), 1, "the same alert each time")
        stderr = result.stderr.decode()
        self.assertIn("1 alerts delivered, 0 spooled", stderr)
        self.assertIn("3 retries", stderr)
        self.assertEqual(self.spool_entries(config), [])

    def test_refused_alert_goes_straight_to_the_spool(self) -> None:
        receiver = self.receiver([{"status": 410, "body": "gone"}])
        config = self.config(receiver.port, "initial_backoff_ms = 50", rule='select(.eventName == "CreateUser")')
        result = self.tattle("run", "--config", config, TATTLETAIL_TESTDATA)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(len(receiver.requests()), 1, "a refusal is not retried")
        entries = self.spool_entries(config)
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0]["destination"], "hook")
        self.assertEqual(entries[0]["attempts"], 1)
        self.assertIn("410", entries[0]["last_error"])
        listing = self.tattle("spool", "list", "--config", config).stdout.decode()
        self.assertIn(entries[0]["id"][:12], listing)
        self.assertIn("Writes", listing)
        # Dropped for good.
        dropped = self.tattle("spool", "drop", "--config", config, entries[0]["id"][:12])
        self.assertEqual(dropped.returncode, 0, dropped.stderr)
        self.assertEqual(self.spool_entries(config), [])
        self.assertEqual(self.tattle("spool", "drop", "--config", config, "abcdef").returncode, 2)

    def test_outage_for_the_whole_budget_spools_everything_and_replay_delivers_it(self) -> None:
        port = free_port()  # nobody listens: connection refused
        config = self.config(port, "max_attempts = 3, initial_backoff_ms = 20, max_backoff_ms = 50, concurrency = 2")
        expected = expected_sample_event_ids()
        self.assertEqual(len(expected), 55)
        result = self.tattle("run", "--config", config, SAMPLES)
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn(f"0 alerts delivered, {len(expected)} spooled", result.stderr.decode())
        self.assertIn("tattle spool replay", result.stderr.decode())
        entries = self.spool_entries(config)
        self.assertEqual(len(entries), len(expected))
        self.assertEqual({e["alert"]["event"]["eventID"] for e in entries}, expected)
        self.assertTrue(all(e["attempts"] == 3 for e in entries))

        receiver = self.receiver(port=port)  # the receiver is back
        replay = self.tattle("spool", "replay", "--config", config)
        self.assertEqual(replay.returncode, 0, replay.stderr)
        self.assertIn(f"{len(expected)} delivered", replay.stdout.decode())
        delivered = delivered_event_ids(receiver.requests())
        self.assertEqual(sorted(delivered), sorted(expected), "every alert once")
        self.assertEqual(self.spool_entries(config), [])

    def test_receiver_back_within_the_budget_gets_every_alert_once(self) -> None:
        port = free_port()
        config = self.config(port, "max_attempts = 100, max_retry_seconds = 60, initial_backoff_ms = 100, "
                                   "max_backoff_ms = 500")
        process = start_tattle("run", "--config", config, SAMPLES, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)  # down for the first 1.5 s of the run
        receiver = self.receiver(port=port)
        stdout, stderr = process.communicate(timeout=120)
        self.printed += stdout.decode() + stderr.decode()
        self.assertEqual(process.returncode, 0, stderr)
        expected = expected_sample_event_ids()
        self.assertEqual(sorted(delivered_event_ids(receiver.requests())), sorted(expected))
        self.assertIn("is failing", stderr.decode())
        self.assertIn("accepts alerts again", stderr.decode())

    def test_kill_during_delivery_then_rerun_delivers_every_alert_exactly_once(self) -> None:
        # The receiver accepts 15 alerts and never answers the 16th: tattle is killed
        # while that request is on the wire, the worst moment.
        receiver = self.receiver([{"status": 200}] * 15 + [{"hang": True}, {"status": 200}])
        config = self.config(receiver.port, "max_attempts = 3", top='state_dir = "state"\n')
        expected = expected_sample_event_ids()
        process = start_tattle("run", "--config", config, SAMPLES, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(receiver.requests()) < 16 and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        before_rerun = receiver.requests()
        self.assertEqual([r["response"] for r in before_rerun], [200] * 15 + ["hang"])

        rerun = self.tattle("run", "--config", config, SAMPLES)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertIn("15 duplicates suppressed", rerun.stderr.decode())
        self.assertIn(f"{len(expected) - 15} alerts delivered", rerun.stderr.decode())
        delivered = delivered_event_ids(receiver.requests())
        self.assertEqual(sorted(delivered), sorted(expected), "every alert accepted exactly once")
        # The one on the wire at the kill was sent again (at least once, never lost).
        self.assertIn(json.loads(before_rerun[-1]["body"])["event"]["eventID"], delivered)

    def test_rate_limit_keeps_the_receiver_from_refusing(self) -> None:
        receiver = self.receiver(extra=("--rate-limit", "5", "--burst", "2"))
        config = self.config(receiver.port, "rate_per_second = 4, burst = 2")
        sample = os.path.join(SAMPLES, "218007301253_CloudTrail_us-east-1_20230710T1205Z_UljXNp9xLp8nsAGc.json.gz")
        started = time.monotonic()
        result = self.tattle("run", "--config", config, sample)
        elapsed = time.monotonic() - started
        self.assertEqual(result.returncode, 0, result.stderr)
        responses = [r["response"] for r in receiver.requests()]
        self.assertEqual(len(responses), 11)
        self.assertNotIn(429, responses)
        self.assertGreaterEqual(elapsed, (11 - 2) / 4 - 0.1, "11 alerts at 4/s with a burst of 2")


if __name__ == "__main__":
    require_tattle_bin()
    unittest.main(verbosity=2)
