"""The sns and ses sinks end to end: the real `tattle` binary over configs/samples, publishing
to SNS and sending through SES on a local moto server with signature checking on
(tests/support/moto_server.py). Checks what moto stored against what the sample data says
should alert, and what tattle does with refusals (unknown topic, wrong secret).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

import tattle_process  # noqa: E402
from moto_server import MotoServer  # noqa: E402
from tattle_process import SAMPLES_DIR as SAMPLES, SHARED_DATA_DIR as DATA, TATTLE_BIN  # noqa: E402

SENDER = "cloudtrail_alerts@example.com"
RECIPIENTS = ["foo@example.com", "bar@example.com"]


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def sample_records() -> list[dict]:
    records = []
    for name in sorted(os.listdir(SAMPLES)):
        if name.endswith(".json.gz"):
            with gzip.open(os.path.join(SAMPLES, name), "rt", encoding="utf-8") as f:
                records.extend(json.load(f)["Records"])
    return records


def expected_alerts() -> dict[tuple[str, str], dict]:
    """(rule, eventID) → record, for the two rules of the config below."""
    expected = {}
    for record in sample_records():
        if record.get("eventName") == "CreateUser":
            expected[("Create User", record["eventID"])] = record
        if record.get("eventSource") == "iam.amazonaws.com" and record.get("readOnly") is False:
            expected[("IAM write", record["eventID"])] = record
    return expected


def config_text(topic_arn: str, subject: str = "{{rule}}: {{event_name}}") -> str:
    return textwrap.dedent(f"""\
        [[rule]]
        name = "Create User"
        jq_match = 'select(.eventName == "CreateUser") | "username: \\(.requestParameters.userName)"'
        description = "A new IAM user has been created"
        destinations = ["Default SNS", "Email"]

        [[rule]]
        name = "IAM write"
        jq_match = 'select(.eventSource == "iam.amazonaws.com" and .readOnly == false)'
        description = "IAM changed"
        destinations = ["Default SNS", "Email"]

        [[destination]]
        id = "Default SNS"
        type = "sns"
        sns_arn = "{topic_arn}"
        subject = "{subject}"

        [[destination]]
        id = "Email"
        type = "ses"
        to_emails = {json.dumps(RECIPIENTS)}
        from_email = "{SENDER}"
        """)


class AwsSinksTest(unittest.TestCase):
    def setUp(self) -> None:
        self.assertTrue(TATTLE_BIN, "TATTLE_BIN is not set")
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.moto = MotoServer().__enter__()
        self.sns = self.moto.client("sns")
        self.sqs = self.moto.client("sqs")
        self.ses = self.moto.client("ses")
        self.topic = self.sns.create_topic(Name="cloudtrail_alert")["TopicArn"]
        # A queue subscribed to the topic: what an existing subscriber of tattletail's topic receives.
        self.queue = self.sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)
        self.ses.verify_email_identity(EmailAddress=SENDER)

    def tearDown(self) -> None:
        self.moto.__exit__(None, None, None)
        self.tmp.cleanup()

    def run_tattle(self, config: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
        path = os.path.join(self.dir, "tattletail.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(config)
        env = self.moto.tattle_env(home=self.dir, TATTLE_SPOOL_DIR=os.path.join(self.dir, "spool"))
        env.update(env_extra or {})
        return tattle_process.run_tattle("run", "--config", path, SAMPLES, env=env, text=True, timeout=300)

    def received_from_queue(self) -> list[dict]:
        messages = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def test_alerts_reach_sns_subscribers_and_ses(self) -> None:
        expected = expected_alerts()
        self.assertGreater(len(expected), 4)
        result = self.run_tattle(config_text(self.topic))
        self.assertEqual(result.returncode, 0, result.stderr)

        # SNS: every alert once, in tattletail's shape, with the filter-policy attributes.
        notifications = self.received_from_queue()
        got = {}
        for notification in notifications:
            message = json.loads(notification["Message"])
            self.assertEqual(set(message) - {"alert_id"}, {"name", "description", "record", "match"})
            key = (message["name"], message["record"]["eventID"])
            self.assertNotIn(key, got, "published twice")
            got[key] = (message, notification)
        self.assertEqual(set(got), set(expected))
        for (rule, _), (message, notification) in got.items():
            record = expected[(rule, message["record"]["eventID"])]
            self.assertEqual(message["record"], record)
            attributes = {name: value["Value"] for name, value in notification["MessageAttributes"].items()}
            self.assertEqual(attributes["rule"], rule)
            self.assertEqual(attributes["event_name"], record["eventName"])
            self.assertEqual(attributes["account"], record["recipientAccountId"])
            self.assertEqual(notification["Subject"], f"{rule}: {record['eventName']}")
            if rule == "Create User":
                self.assertEqual(message["description"], "A new IAM user has been created")
                self.assertEqual(message["match"], f"username: {record['requestParameters']['userName']}")
            else:
                self.assertIs(message["match"], True)

        # SES: one email per alert, to every recipient, naming the rule and the event.
        emails = self.moto.api("/moto-api/data.json")["ses"]["Message"]
        self.assertEqual(len(emails), len(expected))
        by_event = {}
        for email in emails:
            self.assertEqual(email["source"], SENDER)
            self.assertEqual(email["destinations"]["ToAddresses"], RECIPIENTS)
            rule = email["subject"].split(" by ")[0]
            event_ids = [event_id for (r, event_id) in expected if r == rule and event_id in email["body"]]
            self.assertEqual(len(event_ids), 1, email["subject"])
            record = expected[(rule, event_ids[0])]
            self.assertIn(f"<h2 style=\"margin: 0 0 8px 0;\">&#x1F6A8; {rule}</h2>", email["body"])
            self.assertIn(record["eventName"], email["body"])
            self.assertIn(record["eventTime"], email["body"])
            self.assertIn(f"account {record['recipientAccountId']}", email["body"])
            by_event[(rule, event_ids[0])] = email
        self.assertEqual(set(by_event), set(expected))

    def test_unknown_topic_goes_to_the_spool_and_email_still_goes_out(self) -> None:
        missing = self.topic.replace("cloudtrail_alert", "no_such_topic")
        result = self.run_tattle(config_text(missing))
        self.assertEqual(result.returncode, 3, result.stderr)
        spooled = [json.loads(read_text(os.path.join(self.dir, "spool", name)))
                   for name in os.listdir(os.path.join(self.dir, "spool")) if name.endswith(".json")]
        self.assertEqual(len(spooled), len(expected_alerts()))
        for entry in spooled:
            self.assertEqual(entry["destination"], "Default SNS")
            self.assertIn("NotFound", entry["last_error"])
            self.assertIn("no_such_topic", entry["last_error"])
        self.assertEqual(len(self.moto.api("/moto-api/data.json")["ses"]["Message"]), len(expected_alerts()))

    def test_wrong_secret_is_refused_and_never_printed(self) -> None:
        secret = "WrongSecretForTattleIntegration0123456789"
        result = self.run_tattle(config_text(self.topic), {"AWS_SECRET_ACCESS_KEY": secret})
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn("403", result.stderr + self.spool_errors())
        self.assertNotIn(secret, result.stdout + result.stderr + self.spool_errors())
        self.assertEqual(self.received_from_queue(), [])
        self.assertEqual(self.moto.api("/moto-api/data.json")["ses"]["Message"], [])

    def spool_errors(self) -> str:
        spool = os.path.join(self.dir, "spool")
        if not os.path.isdir(spool):
            return ""
        return "".join(read_text(os.path.join(spool, name)) for name in os.listdir(spool))

    def test_tattletails_example_config_is_accepted_unchanged(self) -> None:
        example = os.path.join(DATA, "tattletail", "example.tattletail.toml")
        env = self.moto.tattle_env(home=self.dir)
        result = tattle_process.run_tattle("check", example, env=env, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Default SNS", result.stdout)
        self.assertIn("Email", result.stdout)


if __name__ == "__main__":
    unittest.main()
