"""The detection library in configs/bundles, with the real binary and plugins.

Its own rule tests pass (`tattle test configs/bundles`), every rule carries its metadata
and at least one matching and one non-matching test, a wrong expectation fails with a
diff naming the rule, `tattle check` is clean, and over configs/samples the library
raises exactly the alerts worked out below from the sample events. Also the forms of
`tattle test` arguments: a bundle file, a directory, and the errors for bad ones.
"""

from __future__ import annotations

import gzip
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import (SAMPLES_DIR as SAMPLES, SHARED_DATA_DIR as SHARED_DATA, SOURCE_DIR,  # noqa: E402
                            ScratchDirTestCase, json_lines, run_tattle)

LIBRARY = os.path.join(SOURCE_DIR, "configs", "bundles")
BUNDLES = ("cis.toml", "tattletail.toml", "threats.toml")
SEVERITIES = {"info", "low", "medium", "high", "critical"}
MITRE = re.compile(r"^(T\d{4}(\.\d{3})?|TA\d{4})$")
CIS = re.compile(r"^CIS-\d+\.\d+$")


def tattle(*args: str) -> subprocess.CompletedProcess:
    return run_tattle(*args, timeout=300, text=True)


def load_bundle(name: str) -> dict:
    with open(os.path.join(LIBRARY, name), "rb") as file:
        return tomllib.load(file)


def sample_records() -> list:
    records = []
    for path in sorted(glob.glob(os.path.join(SAMPLES, "*_CloudTrail_*.json.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as file:
            records.extend(json.load(file)["Records"])
    return records


# What the library must raise over configs/samples, read off the five sample files
# (invictus-ir, 2023-07-10 12:00-12:35): (rule, eventID, eventName). Refused calls
# (cis/unauthorized-api-call) are too many to list; they are derived below from the
# records' errorCode as CIS 4.1 defines it.
EXPECTED_OVER_SAMPLES = {
    # Three inline role policies, AmazonSSMManagedInstanceCore on a role, AdministratorAccess
    # on a role and on malicious-iam-user.
    ("cis/iam-policy-change", "6c1eed73-00ee-4810-8009-c9ce5990c100", "PutRolePolicy"),
    ("cis/iam-policy-change", "39b115ed-5806-43b7-abd5-c4e078b1528a", "PutRolePolicy"),
    ("cis/iam-policy-change", "42ee083a-7081-4c13-a7b8-6553a966588a", "PutRolePolicy"),
    ("cis/iam-policy-change", "edc26fa8-655a-4346-9e18-f79b0d9e25de", "AttachRolePolicy"),
    ("cis/iam-policy-change", "493e08b7-63e4-49a4-832a-1a7598ce78e5", "AttachRolePolicy"),
    ("cis/iam-policy-change", "f4923a37-92d5-4dfd-9786-6caef2b5f33c", "AttachUserPolicy"),
    # CreateTrail and StartLogging of the stratus "ctes" trail, two refused StopLogging
    # (TrailNotFoundException) and the refused DeleteTrail of the "cloudtraild" trail.
    ("cis/cloudtrail-change", "ad384a22-c03e-4f3c-8520-86a31e79378d", "CreateTrail"),
    ("cis/cloudtrail-change", "98cf02da-a187-453b-87fe-884d93a06a4c", "StartLogging"),
    ("cis/cloudtrail-change", "9790ee84-ed2b-4866-83d1-f32af0dd4cd2", "StopLogging"),
    ("cis/cloudtrail-change", "b4610d54-efe9-40b0-b9f9-71156081d520", "StopLogging"),
    ("cis/cloudtrail-change", "b7e19efd-92be-4182-bbbc-b6468296710b", "DeleteTrail"),
    # Two CloudTrail bucket policies, the cross-account policy, a lifecycle rule.
    ("cis/s3-bucket-policy-change", "988f1043-3e3d-4d84-803b-1b4d00e0df90", "PutBucketPolicy"),
    ("cis/s3-bucket-policy-change", "dfcc072b-da6e-454c-b4bf-f7fbf9052e00", "PutBucketPolicy"),
    ("cis/s3-bucket-policy-change", "7823c70d-f7f9-4a04-b4c0-baa8fbe09ea3", "PutBucketLifecycle"),
    ("cis/s3-bucket-policy-change", "d58cf935-0194-41d0-baa0-9efc030ce2e6", "PutBucketPolicy"),
    ("cis/route-table-change", "dc024e51-15e4-4829-a971-7e17d4be43be", "CreateRouteTable"),
    ("cis/route-table-change", "6445452c-c6df-4ebf-a1ed-2890f5aa7107", "CreateRoute"),
    ("cis/route-table-change", "946cef78-6825-4fe5-bae9-17d27b61dd21", "CreateRoute"),
    ("cis/vpc-change", "f5e4b2d3-a4a2-4a78-b81f-9036f12b623e", "CreateVpc"),
    ("cis/organizations-change", "be7f89b5-d456-4423-b3e6-0fb0b19bad7c", "LeaveOrganization"),
    # bert-jan creating keys for stratus-red-team-backdoor-u-user and malicious-iam-user.
    ("tattletail/create-access-key", "64b7de64-bf53-47ae-b7e3-d30cb1b5136e", "CreateAccessKey"),
    ("tattletail/create-access-key", "8c282c0b-00d1-4369-95b7-cb50b6eee620", "CreateAccessKey"),
    # ReadOnly selectors without management events on the "ctes" trail.
    ("threats/cloudtrail-event-selectors-reduced", "076e96d5-2983-473f-920a-2fc2d7e02777", "PutEventSelectors"),
    ("threats/console-password-created", "1170c908-ce8d-4c6f-bc65-cf43aae5235b", "CreateLoginProfile"),
    ("threats/admin-policy-attached", "493e08b7-63e4-49a4-832a-1a7598ce78e5", "AttachRolePolicy"),
    ("threats/admin-policy-attached", "f4923a37-92d5-4dfd-9786-6caef2b5f33c", "AttachUserPolicy"),
    ("threats/s3-bucket-policy-cross-account", "d58cf935-0194-41d0-baa0-9efc030ce2e6", "PutBucketPolicy"),
}


def refused_calls(records: list) -> set:
    """CIS 4.1: errorCode *UnauthorizedOperation or AccessDenied*, not S3 log delivery, not HeadBucket."""
    return {("cis/unauthorized-api-call", r["eventID"], r["eventName"]) for r in records
            if re.search(r"UnauthorizedOperation$|^AccessDenied", r.get("errorCode") or "")
            and r.get("sourceIPAddress") != "delivery.logs.amazonaws.com" and r["eventName"] != "HeadBucket"}


class DetectionLibraryTest(ScratchDirTestCase):
    scratch_prefix = "tattle_library_"

    def copy_library(self) -> str:
        copy = os.path.join(self.dir, "bundles")
        shutil.copytree(LIBRARY, copy)
        return copy

    def test_the_library_passes_its_own_tests(self) -> None:
        result = tattle("test", LIBRARY)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        summary = re.search(r"^(\d+) tests, (\d+) passed, 0 failed$", result.stdout, re.MULTILINE)
        self.assertIsNotNone(summary, result.stdout)
        expected_tests = sum(len(rule.get("test", [])) for name in BUNDLES for rule in load_bundle(name)["rule"])
        self.assertEqual(int(summary.group(1)), expected_tests)
        # The root config by name tests the same cases.
        by_root = tattle("test", os.path.join(LIBRARY, "tattle.toml"))
        self.assertEqual(by_root.returncode, 0, by_root.stderr)
        self.assertEqual(by_root.stdout, result.stdout)

    def test_every_rule_has_metadata_and_matching_and_non_matching_tests(self) -> None:
        ids = set()
        for name in BUNDLES:
            bundle = load_bundle(name)
            defaults = bundle.get("defaults", {})
            self.assertEqual(defaults.get("destinations"), ["security"], name)
            for rule in bundle["rule"]:
                rule_id = f'{bundle["team"]}/{rule.get("id")}'
                with self.subTest(rule=rule_id):
                    self.assertNotIn(rule_id, ids)
                    ids.add(rule_id)
                    self.assertTrue(rule.get("name"))
                    self.assertGreater(len(rule.get("description", "")), 40, "description with runbook text")
                    self.assertIn(rule.get("severity", defaults.get("severity")), SEVERITIES)
                    tags = rule.get("tags", [])
                    self.assertTrue(any(MITRE.match(tag) for tag in tags), f"a MITRE ATT&CK id in {tags}")
                    for tag in tags:
                        self.assertTrue(MITRE.match(tag) or CIS.match(tag) or tag == "CIS-AWS-v1.4.0", tag)
                    if any(CIS.match(tag) for tag in tags):
                        self.assertIn("CIS-AWS-v1.4.0", tags, "a CIS control names the benchmark version")
                    runbook = rule.get("runbook", defaults.get("runbook", ""))
                    self.assertRegex(runbook, r"^https://(docs\.aws\.amazon\.com|www\.cisecurity\.org)/")
                    tests = rule.get("test", [])
                    self.assertTrue(any(test["match"] for test in tests), "a matching test")
                    self.assertTrue(any(not test["match"] for test in tests), "a non-matching test")
                    for test in tests:
                        if "event_file" in test:
                            self.assertTrue(os.path.isfile(os.path.join(LIBRARY, test["event_file"])), test["event_file"])
        self.assertGreaterEqual(len(ids), 35)
        # Every copied event names its source in events/README.md.
        with open(os.path.join(LIBRARY, "events", "README.md"), encoding="utf-8") as readme:
            provenance = readme.read()
        for path in glob.glob(os.path.join(LIBRARY, "events", "*", "*.json")):
            relative = os.path.relpath(path, os.path.join(LIBRARY, "events"))
            self.assertIn(f"`{relative}`", provenance)
            # ... and is the record it claims to be.
            row = re.search(rf"\| `{re.escape(relative)}` \| `([^`]+)` \| (\d+) \|", provenance)
            self.assertIsNotNone(row, relative)
            source = os.path.join(SHARED_DATA, "cloudtrail", row.group(1))
            if os.path.isfile(source):
                with open(source, encoding="utf-8") as file, open(path, encoding="utf-8") as copied:
                    self.assertEqual(json.load(file)["Records"][int(row.group(2))], json.load(copied), relative)

    def test_a_wrong_expectation_fails_with_a_diff_naming_the_rule(self) -> None:
        copy = self.copy_library()
        threats = os.path.join(copy, "threats.toml")
        with open(threats, encoding="utf-8") as file:
            text = file.read()
        right = 'annotation = "snapshot snap-083d3b857c13988bc shared with 012345678912 by'
        self.assertEqual(text.count(right), 1)
        with open(threats, "w", encoding="utf-8") as file:
            file.write(text.replace(right, right.replace("012345678912", "999999999999")))
        result = tattle("test", copy)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
        self.assertEqual(len(failures), 1, result.stdout)
        self.assertRegex(failures[0], r"^FAIL\s+threats/ebs-snapshot-shared\s+\S*threats\.toml:\d+")
        self.assertIn('expected: match with annotation "snapshot snap-083d3b857c13988bc shared with 999999999999 by',
                      result.stdout)
        self.assertIn('got:      match with annotation "snapshot snap-083d3b857c13988bc shared with 012345678912 by',
                      result.stdout)
        self.assertRegex(result.stdout, r"\d+ tests, \d+ passed, 1 failed")

    def test_check_is_clean(self) -> None:
        result = tattle("check", os.path.join(LIBRARY, "tattle.toml"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(result.stdout.endswith("ok\n"), result.stdout)
        self.assertNotIn("[not compiled]", result.stdout)
        rules = int(re.search(r"^rules \((\d+)\):", result.stdout, re.MULTILINE).group(1))
        self.assertEqual(rules, sum(len(load_bundle(name)["rule"]) for name in BUNDLES))

    def test_alerts_over_the_samples_are_the_expected_set(self) -> None:
        copy = self.copy_library()
        root = os.path.join(copy, "tattle.toml")
        with open(root, encoding="utf-8") as file:
            text = file.read()
        text = text.replace('paths = ["../samples"]', f"paths = [{json.dumps(SAMPLES)}]")
        text = text.replace('format = "text"', 'format = "json"')
        text = 'state_dir = "state"\nspool_dir = "spool"\n' + text
        with open(root, "w", encoding="utf-8") as file:
            file.write(text)
        result = tattle("run", "--config", root)
        self.assertEqual(result.returncode, 0, result.stderr)
        alerts = json_lines(result.stdout)
        raised = {(a["rule"]["id"], a["event"]["eventID"], a["event"]["eventName"]) for a in alerts}
        self.assertEqual(len(raised), len(alerts), "one alert per rule and event")
        expected = EXPECTED_OVER_SAMPLES | refused_calls(sample_records())
        self.assertEqual(raised - expected, set(), "unexpected alerts")
        self.assertEqual(expected - raised, set(), "missing alerts")
        self.assertTrue(all(a["destination"] == "security" for a in alerts))

    def test_a_bundle_file_is_tested_through_its_root_config(self) -> None:
        result = tattle("test", os.path.join(LIBRARY, "tattletail.toml"))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        rules = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("pass")}
        self.assertEqual(rules, {"tattletail/create-access-key", "tattletail/ssm-start-session"})

    def test_bundles_without_a_root_config_load_under_a_synthetic_root(self) -> None:
        bundle = """\
            team = "solo"

            [[destination]]
            id = "out"
            type = "stdout"

            [[rule]]
            id = "create-user"
            name = "Create User"
            jq_match = 'select(.eventName == "CreateUser")'
            destinations = ["out"]

            [[rule.test]]
            event = '{"eventName": "CreateUser"}'
            match = true

            [[rule.test]]
            event = '{"eventName": "GetUser"}'
            match = false
            """
        self.write("loose/solo.toml", bundle)
        self.write("loose/other.toml", bundle.replace('"solo"', '"other"'))
        by_directory = tattle("test", os.path.join(self.dir, "loose"))
        self.assertEqual(by_directory.returncode, 0, by_directory.stdout + by_directory.stderr)
        self.assertIn("4 tests, 4 passed, 0 failed", by_directory.stdout)
        by_file = tattle("test", os.path.join(self.dir, "loose", "solo.toml"))
        self.assertEqual(by_file.returncode, 0, by_file.stdout + by_file.stderr)
        self.assertIn("2 tests, 2 passed, 0 failed", by_file.stdout)

    def test_a_bundle_needing_a_root_without_one_is_a_clear_error(self) -> None:
        lone = os.path.join(self.dir, "lone", "cis.toml")
        os.makedirs(os.path.dirname(lone))
        shutil.copy(os.path.join(LIBRARY, "cis.toml"), lone)
        result = tattle("test", lone)
        self.assertEqual(result.returncode, 2, result.stdout)
        self.assertIn("security", result.stderr)
        self.assertIn("without a root config", result.stderr)

    def test_bad_arguments_are_named(self) -> None:
        missing = os.path.join(self.dir, "nope.toml")
        result = tattle("test", missing)
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"{missing}: no such file or directory", result.stderr)
        self.write("two/a.toml", 'bundles = ["x.toml"]\n')
        self.write("two/b.toml", 'bundles = ["y.toml"]\n')
        result = tattle("test", os.path.join(self.dir, "two"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("2 root configs", result.stderr)
        self.assertIn("a.toml, b.toml", result.stderr)
        os.makedirs(os.path.join(self.dir, "empty"))
        result = tattle("test", os.path.join(self.dir, "empty"))
        self.assertEqual(result.returncode, 2)
        self.assertIn("no *.toml file", result.stderr)


if __name__ == "__main__":
    unittest.main()
