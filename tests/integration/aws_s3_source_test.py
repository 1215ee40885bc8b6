"""The s3 source end to end: the real `tattle` binary and its s3 plugin against moto
(tests/support/moto_server.py) with signature checking on.

Gzipped CloudTrail logs are put in a bucket under CloudTrail's AWSLogs/ layout. Every
payload in the shared data that names an S3 object is pointed at those objects and read
through `tattle run` with an `s3` source in notifications mode; a rule that matches every
event shows exactly which objects were fetched. `tattle run s3://bucket/prefix` with
--since/--until reads the right days, and a wrong secret is refused with a clear message
that does not contain it.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
import sys
import textwrap
import unittest
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

import tattle_process  # noqa: E402
from moto_server import MotoServer  # noqa: E402
from tattle_process import SAMPLES_DIR as SAMPLES, SHARED_DATA_DIR as DATA, ScratchDirTestCase  # noqa: E402

PAYLOADS = os.path.join(DATA, "payloads")
BUCKET = "trail"
# Listings use the prefix "AWSLogs", not "AWSLogs/": moto checks the signature of a query
# value with '/' against the query as its web framework re-quotes it ('/' left as it is),
# where S3 and its SDKs send and sign %2F; botocore's own ListObjectsV2 fails there too.
# A prefix that S3 notifications form-encode (' ' as '+'). No '+' or non-ASCII in it: moto
# cannot check signatures of such keys (it refuses botocore's own requests for them).
NOTIFIED_PREFIX = "org trail 1/"
# Folders of the payload collection that are not about S3 (PagerDuty, Slack).
NOT_NOTIFICATIONS = ("pagerduty_events_v2", "slack_incoming_webhook")
WRONG_SECRET = "WrongSecretKeyThatMustNeverBePrinted00000"

moto: MotoServer | None = None


def setUpModule() -> None:
    global moto
    moto = MotoServer().__enter__()


def tearDownModule() -> None:
    if moto is not None:
        moto.__exit__(None, None, None)


def event_ids(gz_bytes: bytes) -> list[str]:
    return [record["eventID"] for record in json.loads(gzip.decompress(gz_bytes))["Records"]]


def cloudtrail_logs() -> list[tuple[str, bytes]]:
    """(file name, gzip bytes) of real CloudTrail log files."""
    logs = []
    for name in sorted(os.listdir(SAMPLES)):
        if name.endswith(".json.gz") and "_CloudTrail_" in name:
            with open(os.path.join(SAMPLES, name), "rb") as f:
                logs.append((name, f.read()))
    trailscraper = os.path.join(DATA, "cloudtrail", "trailscraper_testdata")
    for name in sorted(os.listdir(trailscraper)):
        if name.endswith(".json.gz"):
            with open(os.path.join(trailscraper, name), "rb") as f:
                logs.append((name, f.read()))
    return logs


def layout_key(prefix: str, name: str, day: str | None = None) -> str:
    """CloudTrail's delivery key for a log file name <account>_CloudTrail_<region>_<YYYYMMDD>T…;
    with `day` (YYYYMMDD) the file is filed under that day instead."""
    account, _, region, stamp = name.split("_")[:4]
    day = day or stamp[:8]
    if day != stamp[:8]:
        name = name.replace("_" + stamp[:8] + "T", "_" + day + "T", 1)
    return f"{prefix}AWSLogs/{account}/CloudTrail/{region}/{day[:4]}/{day[4:6]}/{day[6:]}/{name}"


class Uploaded:
    def __init__(self, key: str, body: bytes, version_id: str):
        self.key = key
        self.body = body
        self.version_id = version_id
        self.event_ids = event_ids(body)


class ObjectPointer:
    """Rewrites every S3 object a payload names (at any depth, inside JSON strings too) to
    uploaded objects, each reference to the next one, and remembers which references S3
    reports as newly created (the ones that must be fetched)."""

    def __init__(self, objects: list[Uploaded], start: int = 0):
        self.objects = objects
        self.used = start
        self.created: list[Uploaded] = []
        self.references = 0

    def take(self, created: bool) -> Uploaded:
        target = self.objects[self.used % len(self.objects)]
        self.used += 1
        self.references += 1
        if created:
            self.created.append(target)
        return target

    def rewrite(self, value):
        if isinstance(value, list):
            return [self.rewrite(item) for item in value]
        if isinstance(value, str):
            stripped = value.lstrip()
            if stripped.startswith("{") or stripped.startswith("["):
                try:
                    inner = json.loads(value)
                except ValueError:
                    return value
                before = self.references
                rewritten = self.rewrite(inner)
                return json.dumps(rewritten) if self.references != before else value
            return value
        if not isinstance(value, dict):
            return value
        value = dict(value)
        s3 = value.get("s3")
        if isinstance(s3, dict) and isinstance(s3.get("bucket"), dict) and isinstance(s3.get("object"), dict):
            # S3's own event record: the key is form-encoded.
            created = str(value.get("eventName", "")).startswith("ObjectCreated:")
            target = self.take(created)
            s3 = copy.deepcopy(s3)
            s3["bucket"]["name"] = BUCKET
            s3["bucket"]["arn"] = f"arn:aws:s3:::{BUCKET}"
            s3["object"]["key"] = urllib.parse.quote_plus(target.key, safe="/")
            if isinstance(s3["object"].get("size"), int):
                s3["object"]["size"] = len(target.body)
            if "versionId" in s3["object"]:
                s3["object"]["versionId"] = target.version_id
            value["s3"] = s3
            return value
        detail = value.get("detail")
        if (value.get("source") == "aws.s3" and isinstance(detail, dict)
                and isinstance(detail.get("bucket"), dict) and isinstance(detail.get("object"), dict)):
            # EventBridge: the key as it is.
            target = self.take(value.get("detail-type") == "Object Created")
            detail = copy.deepcopy(detail)
            detail["bucket"]["name"] = BUCKET
            detail["object"]["key"] = target.key
            if isinstance(detail["object"].get("size"), int):
                detail["object"]["size"] = len(target.body)
            if "version-id" in detail["object"]:
                detail["object"]["version-id"] = target.version_id
            value["detail"] = detail
            return value
        if isinstance(value.get("s3Bucket"), str) and isinstance(value.get("s3ObjectKey"), list):
            # CloudTrail's own SNS message: the keys as they are.
            value["s3Bucket"] = BUCKET
            value["s3ObjectKey"] = [self.take(True).key for _ in value["s3ObjectKey"]]
            return value
        return {name: self.rewrite(item) for name, item in value.items()}


def payload_files() -> list[str]:
    found = []
    for root, dirs, files in os.walk(PAYLOADS):
        dirs[:] = sorted(d for d in dirs if d not in NOT_NOTIFICATIONS and d != "source_md")
        for name in sorted(files):
            if name.endswith(".json"):
                found.append(os.path.join(root, name))
    return found


class S3SourceTest(ScratchDirTestCase):
    scratch_prefix = "tattle_s3_source_"

    notified: list[Uploaded] = []
    by_day: dict[str, Uploaded] = {}

    @classmethod
    def setUpClass(cls) -> None:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        cls.notified = []
        for index, (name, body) in enumerate(cloudtrail_logs()):
            key = layout_key(NOTIFIED_PREFIX, name)
            # Half stored as CloudTrail does (Content-Encoding unset), half with Content-Encoding:
            # gzip, which an HTTP layer must not undo on the way.
            extra = {"ContentEncoding": "gzip"} if index % 2 else {}
            answer = s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/json", **extra)
            cls.notified.append(Uploaded(key, body, answer.get("VersionId", "")))
        # One log file per day, 2023-07-08 … 2023-07-11, and a digest, under the plain layout.
        logs = cloudtrail_logs()
        cls.by_day = {}
        for offset, day in enumerate(("20230708", "20230709", "20230710", "20230711")):
            name, body = logs[offset]
            key = layout_key("", name, day)
            answer = s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            cls.by_day[day] = Uploaded(key, body, answer.get("VersionId", ""))
        with open(os.path.join(SAMPLES, "218007301253_CloudTrail-Digest_us-east-1_20230710T1300Z.json"), "rb") as f:
            s3.put_object(Bucket=BUCKET, Body=f.read(),
                          Key="AWSLogs/218007301253/CloudTrail-Digest/us-east-1/2023/07/09/"
                              "218007301253_CloudTrail-Digest_us-east-1_trail_us-east-1_20230709T1300Z.json.gz")
        s3.put_object(Bucket=BUCKET, Key="AWSLogs/readme.txt", Body=b"not a log")

    def setUp(self) -> None:
        super().setUp()
        self.runs = 0

    def tearDown(self) -> None:
        super().tearDown()

    def config(self, source: str = "") -> str:
        """A config whose rule matches every event, written to a fresh directory (fresh
        duplicate-suppression state, so that every run delivers what it reads)."""
        self.runs += 1
        run_dir = os.path.join(self.dir, f"run{self.runs}")
        os.makedirs(run_dir)
        path = os.path.join(run_dir, "tattle.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""\
                state_dir = "state"
                spool_dir = "spool"
                {source}
                [[rule]]
                name = "Every event"
                jq_match = '.eventID'
                destinations = ["alerts"]

                [[destination]]
                id = "alerts"
                type = "file"
                path = "alerts.jsonl"
                """))
        return path

    def notifications_config(self, payload: str) -> str:
        return self.config(textwrap.dedent(f"""\
            [[source]]
            id = "notified"
            type = "s3"
            notifications = [{json.dumps(payload)}]
            """))

    def run_tattle(self, *args: str, secret: str | None = None) -> subprocess.CompletedProcess:
        env = moto.tattle_env(home=self.dir)
        if secret is not None:
            env["AWS_SECRET_ACCESS_KEY"] = secret
        return tattle_process.run_tattle("--log-level", "debug", "run", *args, timeout=300, env=env)

    @staticmethod
    def alerted_ids(config: str) -> Counter:
        path = os.path.join(os.path.dirname(config), "alerts.jsonl")
        if not os.path.exists(path):
            return Counter()
        with open(path, encoding="utf-8") as f:
            return Counter(json.loads(line)["summary"]["event_id"] for line in f)

    def write_payload(self, name: str, document) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(document, f)
        return path

    def test_every_payload_that_names_an_object_fetches_it_and_alerts(self) -> None:
        checked = 0
        fetched_shapes = 0
        for number, source in enumerate(payload_files()):
            relative = os.path.relpath(source, PAYLOADS)
            with open(source, encoding="utf-8") as f:
                original = json.load(f)
            pointer = ObjectPointer(self.notified, start=number)
            rewritten = pointer.rewrite(original)
            if pointer.references == 0:
                continue
            with self.subTest(payload=relative):
                self.assertLessEqual(pointer.references, len(self.notified),
                                     "each reference needs its own object, or duplicates would be suppressed")
                payload = self.write_payload(relative.replace("/", "_"), rewritten)
                config = self.notifications_config(payload)
                result = self.run_tattle("--config", config)
                stderr = result.stderr.decode()
                self.assertEqual(result.returncode, 0, stderr)
                expected = Counter(event_id for target in pointer.created for event_id in target.event_ids)
                self.assertEqual(self.alerted_ids(config), expected, stderr)
                if not pointer.created:
                    self.assertIn("skipped", stderr)
                checked += 1
                fetched_shapes += bool(pointer.created)
        # The collection's S3 shapes: direct, SNS, SQS, SNS->SQS, raw SNS, EventBridge, CloudTrail's SNS
        # message, Lambda payloads, and the ones that announce no new object.
        self.assertGreaterEqual(checked, 25)
        self.assertGreaterEqual(fetched_shapes, 15)

    def test_negative_shapes_fetch_nothing_and_are_not_errors(self) -> None:
        def load(relative: str):
            with open(os.path.join(PAYLOADS, relative), encoding="utf-8") as f:
                return json.load(f)

        # A digest key that is not in the bucket: fetching it would fail the run.
        digest = ObjectPointer([Uploaded(
            "AWSLogs/218007301253/CloudTrail-Digest/us-east-1/2023/07/10/"
            "218007301253_CloudTrail-Digest_us-east-1_trail_us-east-1_20230710T1300Z.json.gz",
            gzip.compress(b'{"Records": []}'), "")]).rewrite(
            load("awsdocs_s3_notification_examples/objectcreated_put_v2.1.json"))
        del digest["Records"][0]["s3"]["object"]["versionId"]
        negatives = {
            "s3_test_event.json": (load("awsdocs_s3_notification_examples/s3_test_event.json"), "test_event"),
            "digest.json": (digest, "cloudtrail_digest"),
            "sns.json": (load("powertools_tests_events/snsEvent.json"), "non_s3_sns_message"),
            "sqs_sns.json": (load("powertools_captured_nested_events/sqs_sns_event.json"), "non_s3_sns_message"),
            "go_sns.json": (load("aws-lambda-go_events_testdata/sns-event.json"), "non_s3_sns_message"),
        }
        for name, (document, reason) in negatives.items():
            with self.subTest(payload=name):
                config = self.notifications_config(self.write_payload(name, document))
                result = self.run_tattle("--config", config)
                stderr = result.stderr.decode()
                self.assertEqual(result.returncode, 0, stderr)
                self.assertIn(reason, stderr)
                self.assertNotIn("failed batches", stderr)
                self.assertEqual(self.alerted_ids(config), Counter())

    def test_unreadable_notification_fails_its_batch_and_the_others_are_read(self) -> None:
        with open(os.path.join(PAYLOADS, "awsdocs_s3_notification_examples/objectcreated_put_v2.1.json"),
                  encoding="utf-8") as f:
            documented = json.load(f)
        good_payload = self.write_payload("good.json", ObjectPointer(self.notified[:1]).rewrite(documented))
        broken = os.path.join(self.dir, "broken.json")
        with open(broken, "w", encoding="utf-8") as f:
            f.write('{"Records": [\n  {"s3": {')
        config = self.config(textwrap.dedent(f"""\
            [[source]]
            id = "notified"
            type = "s3"
            notifications = [{json.dumps(broken)}, {json.dumps(good_payload)}]
            """))
        result = self.run_tattle("--config", config)
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertIn("broken.json: not a readable S3 notification: 2:", stderr)
        self.assertEqual(self.alerted_ids(config), Counter(self.notified[0].event_ids))

    def test_listing_with_since_and_until_reads_those_days(self) -> None:
        cases = {
            ("2023-07-09", "2023-07-10"): ("20230709", "20230710"),
            ("2023-07-10", None): ("20230710", "20230711"),
            (None, "2023-07-08"): ("20230708",),
            (None, None): ("20230708", "20230709", "20230710", "20230711"),
        }
        for (since, until), days in cases.items():
            with self.subTest(since=since, until=until):
                config = self.config()
                bounds = (["--since", since] if since else []) + (["--until", until] if until else [])
                result = self.run_tattle("--config", config, *bounds, f"s3://{BUCKET}/AWSLogs")
                stderr = result.stderr.decode()
                self.assertEqual(result.returncode, 0, stderr)
                expected = Counter(event_id for day in days for event_id in self.by_day[day].event_ids)
                self.assertEqual(self.alerted_ids(config), expected)
                self.assertIn("CloudTrail-Digest", stderr)  # skipped, at debug level
                self.assertNotIn("failed batches", stderr)

    def test_since_without_an_s3_input_is_a_usage_error(self) -> None:
        config = self.config()
        result = self.run_tattle("--config", config, "--since", "2023-07-09", SAMPLES)
        self.assertEqual(result.returncode, 2)
        self.assertIn("--since and --until select days of s3://bucket/prefix inputs", result.stderr.decode())
        result = self.run_tattle("--config", config, "--since", "July", f"s3://{BUCKET}/AWSLogs")
        self.assertEqual(result.returncode, 2)
        self.assertIn("since", result.stderr.decode())

    def test_wrong_secret_is_refused_with_a_clear_message_without_the_secret(self) -> None:
        config = self.config()
        result = self.run_tattle("--config", config, f"s3://{BUCKET}/AWSLogs", secret=WRONG_SECRET)
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertIn(f"s3://{BUCKET}/AWSLogs", stderr)
        self.assertIn("SignatureDoesNotMatch", stderr)
        self.assertNotIn(WRONG_SECRET, stderr + result.stdout.decode())
        self.assertNotIn(moto.secret_access_key, stderr + result.stdout.decode())

        pointer = ObjectPointer(self.notified[:1])
        payload = self.write_payload("one.json", pointer.rewrite({"s3Bucket": "x", "s3ObjectKey": ["y"]}))
        config = self.notifications_config(payload)
        result = self.run_tattle("--config", config, secret=WRONG_SECRET)
        stderr = result.stderr.decode()
        self.assertEqual(result.returncode, 1, stderr)
        self.assertIn(f"s3://{BUCKET}/{self.notified[0].key}", stderr)
        self.assertIn("SignatureDoesNotMatch", stderr)
        self.assertNotIn(WRONG_SECRET, stderr)


if __name__ == "__main__":
    unittest.main()
