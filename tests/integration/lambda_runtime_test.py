"""tattle as a Lambda custom runtime: the real binary, started as `bootstrap`, served by a
local Runtime API (tests/support/lambda_runtime_api.py) with the CloudTrail objects in moto
(signature checking on) and alerts written by the `file` sink or sent to a local webhook
receiver.

Shows: S3 events produce alerts; an SQS event whose second message names a missing object
answers with exactly that message in batchItemFailures; EventBridge "AWS API Call via
CloudTrail" and CloudWatch Logs subscription payloads alert without any S3 read; a broken
config becomes an init error; an invocation whose deadline is too short for a failing
destination is answered before the deadline with its message failed, not killed mid-send.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from lambda_runtime_api import RuntimeApi  # noqa: E402
from moto_server import OneMotoPerClass  # noqa: E402
from receiver import SERVER, free_port  # noqa: E402
from tattle_process import SAMPLES_DIR as SAMPLES, TATTLE_BIN, ScratchDirTestCase  # noqa: E402

BUCKET = "trail-logs"
PREFIX = "AWSLogs/218007301253/CloudTrail/us-east-1/2023/07/10/"
# Writes other than the two noisy services: a rule whose matches are computed from the data.
WRITES_RULE = ('select(.readOnly == false and .eventSource != "ssm.amazonaws.com" '
               'and .eventSource != "secretsmanager.amazonaws.com")')


def sample_files():
    return sorted(name for name in os.listdir(SAMPLES) if name.endswith(".json.gz"))


def records_of(name):
    with gzip.open(os.path.join(SAMPLES, name), "rt", encoding="utf-8") as f:
        return json.load(f)["Records"]


def expected_ids(names):
    ids = set()
    for name in names:
        for record in records_of(name):
            if record.get("readOnly") is False and record.get("eventSource") not in (
                    "ssm.amazonaws.com", "secretsmanager.amazonaws.com"):
                ids.add(record["eventID"])
    return ids


def s3_event(keys):
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2023-07-10T12:10:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::" + BUCKET},
               "object": {"key": key, "size": 1}}} for key in keys]}


def sqs_event(message_bodies):
    return {"Records": [{
        "messageId": message_id, "receiptHandle": "handle-" + message_id, "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:trail",
        "awsRegion": "us-east-1"} for message_id, body in message_bodies]}


class LambdaRuntimeTest(OneMotoPerClass, ScratchDirTestCase):
    scratch_prefix = "tattle-lambda-"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.moto.bucket_with_files(BUCKET, PREFIX, [os.path.join(SAMPLES, name) for name in sample_files()])

    def setUp(self):
        super().setUp()
        # The function's code directory, as `scripts/package-lambda` lays it out: bootstrap + config.
        self.task_root = os.path.join(self.dir, "task")
        os.makedirs(self.task_root)
        self.bootstrap = os.path.join(self.task_root, "bootstrap")
        os.symlink(TATTLE_BIN, self.bootstrap)
        self.alerts = os.path.join(self.dir, "alerts.jsonl")
        self.processes = []

    def tearDown(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    pipe.close()
        super().tearDown()

    def write_config(self, destination):
        with open(os.path.join(self.task_root, "tattle.toml"), "w") as f:
            f.write(destination + textwrap.dedent(f"""
                [[rule]]
                name = "Writes"
                jq_match = '{WRITES_RULE}'
                description = "a write call"
                destinations = ["out"]
                """))

    def file_destination(self):
        return f'[[destination]]\nid = "out"\ntype = "file"\npath = "{self.alerts}"\n'

    def start(self, api, **env):
        environment = self.moto.tattle_env(home=self.dir, AWS_LAMBDA_RUNTIME_API=api.address,
                                           LAMBDA_TASK_ROOT=self.task_root, AWS_LAMBDA_FUNCTION_NAME="tattle",
                                           TATTLE_STATE_DIR=os.path.join(self.dir, "state"),
                                           TATTLE_SPOOL_DIR="", **env)
        environment.pop("TATTLE_CONFIG", None)
        # As Lambda starts it: the bootstrap, no arguments, from the task root.
        with open(os.path.join(self.dir, "tattle.log"), "ab") as log:
            process = subprocess.Popen([self.bootstrap], cwd=self.task_root, env=environment,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def log(self):
        with open(os.path.join(self.dir, "tattle.log"), encoding="utf-8", errors="replace") as f:
            return f.read()

    def alert_event_ids(self):
        if not os.path.exists(self.alerts):
            return []
        with open(self.alerts, encoding="utf-8") as f:
            return [json.loads(line)["event"]["eventID"] for line in f if line.strip()]

    def test_s3_event_invocations_alert_once_per_event(self):
        self.write_config(self.file_destination())
        names = sample_files()
        with RuntimeApi() as api:
            self.start(api)
            first = api.invoke(s3_event([PREFIX + names[0], PREFIX + names[1]]))
            answer = api.result(first)
            self.assertEqual(answer["kind"], "response", self.log())
            self.assertEqual(answer["body"]["event_kind"], "s3")
            self.assertEqual(answer["body"]["items"], 2)
            second = api.invoke(s3_event([PREFIX + name for name in names[2:]]))
            self.assertEqual(api.result(second)["kind"], "response", self.log())
        ids = self.alert_event_ids()
        self.assertEqual(len(ids), len(set(ids)), "an event alerted twice")
        self.assertEqual(set(ids), expected_ids(names))
        # The trace id of each invocation shows in the logs; the EMF metrics line too.
        self.assertIn("Root=1-", self.log())
        self.assertIn('"CloudWatchMetrics"', self.log())
        emf = [json.loads(line) for line in self.log().splitlines() if line.startswith('{"_aws"')]
        self.assertEqual(len(emf), 2, self.log())
        for line in emf:
            declared = {metric["Name"]: metric["Unit"] for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
            for name in ("BatchWorkersCpuTime", "DeliveryCpuTime", "MainThreadCpuTime"):
                self.assertEqual(declared.get(name), "Milliseconds", name)
                self.assertGreater(line[name], 0, name)
        # What the invocation's threads cost, batch workers first (a function's CPU follows its memory).
        self.assertRegex(self.log(), r"invocation \S+ done in \d+ ms: .*; CPU seconds: batch workers \d+\.\d{3} "
                                     r"\(\d+ threads?\), delivery \d+\.\d{3}")

    def test_sqs_event_reports_only_the_message_with_a_missing_object(self):
        self.write_config(self.file_destination())
        names = sample_files()
        good = ("m-good", s3_event([PREFIX + names[0]]))
        missing = ("m-missing", s3_event([PREFIX + "218007301253_CloudTrail_us-east-1_20230710T1300Z_gone.json.gz"]))
        test_event = ("m-test", {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})
        with RuntimeApi() as api:
            self.start(api)
            request = api.invoke(sqs_event([good, missing, test_event]))
            answer = api.result(request)
        self.assertEqual(answer["kind"], "response", self.log())
        self.assertEqual(answer["body"], {"batchItemFailures": [{"itemIdentifier": "m-missing"}]})
        self.assertEqual(set(self.alert_event_ids()), expected_ids([names[0]]))
        self.assertIn("NoSuchKey", self.log())

    def test_eventbridge_and_cloudwatch_logs_payloads_alert_without_s3(self):
        self.write_config(self.file_destination())
        records = records_of(sample_files()[0])
        writes = [r for r in records if r["eventID"] in expected_ids([sample_files()[0]])]
        self.assertGreaterEqual(len(writes), 2)
        eventbridge = {"version": "0", "id": "eb-1", "detail-type": "AWS API Call via CloudTrail",
                       "source": "aws." + writes[0]["eventSource"].split(".")[0], "account": "218007301253",
                       "time": writes[0]["eventTime"], "region": "us-east-1", "resources": [],
                       "detail": writes[0]}
        logs = {"messageType": "DATA_MESSAGE", "owner": "218007301253", "logGroup": "trail",
                "logStream": "218007301253_CloudTrail_us-east-1", "subscriptionFilters": ["all"],
                "logEvents": [{"id": str(i), "timestamp": 0, "message": json.dumps(r)} for i, r in enumerate(records)]}
        cloudwatch = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(logs).encode())).decode()}}
        with RuntimeApi() as api:
            self.start(api)
            first = api.result(api.invoke(eventbridge))
            second = api.result(api.invoke(cloudwatch))
        self.assertEqual(first["kind"], "response", self.log())
        self.assertEqual(first["body"]["event_kind"], "eventbridge")
        self.assertEqual(second["kind"], "response", self.log())
        self.assertEqual(second["body"]["event_kind"], "cloudwatch-logs")
        self.assertEqual(second["body"]["events"], len(records))
        ids = self.alert_event_ids()
        # In both payloads, alerted once: the state in TATTLE_STATE_DIR remembers it across invocations.
        self.assertEqual(ids.count(writes[0]["eventID"]), 1)
        self.assertEqual(set(ids), {w["eventID"] for w in writes})

    def test_config_from_s3_is_reloaded_when_its_etag_changes_and_kept_when_broken(self):
        s3 = self.moto.client("s3")
        s3.create_bucket(Bucket="tattle-config")
        names = sample_files()

        def config(rule_name, event_filter):
            return (self.file_destination() + textwrap.dedent(f"""
                [[rule]]
                name = "{rule_name}"
                jq_match = '{event_filter}'
                destinations = ["out"]
                """)).encode()

        s3.put_object(Bucket="tattle-config", Key="prod/tattletail.toml", Body=config("Writes", WRITES_RULE))
        with RuntimeApi() as api:
            self.start(api, S3_CONFIG_BUCKET="tattle-config", S3_CONFIG_PATH="prod/tattletail.toml")
            self.assertEqual(api.result(api.invoke(s3_event([PREFIX + names[0]])))["kind"], "response", self.log())
            s3.put_object(Bucket="tattle-config", Key="prod/tattletail.toml",
                          Body=config("Everything", "select(.eventID != null)"))
            self.assertEqual(api.result(api.invoke(s3_event([PREFIX + names[1]])))["kind"], "response", self.log())
            s3.put_object(Bucket="tattle-config", Key="prod/tattletail.toml", Body=b"[[rule]\nbroken")
            self.assertEqual(api.result(api.invoke(s3_event([PREFIX + names[2]])))["kind"], "response", self.log())
        with open(self.alerts, encoding="utf-8") as f:
            alerts = [json.loads(line) for line in f if line.strip()]
        by_rule = {}
        for alert in alerts:
            by_rule.setdefault(alert["rule"]["name"], set()).add(alert["event"]["eventID"])
        self.assertEqual(by_rule["Writes"], expected_ids([names[0]]))
        everything_1_and_2 = {r["eventID"] for name in names[1:3] for r in records_of(name)}
        self.assertEqual(by_rule["Everything"], everything_1_and_2)  # the broken third config was not used
        self.assertIn("reloaded", self.log())
        self.assertIn("is broken; the loaded one stays", self.log())

    def test_broken_config_is_an_init_error(self):
        with open(os.path.join(self.task_root, "tattle.toml"), "w") as f:
            f.write('[[destination]]\nid = "out"\ntype = "no-such-sink"\n')
        with RuntimeApi() as api:
            process = self.start(api)
            self.assertEqual(process.wait(timeout=60), 2)
            error = api.init_errors.get(timeout=5)
        self.assertEqual(error["error_type"], "tattle.ConfigError")
        self.assertIn("tattle.toml:1:1: destination \"out\"", error["body"]["errorMessage"])
        self.assertIn("no-such-sink", error["body"]["errorMessage"])

    def test_short_deadline_answers_in_time_with_the_message_failed(self):
        port = free_port()
        receiver_log = os.path.join(self.dir, "receiver.jsonl")
        script = os.path.join(self.dir, "script.json")
        with open(script, "w") as f:
            json.dump([{"status": 503, "body": "down"}], f)
        receiver = subprocess.Popen([sys.executable, SERVER, "--port", str(port), "--log", receiver_log,
                                     "--script", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)
        self.processes.append(receiver)
        self.assertEqual(int(receiver.stdout.readline()), port)  # listening
        self.write_config(textwrap.dedent(f"""
            [[destination]]
            id = "out"
            type = "webhook"
            url = "http://127.0.0.1:{port}/hook"
            allow_plain_http = true
            delivery = {{ initial_backoff_ms = 100, max_backoff_ms = 200, max_attempts = 1000, max_retry_seconds = 600 }}
            """))
        with RuntimeApi() as api:
            self.start(api)
            request = api.invoke(sqs_event([("m-1", s3_event([PREFIX + sample_files()[0]]))]), timeout_ms=6000)
            answer = api.result(request, timeout=30)
            event_deadline = api.handed_out[request]["deadline_ms"] / 1000
        self.assertEqual(answer["kind"], "response", self.log())
        self.assertEqual(answer["body"], {"batchItemFailures": [{"itemIdentifier": "m-1"}]})
        self.assertLess(answer["at"], event_deadline, "answered after the deadline")
        self.assertGreater(answer["at"], event_deadline - 3, "gave up far earlier than needed")
        self.assertIn("deadline", self.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
