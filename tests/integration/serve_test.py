"""`tattle serve` end to end: the real binary and its plugins, moto with signature checking
on (tests/support/moto_server.py) for SQS, and a local webhook receiver
(tests/support/https_server.py) that counts what arrives.

CloudTrail files are the gzipped samples in configs/samples (from invictus-ir/aws_dataset,
MIT). The daemon's HTTP endpoint listens on 127.0.0.1 port 0; the test reads the port from
its log.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from moto_server import OneMotoPerClass  # noqa: E402
from receiver import Receiver  # noqa: E402
from tattle_process import (SAMPLES_DIR as SAMPLES, ScratchDirTestCase, followed_file_source,  # noqa: E402
                            run_tattle, sample_cloudtrail_files, start_tattle)

BUCKET = "trail-logs"
KEY_PREFIX = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/"
HOOK_PATH = "hooks/T0123SECRETPATH"  # part of the webhook URL: a secret, never printed
WRITES = "select(.readOnly == false)"
READS = "select(.readOnly == true)"
TIMEOUT = 60  # seconds: how long a condition that must come true may take


def records(name: str) -> list[dict]:
    with gzip.open(os.path.join(SAMPLES, name), "rt", encoding="utf-8") as f:
        return json.load(f)["Records"]


def event_ids(name: str, read_only: bool) -> list[str]:
    return [r["eventID"] for r in records(name) if r.get("readOnly") is read_only]


def wait_for(condition, what: str, timeout: float = TIMEOUT):
    """Polls condition until it returns something true; fails naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class AlertReceiver(Receiver):
    """The receiver answering every request with status after delay_ms; what it accepted, as alerts."""

    def __init__(self, directory: str, delay_ms: int = 0, status: int = 200):
        super().__init__(directory, script=[{"status": status, "delay_ms": delay_ms}]
                         if delay_ms or status != 200 else None)

    def delivered(self) -> list[dict]:
        """The alerts answered with 200, in arrival order."""
        return [json.loads(r["body"]) for r in self.requests() if r["response"] == 200]

    def delivered_event_ids(self) -> list[str]:
        return [alert["event"]["eventID"] for alert in self.delivered()]

    def request_count(self) -> int:
        return len(self.requests())


class Daemon:
    """`tattle serve` as a subprocess; its log is collected by a thread."""

    def __init__(self, config: str, env: dict, grace_period: float = 10):
        self.grace_period = grace_period
        self.process = start_tattle(
            "--log-level", "debug", "serve", "--config", config, "--listen", "127.0.0.1:0",
            "--grace-period", str(grace_period), "--poll-interval", "0.1",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        match = wait_for(lambda: self.find(r"listening on http://127\.0\.0\.1:(\d+)"), "the daemon to listen")
        self.base = f"http://127.0.0.1:{match.group(1)}"

    def _read(self) -> None:
        for raw in self.process.stdout:
            with self._lock:
                self.lines.append(raw.decode(errors="replace"))

    def output(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def find(self, pattern: str):
        return re.search(pattern, self.output())

    def get(self, path: str, method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def metric(self, sample: str) -> float:
        """The value of one sample line of /metrics, e.g. 'tattle_events_read_total'."""
        status, text = self.get("/metrics")
        assert status == 200, status
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line[len(sample) + 1:])
        raise AssertionError(f"{sample} is not in /metrics:\n{text}")

    def wait_ready(self) -> None:
        wait_for(lambda: self.get("/readyz")[0] == 200, "/readyz to answer 200")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """Sends sig and waits for the exit; returns the exit code and the seconds it took."""
        start = time.monotonic()
        self.process.send_signal(sig)
        code = self.process.wait(timeout=self.grace_period + 30)
        took = time.monotonic() - start
        self._reader.join(timeout=10)
        self.process.stdout.close()
        return code, took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self.process.stdout.closed:
            self._reader.join(timeout=10)
            self.process.stdout.close()


class ServeTestCase(ScratchDirTestCase):
    scratch_prefix = "tattle_serve_"

    def setUp(self) -> None:
        super().setUp()
        self.printed = ""
        self.daemons: list[Daemon] = []
        self.receiver: AlertReceiver | None = None

    def tearDown(self) -> None:
        for daemon in self.daemons:
            daemon.kill()
            self.printed += daemon.output()
        if self.receiver is not None:
            self.receiver.stop()
        self.assertNotIn("T0123SECRETPATH", self.printed, "the webhook URL is a secret")
        super().tearDown()

    def start(self, config: str, env: dict, grace_period: float = 10) -> Daemon:
        daemon = Daemon(config, env, grace_period)
        self.daemons.append(daemon)
        return daemon

    def destination(self, delivery: str = "") -> str:
        return textwrap.dedent(f"""
            [[destination]]
            id = "hook"
            type = "webhook"
            url = "http://127.0.0.1:{self.receiver.port}/{HOOK_PATH}"
            allow_plain_http = true
            timeout_ms = 5000
            delivery = {{ {delivery} }}
            """)

    def env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TATTLE_"))}
        env.update(HOME=self.dir, **extra)
        return env


class FollowBase(ServeTestCase):
    """A file source with follow = true on a directory the test writes to."""

    receiver_status = 200

    def setUp(self) -> None:
        super().setUp()
        self.watched = os.path.join(self.dir, "incoming")
        os.makedirs(self.watched)
        self.receiver = AlertReceiver(self.dir, status=self.receiver_status)
        self.config_path = os.path.join(self.dir, "tattle.toml")
        self.files = sample_cloudtrail_files()

    def write_config(self, rule_name: str, jq: str) -> None:
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write('spool_dir = "spool"\n' + followed_file_source("incoming", "state/incoming.checkpoint") +
                    textwrap.dedent(f"""
                [[rule]]
                name = "{rule_name}"
                jq_match = '{jq}'
                destinations = ["hook"]
                """) + self.destination())

    def drop(self, name: str) -> None:
        """Writes a sample elsewhere and renames it into the watched directory, as a
        collector should. (A file still being written is the unit tests' subject, in
        tests/plugins/sources/file/file_follow_test.cpp, where the scans' timing is the test's.)"""
        staging = os.path.join(self.dir, name + ".part")
        shutil.copy(os.path.join(SAMPLES, name), staging)
        os.rename(staging, os.path.join(self.watched, name))


class FollowTest(FollowBase):
    """New files, restarts, reloads and /metrics."""

    def test_follows_new_files_and_after_a_restart_reads_only_new_ones(self) -> None:
        first, second, third = self.files[1], self.files[3], self.files[4]
        shutil.copy(os.path.join(SAMPLES, first), self.watched)  # there before the start
        self.write_config("Writes", WRITES)
        daemon = self.start(self.config_path, self.env())
        expected = event_ids(first, False)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(expected), "the first file's alerts")
        self.drop(second)
        expected += event_ids(second, False)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(expected), "the second file's alerts")
        wait_for(lambda: daemon.metric('tattle_batches_total{outcome="settled"}') == 2, "both batches settled")
        code, took = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertLess(took, daemon.grace_period)
        self.assertEqual(sorted(self.receiver.delivered_event_ids()), sorted(expected), "each alert once")

        # Written while the daemon was down: after the restart, only this one is read.
        shutil.copy(os.path.join(SAMPLES, third), self.watched)
        expected += event_ids(third, False)
        daemon = self.start(self.config_path, self.env())
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(expected), "the third file's alerts")
        wait_for(lambda: daemon.metric('tattle_batches_total{outcome="settled"}') == 1, "the third batch settled")
        self.assertEqual(daemon.metric("tattle_events_read_total"), len(records(third)), "only the new file is read")
        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertEqual(sorted(self.receiver.delivered_event_ids()), sorted(expected), "each alert once")

    def test_metrics_count_what_was_sent_and_a_broken_reload_keeps_the_old_rules(self) -> None:
        self.write_config("Writes", WRITES)
        daemon = self.start(self.config_path, self.env())
        daemon.wait_ready()
        self.assertEqual(daemon.get("/healthz"), (200, "ok\n"))
        self.assertEqual(daemon.metric('tattle_config_reloads_total{result="failed"}'), 0)

        # A broken config: SIGHUP and POST /-/reload both reject it, naming the problem.
        with open(self.config_path, "a", encoding="utf-8") as f:
            f.write('\n[[rule]]\nname = "Broken"\njq_match = "select(.eventName ==="\ndestinations = ["hook"]\n')
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: daemon.metric('tattle_config_reloads_total{result="failed"}') == 1, "a failed reload")
        status, text = daemon.get("/-/reload", "POST")
        self.assertEqual(status, 500)
        self.assertIn("rejected", text)
        self.assertIn("tattle.toml", text)
        self.assertEqual(daemon.metric('tattle_config_reloads_total{result="failed"}'), 2)
        self.assertEqual(daemon.metric('tattle_config_reloads_total{result="ok"}'), 0)
        self.assertEqual(daemon.get("/-/reload")[0], 405)
        self.assertEqual(daemon.get("/nowhere")[0], 404)
        daemon.wait_ready()

        # The old rules still run; the counters match what this file holds.
        name = self.files[4]
        self.drop(name)
        writes = event_ids(name, False)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(writes), "alerts from the old rule")
        wait_for(lambda: daemon.metric('tattle_batches_total{outcome="settled"}') == 1, "the batch settled")
        self.assertEqual(sorted(self.receiver.delivered_event_ids()), sorted(writes))
        self.assertEqual({a["rule"]["name"] for a in self.receiver.delivered()}, {"Writes"})
        self.assertEqual(daemon.metric("tattle_events_read_total"), len(records(name)))
        self.assertEqual(daemon.metric('tattle_rule_matches_total{rule="Writes"}'), len(writes))
        self.assertEqual(daemon.metric('tattle_alerts_total{destination="hook",outcome="delivered"}'), len(writes))
        self.assertEqual(daemon.metric('tattle_alerts_total{destination="hook",outcome="spooled"}'), 0)
        self.assertEqual(daemon.metric("tattle_delivery_retries_total"), 0)
        self.assertEqual(daemon.metric("tattle_batch_duration_seconds_count"), 1)
        self.assertEqual(daemon.metric('tattle_batch_duration_seconds_bucket{le="+Inf"}'), 1)
        self.assertEqual(daemon.metric("tattle_source_lag_seconds"), 0)
        # The run goes on, and its threads' CPU shows already: decoding this file took some.
        self.assertGreater(daemon.metric('tattle_cpu_seconds_total{threads="batch_workers"}'), 0)
        self.assertGreater(daemon.metric('tattle_cpu_seconds_total{threads="delivery"}'), 0)
        self.assertGreater(daemon.metric('tattle_cpu_seconds_total{threads="pipeline"}'), 0)
        self.assertGreaterEqual(daemon.metric("process_cpu_seconds_total"),
                                sum(daemon.metric(f'tattle_cpu_seconds_total{{threads="{threads}"}}')
                                    for threads in ("batch_workers", "delivery", "pipeline")))

        # A good config takes over: the next file goes through the new rule only.
        self.write_config("Reads", READS)
        status, text = daemon.get("/-/reload", "POST")
        self.assertEqual(status, 200, text)
        self.assertEqual(daemon.metric('tattle_config_reloads_total{result="ok"}'), 1)
        wait_for(lambda: daemon.find(r"run ended"), "the old run to finish")
        self.assertIsNotNone(daemon.find(r"run ended: .*; CPU seconds: batch workers \d+\.\d{3} \(\d+ threads?\)"))
        daemon.wait_ready()
        other = self.files[3]
        self.drop(other)
        reads = event_ids(other, True)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(writes) + len(reads), "the new rule's alerts")
        self.assertEqual(sorted(self.receiver.delivered_event_ids()), sorted(writes + reads))
        self.assertEqual(daemon.metric('tattle_rule_matches_total{rule="Reads"}'), len(reads))
        code, took = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertLess(took, daemon.grace_period)
        self.assertIn("rejected", daemon.output())


class BrokenBundleTest(FollowBase):
    """One team's broken bundle: serve runs the others and tells the root destinations."""

    def write_bundles(self, broken: bool, on_bundle_error: str = "") -> None:
        os.makedirs(os.path.join(self.dir, "teams"), exist_ok=True)
        with open(os.path.join(self.dir, "teams", "good.toml"), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent("""
                team = "good"
                [[rule]]
                id = "writes"
                name = "Writes"
                jq_match = '%s'
                destinations = ["hook"]
                """ % WRITES))
        with open(os.path.join(self.dir, "teams", "bad.toml"), "w", encoding="utf-8") as f:
            f.write('team = "bad"\n[[rule]]\nid = "x"\nname = "x"\njq_match = "true"\n' +
                    ('destinations = ["nowhere"]\n' if broken else 'destinations = ["hook"]\nenabled = false\n'))
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""
                spool_dir = "spool"
                bundles = ["teams/*.toml"]
                {on_bundle_error}
                """) + followed_file_source("incoming", "state/incoming.checkpoint") +
                    self.destination() + '\nshare_with = ["*"]\n')

    def test_a_broken_bundle_is_skipped_with_an_alert_and_the_others_run(self) -> None:
        self.write_bundles(broken=True)
        daemon = self.start(self.config_path, self.env())
        announced = wait_for(lambda: [a for a in self.receiver.delivered()
                                      if a["rule"].get("id") == "tattle/bundle-skipped"],
                             "the alert about the skipped bundle")
        self.assertEqual(len(announced), 1)
        problem = announced[0]["annotation"]
        self.assertIn("bad.toml:", problem)
        self.assertIn("nowhere", problem)
        self.assertEqual(announced[0]["rule"]["severity"], "high")
        self.assertIsNotNone(daemon.find(r"bundle skipped, its rules are not running: .*bad\.toml"))
        # The good team's rule runs.
        name = self.files[1]
        self.drop(name)
        expected = event_ids(name, False)
        wait_for(lambda: len([a for a in self.receiver.delivered() if a["rule"]["name"] == "Writes"])
                 >= len(expected), "the good bundle's alerts")
        got = [a["event"]["eventID"] for a in self.receiver.delivered() if a["rule"]["name"] == "Writes"]
        self.assertEqual(sorted(got), sorted(expected))
        # Fixed and reloaded: no new announcement.
        self.write_bundles(broken=False)
        status, _ = daemon.get("/-/reload", method="POST")
        self.assertEqual(status, 200)
        wait_for(lambda: daemon.find(r"the new config is good"), "the reload")
        code, _ = daemon.stop()
        self.assertEqual(code, 0)
        self.assertEqual(len([a for a in self.receiver.delivered()
                              if a["rule"].get("id") == "tattle/bundle-skipped"]), 1)

    def test_on_bundle_error_fail_keeps_the_daemon_from_starting(self) -> None:
        self.write_bundles(broken=True, on_bundle_error='on_bundle_error = "fail"')
        result = run_tattle("serve", "--config", self.config_path, "--listen", "127.0.0.1:0", timeout=60,
                            env=self.env())
        self.assertEqual(result.returncode, 2)
        self.assertIn("bad.toml", result.stderr.decode() + result.stdout.decode())
        self.assertEqual(self.receiver.request_count(), 0)


class GracePeriodTest(FollowBase):
    """SIGTERM while the destination keeps failing: the alerts are spooled in time."""

    receiver_status = 503

    def test_failing_destination_alerts_are_spooled_and_the_daemon_exits_within_the_grace_period(self) -> None:
        self.write_config("Writes", WRITES)
        daemon = self.start(self.config_path, self.env(), grace_period=4)
        name = self.files[3]
        self.drop(name)
        wait_for(lambda: self.receiver.request_count() >= 2, "the destination to be tried")
        code, took = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertLess(took, daemon.grace_period)
        self.assertEqual(self.receiver.delivered(), [])
        listing = run_tattle("spool", "list", "--json", "--config", self.config_path, timeout=60, env=self.env())
        self.printed += listing.stdout.decode() + listing.stderr.decode()
        spooled = json.loads(listing.stdout)
        self.assertEqual(len(spooled), len(event_ids(name, False)), listing.stdout.decode())
        # Settled by the spool: the file is done and a restart does not read it again.
        with open(os.path.join(self.dir, "state", "incoming.checkpoint"), encoding="utf-8") as f:
            self.assertEqual([json.loads(line) for line in f], [os.path.join(self.watched, name)])


class SqsTest(OneMotoPerClass, ServeTestCase):
    """SIGTERM in the middle of a queue: nothing lost, nothing twice."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.sqs = cls.moto.client("sqs")
        cls.files = sample_cloudtrail_files()
        cls.moto.bucket_with_files(BUCKET, KEY_PREFIX, [os.path.join(SAMPLES, name) for name in cls.files])

    def tearDown(self) -> None:
        super().tearDown()
        self.assertNotIn(self.moto.secret_access_key, self.printed, "the AWS secret key is a secret")

    def notification(self, key: str) -> str:
        return json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                   "object": {"key": key, "size": 1}}}]})

    def test_sigterm_mid_queue_loses_nothing_and_duplicates_nothing(self) -> None:
        queue_url = self.sqs.create_queue(QueueName="serve-sigterm")["QueueUrl"]
        expected: list[str] = []
        for name in self.files:
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=self.notification(KEY_PREFIX + name))
            expected += event_ids(name, False)
        # A slow receiver and a short delivery queue: the daemon reads at the receiver's pace,
        # so SIGTERM comes while most messages are not read yet.
        self.receiver = AlertReceiver(self.dir, delay_ms=20)
        config = os.path.join(self.dir, "tattle.toml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""
                spool_dir = "spool"

                [[source]]
                id = "queue"
                type = "sqs"
                queue_url = "{queue_url}"
                wait_time_seconds = 1
                max_messages = 1
                visibility_timeout = 3

                [[rule]]
                name = "Writes"
                jq_match = '{WRITES}'
                destinations = ["hook"]
                """) + self.destination("queue_size = 2, concurrency = 1"))
        env = self.moto.tattle_env(home=self.dir)
        daemon = self.start(config, env, grace_period=15)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= 5, "the first alerts")
        code, took = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertLess(took, daemon.grace_period)
        first_run = self.receiver.delivered_event_ids()
        self.assertEqual(len(first_run), len(set(first_run)), "nothing twice")
        self.assertLess(len(first_run), len(expected), "SIGTERM came before the end of the queue")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "spool")) and os.listdir(os.path.join(self.dir, "spool")),
                         "in-flight alerts were delivered within the grace period, not spooled")

        # What was not settled is still in the queue (or reappears): a second daemon
        # delivers exactly the remainder and empties the queue.
        daemon = self.start(config, env, grace_period=15)
        wait_for(lambda: len(self.receiver.delivered_event_ids()) >= len(expected), "the remaining alerts")
        wait_for(lambda: self.moto.queue_depth(queue_url) == (0, 0), "an empty queue")
        code, _ = daemon.stop()
        self.assertEqual(code, 0, daemon.output())
        self.assertEqual(sorted(self.receiver.delivered_event_ids()), sorted(expected), "every alert exactly once")
        self.assertEqual(self.moto.queue_depth(queue_url), (0, 0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
