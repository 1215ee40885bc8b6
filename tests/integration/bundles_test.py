"""Team bundles, tattle's rule fields and `tattle test`, with the real binary and plugins.

Two teams with private destinations and a shared root one, a source granted to one
team only, broken bundles under on_bundle_error fail and skip, and rule tests
passing, failing and written as JUnit XML.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import unittest
import xml.etree.ElementTree as ElementTree

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import SOURCE_DIR, ScratchDirTestCase, json_lines, run_tattle  # noqa: E402


def tattle(*args: str) -> subprocess.CompletedProcess:
    return run_tattle(*args, timeout=120, text=True)


def cloudtrail_event(event_id: str, event_name: str, **extra: object) -> dict:
    event = {
        "eventVersion": "1.08",
        "eventID": event_id,
        "eventTime": "2026-11-27T10:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice"},
    }
    event.update(extra)
    return event


ROOT = """\
bundles = ["teams/*.toml"]
state_dir = "state"
spool_dir = "spool"

[[source]]
id = "billing"
type = "file"
paths = ["logs/billing"]
teams = ["payments"]

[[source]]
id = "shared"
type = "file"
paths = ["logs/shared"]

[[destination]]
id = "security"
type = "stdout"
format = "json"
share_with = ["payments"]
"""

PAYMENTS = """\
team = "payments"

[defaults]
severity = "high"
destinations = ["alerts", "security"]

[[destination]]
id = "alerts"
type = "stdout"
format = "json"

[[rule]]
id = "secret-created"
name = "Secret created"
jq_match = 'select(.eventName == "CreateSecret") | "secret \\(.requestParameters.name)"'
tags = ["T1555", "CIS 3.x"]
runbook = "https://wiki.example.com/secret-created"

[[rule]]
name = "Everything"
jq_match = 'true'
enabled = false
"""

DATA = """\
team = "data"

[[destination]]
id = "alerts"
type = "stdout"
format = "json"

[[rule]]
name = "Secret created"
jq_match = 'select(.eventName == "CreateSecret")'
destinations = ["alerts"]
"""


class BundleTest(ScratchDirTestCase):
    scratch_prefix = "tattle_bundles_"

    def setUp(self) -> None:
        super().setUp()
        os.makedirs(os.path.join(self.dir, "teams"))
        self.write_events("logs/billing/billing.json",
                          [cloudtrail_event("billing-1", "CreateSecret", requestParameters={"name": "vault"})])
        self.write_events("logs/shared/shared.json",
                          [cloudtrail_event("shared-1", "CreateSecret", requestParameters={"name": "wiki"}),
                           cloudtrail_event("shared-2", "GetSecretValue")])

    def write_events(self, name: str, events: list) -> None:
        self.write(name, json.dumps({"Records": events}))

    def write_teams(self, payments: str = PAYMENTS, data: str = DATA) -> str:
        self.write("teams/payments.toml", payments)
        self.write("teams/data.toml", data)
        return self.write("root.toml", ROOT)

    def run_alerts(self, config: str) -> list:
        result = tattle("run", "--config", config)
        self.assertEqual(result.returncode, 0, result.stderr)
        return json_lines(result.stdout)

    def test_teams_reach_their_own_and_shared_destinations_and_granted_sources_only(self) -> None:
        alerts = self.run_alerts(self.write_teams())
        delivered = sorted((a["rule"]["id"], a["event"]["eventID"], a["destination"]) for a in alerts)
        self.assertEqual(delivered, [
            # data's rule never sees the billing source, which is granted to payments only.
            ("data/Secret created", "shared-1", "data/alerts"),
            ("payments/secret-created", "billing-1", "payments/alerts"),
            ("payments/secret-created", "billing-1", "security"),
            ("payments/secret-created", "shared-1", "payments/alerts"),
            ("payments/secret-created", "shared-1", "security"),
            # payments/Everything is disabled: it matches everything but never runs.
        ])
        payments = next(a for a in alerts if a["rule"]["id"] == "payments/secret-created")
        self.assertEqual(payments["rule"]["name"], "Secret created")
        self.assertEqual(payments["rule"]["team"], "payments")
        self.assertEqual(payments["rule"]["severity"], "high")
        self.assertEqual(payments["rule"]["tags"], ["T1555", "CIS 3.x"])
        self.assertEqual(payments["rule"]["runbook"], "https://wiki.example.com/secret-created")
        data = next(a for a in alerts if a["rule"]["id"] == "data/Secret created")
        self.assertNotIn("severity", data["rule"])
        # Same event, two teams' rules with the same name: two different alert ids.
        same_event = next(a for a in alerts
                          if a["rule"]["id"] == "payments/secret-created" and a["event"]["eventID"] == "shared-1")
        self.assertNotEqual(same_event["alert_id"], data["alert_id"])

    def test_a_team_naming_another_teams_destination_does_not_load(self) -> None:
        sneaky = DATA.replace('destinations = ["alerts"]', 'destinations = ["payments/alerts"]')
        config = self.write_teams(data=sneaky)
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn(os.path.join(self.dir, "teams", "data.toml") + ":11:", result.stderr)
        self.assertIn('of team "data" may not name destination "payments/alerts" of team "payments"',
                      result.stderr)

    def test_a_root_destination_not_shared_with_the_team_is_refused(self) -> None:
        greedy = DATA.replace('destinations = ["alerts"]', 'destinations = ["security"]')
        result = tattle("check", self.write_teams(data=greedy))
        self.assertEqual(result.returncode, 2)
        self.assertIn('destination "security" of the root config: it is not shared with team "data"',
                      result.stderr)

    def test_a_broken_bundle_fails_the_config_by_default(self) -> None:
        broken = DATA.replace("jq_match = 'select(.eventName == \"CreateSecret\")'", "jq_mach = 'true'")
        result = tattle("run", "--config", self.write_teams(data=broken))
        self.assertEqual(result.returncode, 2)
        self.assertIn(os.path.join(self.dir, "teams", "data.toml") + ":10:", result.stderr)
        self.assertIn('did you mean "jq_match"?', result.stderr)
        self.assertEqual(result.stdout, "")

    def test_a_broken_bundle_is_skipped_and_reported_with_skip(self) -> None:
        broken = DATA.replace("jq_match = 'select(.eventName == \"CreateSecret\")'", "jq_mach = 'true'")
        self.write_teams(data=broken)
        config = self.write("root.toml", 'on_bundle_error = "skip"\n' + ROOT)
        result = tattle("run", "--config", config)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("bundle skipped", result.stderr)
        self.assertIn(os.path.join(self.dir, "teams", "data.toml") + ":10:", result.stderr)
        rules = {alert["rule"]["id"] for alert in json_lines(result.stdout)}
        self.assertEqual(rules, {"payments/secret-created"})


class RuleTestCommand(ScratchDirTestCase):
    scratch_prefix = "tattle_rule_tests_"

    def test_the_shipped_team_example_passes_its_tests(self) -> None:
        example = os.path.join(SOURCE_DIR, "configs", "teams", "root.toml")
        junit = os.path.join(self.dir, "junit.xml")
        result = tattle("test", example, "--junit", junit)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("10 tests, 10 passed, 0 failed", result.stdout)
        self.assertIn("platform/lambda-created", result.stdout)  # disabled rules are tested too
        suite = ElementTree.parse(junit).getroot().find("testsuite")
        self.assertEqual((suite.get("tests"), suite.get("failures")), ("10", "0"))

    def test_a_wrong_expectation_fails_with_expected_and_got(self) -> None:
        with open(os.path.join(self.dir, "event.json"), "w", encoding="utf-8") as out:
            json.dump(cloudtrail_event("e-1", "CreateSecret", requestParameters={"name": "vault"}), out)
        config = os.path.join(self.dir, "rules.toml")
        with open(config, "w", encoding="utf-8") as out:
            out.write(textwrap.dedent("""\
                [[rule]]
                name = "Secret <created> & \\"named\\""
                jq_match = 'select(.eventName == "CreateSecret") | "secret \\(.requestParameters.name)"'

                [[rule.test]]
                event_file = "event.json"
                match = true
                annotation = "secret vault"

                [[rule.test]]
                event_file = "event.json"
                match = true
                annotation = "secret other"

                [[rule.test]]
                event = '{"eventName": "GetSecretValue"}'
                match = true
                """))
        junit = os.path.join(self.dir, "junit.xml")
        result = tattle("test", "--junit", junit, config)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("3 tests, 1 passed, 2 failed", result.stdout)
        self.assertIn(f"FAIL    Secret <created> & \"named\"  {config}:10:1\n"
                      "        expected: match with annotation \"secret other\"\n"
                      "        got:      match with annotation \"secret vault\"\n", result.stdout)
        self.assertIn("        expected: match\n        got:      no match\n", result.stdout)
        suite = ElementTree.parse(junit).getroot().find("testsuite")  # parses: escaping is right
        self.assertEqual((suite.get("tests"), suite.get("failures")), ("3", "2"))
        cases = suite.findall("testcase")
        self.assertEqual(cases[0].get("classname"), 'Secret <created> & "named"')
        self.assertIsNone(cases[0].find("failure"))
        self.assertIn('expected match with annotation "secret other", got match with annotation "secret vault"',
                      cases[1].find("failure").get("message"))


if __name__ == "__main__":
    unittest.main()
