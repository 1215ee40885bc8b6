"""The sqs source end to end: the real `tattle` binary and its plugins, moto with signature
checking on (tests/support/moto_server.py) and a local webhook receiver
(tests/support/https_server.py).

Gzipped CloudTrail files (configs/samples, from invictus-ir/aws_dataset, MIT) are put in a
bucket; S3 notifications about them go into a queue in two shapes taken from
../shared/data/payloads: a direct S3 event notification (awsdocs objectcreated_put_v2.1.json)
and S3 -> SNS -> SQS, where the body is an SNS envelope whose Message is the S3 event encoded
again (powertools sqs_sns_s3_event.json), plus an s3:TestEvent. `tattle run` with
stop_when_empty delivers the alerts and empties the queue; when the alerts can be neither
delivered nor spooled, the messages stay and come back after their visibility timeout.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from moto_server import OneMotoPerClass  # noqa: E402
from receiver import Receiver, free_port  # noqa: E402
from tattle_process import (SAMPLES_DIR as SAMPLES, SHARED_DATA_DIR, ScratchDirTestCase, output_of,  # noqa: E402
                            run_tattle, sample_cloudtrail_files)

PAYLOADS = os.path.join(SHARED_DATA_DIR, "payloads")
BUCKET = "trail-logs"
KEY_PREFIX = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/"
HOOK_PATH = "hooks/T0123SECRETPATH"  # part of the webhook URL: a secret, never printed
RULE = 'select(.readOnly == false)'
VISIBILITY = 3


def write_event_ids(name: str) -> set[str]:
    with gzip.open(os.path.join(SAMPLES, name), "rt", encoding="utf-8") as f:
        return {r["eventID"] for r in json.load(f)["Records"] if r.get("readOnly") is False}


def load(path: str) -> dict:
    with open(os.path.join(PAYLOADS, path), encoding="utf-8") as f:
        return json.load(f)


def with_object(s3_event: dict, key: str) -> dict:
    """The notification, naming our bucket and key (form-encoded, as S3 writes keys)."""
    event = copy.deepcopy(s3_event)
    record = event["Records"][0]
    record["s3"]["bucket"]["name"] = BUCKET
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
    record["s3"]["object"]["key"] = urllib.parse.quote_plus(key, safe="/")
    record["s3"]["object"].pop("versionId", None)
    return event


def direct_body(key: str) -> str:
    return json.dumps(with_object(load("awsdocs_s3_notification_examples/objectcreated_put_v2.1.json"), key))


def sns_double_encoded_body(key: str) -> str:
    captured = load("powertools_captured_nested_events/sqs_sns_s3_event.json")
    envelope = json.loads(captured["Records"][0]["body"])
    envelope["Message"] = json.dumps(with_object(json.loads(envelope["Message"]), key))
    return json.dumps(envelope)


def delivered_event_ids(receiver: Receiver) -> list[str]:
    return [json.loads(r["body"])["event"]["eventID"] for r in receiver.requests() if r["response"] == 200]


class SqsSourceTest(OneMotoPerClass, ScratchDirTestCase):
    scratch_prefix = "tattle_sqs_"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.sqs = cls.moto.client("sqs")
        cls.files = sample_cloudtrail_files()
        cls.moto.bucket_with_files(BUCKET, KEY_PREFIX, [os.path.join(SAMPLES, name) for name in cls.files])

    def setUp(self) -> None:
        super().setUp()
        self.printed = ""
        self.queue_url = self.sqs.create_queue(QueueName=self.id().rsplit(".", 1)[-1])["QueueUrl"]
        # Half the files through each shape, and a TestEvent (deleted, nothing fetched).
        self.expected: set[str] = set()
        self.object_messages = 0
        for index, name in enumerate(self.files):
            body = direct_body(KEY_PREFIX + name) if index % 2 == 0 else sns_double_encoded_body(KEY_PREFIX + name)
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
            self.expected |= write_event_ids(name)
            self.object_messages += 1
        with open(os.path.join(PAYLOADS, "awsdocs_s3_notification_examples", "s3_test_event.json"), encoding="utf-8") as f:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=f.read())

    def tearDown(self) -> None:
        self.assertNotIn("T0123SECRETPATH", self.printed, "the webhook URL is a secret")
        self.assertNotIn(self.moto.secret_access_key, self.printed, "the AWS secret key is a secret")
        super().tearDown()

    def config(self, port: int, delivery: str = "", spool_dir: str = "spool") -> str:
        return self.write("tattle.toml", f"""
                spool_dir = "{spool_dir}"

                [[source]]
                id = "queue"
                type = "sqs"
                queue_url = "{self.queue_url}"
                wait_time_seconds = 1
                visibility_timeout = {VISIBILITY}
                stop_when_empty = true

                [[rule]]
                name = "Writes"
                jq_match = '{RULE}'
                destinations = ["hook"]

                [[destination]]
                id = "hook"
                type = "webhook"
                url = "http://127.0.0.1:{port}/{HOOK_PATH}"
                allow_plain_http = true
                timeout_ms = 5000
                delivery = {{ {delivery} }}
                """)

    def tattle(self, config: str, **env: str) -> subprocess.CompletedProcess:
        result = run_tattle("run", "--config", config, timeout=300, env=self.moto.tattle_env(home=self.dir, **env))
        self.printed += output_of(result)
        return result

    def messages_in_queue(self) -> tuple[int, int]:
        return self.moto.queue_depth(self.queue_url)

    def test_alerts_reach_the_receiver_and_the_queue_is_emptied(self) -> None:
        self.assertGreater(len(self.expected), 0)
        receiver = Receiver(self.dir)
        try:
            result = self.tattle(self.config(receiver.port))
        finally:
            receiver.stop()
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual(sorted(delivered_event_ids(receiver)), sorted(self.expected), "every alert once")
        self.assertEqual(self.messages_in_queue(), (0, 0))
        self.assertIn("nothing to read (test_event", result.stderr.decode())

    def test_alerts_that_can_be_neither_delivered_nor_spooled_leave_the_messages(self) -> None:
        blocker = os.path.join(self.dir, "not-a-directory")
        with open(blocker, "w", encoding="utf-8") as f:
            f.write("the spool cannot be created under a file")
        config = self.config(free_port(), "max_attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20",
                             spool_dir=os.path.join(blocker, "spool"))
        result = self.tattle(config)
        self.assertEqual(result.returncode, 3, result.stderr.decode())
        self.assertIn("is left in the queue", result.stderr.decode())
        # The TestEvent is gone; every message that named an object is still there.
        self.assertEqual(sum(self.messages_in_queue()), self.object_messages)

        # Not extended any more: each comes back after its visibility timeout, received twice.
        seen: dict[str, int] = {}
        deadline = time.monotonic() + VISIBILITY + 30
        while len(seen) < self.object_messages and time.monotonic() < deadline:
            answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                              MessageSystemAttributeNames=["ApproximateReceiveCount"])
            for message in answer.get("Messages", []):
                seen[message["MessageId"]] = int(message["Attributes"]["ApproximateReceiveCount"])
        self.assertEqual(len(seen), self.object_messages)
        self.assertTrue(all(count >= 2 for count in seen.values()), seen)

    def test_spooled_alerts_are_settled_so_the_messages_are_deleted(self) -> None:
        config = self.config(free_port(), "max_attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20")
        result = self.tattle(config)
        self.assertEqual(result.returncode, 3, result.stderr.decode())
        self.assertIn(f"0 alerts delivered, {len(self.expected)} spooled", result.stderr.decode())
        self.assertEqual(self.messages_in_queue(), (0, 0), "the spool owns the alerts now")

    def test_a_wrong_secret_is_a_clear_error_naming_the_queue(self) -> None:
        result = self.tattle(self.config(free_port()), AWS_SECRET_ACCESS_KEY="wrong-secret-EXAMPLE-KEY")
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertIn(self.queue_url, stderr)
        self.assertIn("SignatureDoesNotMatch", stderr)
        self.assertNotIn("wrong-secret-EXAMPLE-KEY", stderr)
        self.assertEqual(sum(self.messages_in_queue()), self.object_messages + 1, "nothing received, nothing deleted")


if __name__ == "__main__":
    unittest.main()
