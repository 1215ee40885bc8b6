"""Tests of the real `tattle` binary with its real plugins (TATTLE_BIN).

Covers the commands, their exit codes, tattletail's own example and test data,
and what happens to bad input: every failure names its place and loses nothing else.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import (SHARED_DATA_DIR, SOURCE_DIR, TATTLETAIL_TESTDATA, ScratchDirTestCase,  # noqa: E402
                            json_lines, require_tattle_bin, run_tattle, with_environment)

TATTLETAIL_EXAMPLE = os.path.join(SHARED_DATA_DIR, "tattletail", "example.tattletail.toml")
CREATE_USER_RULE = 'select(.eventName == "CreateUser") | "username: \\(.responseElements.user.userName)"'


def tattle(*args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_tattle(*args, stdin=stdin, timeout=120, env=with_environment(env))


class TempDirTest(ScratchDirTestCase):
    scratch_prefix = "tattle_cli_"

    def gzip_copy(self, source: str, name: str) -> str:
        with open(source, "rb") as src, gzip.open(self.path(name), "wb") as dst:
            dst.write(src.read())
        return self.path(name)


class HelpAndUsage(unittest.TestCase):
    def test_top_level_help_lists_commands_and_exit_codes(self) -> None:
        result = tattle("--help")
        self.assertEqual(result.returncode, 0)
        out = result.stdout.decode()
        for word in ("run", "check", "eval", "plugins", "Exit status", "3  some alerts could not be delivered"):
            self.assertIn(word, out)

    def test_every_command_has_help(self) -> None:
        for command in ("run", "check", "eval", "plugins"):
            result = tattle(command, "--help")
            self.assertEqual(result.returncode, 0, command)
            self.assertIn(f"usage: tattle {command}", result.stdout.decode())

    def test_unknown_command_and_no_command_are_usage_errors(self) -> None:
        self.assertEqual(tattle("frobnicate").returncode, 2)
        self.assertEqual(tattle().returncode, 2)
        self.assertEqual(tattle("run", "--no-such-option").returncode, 2)

    def test_version(self) -> None:
        result = tattle("version")
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout.decode(), r"^tattle \d+\.\d+\.\d+ \(plugin ABI 1\.\d+\)")


class Plugins(unittest.TestCase):
    def test_lists_bundled_plugins_with_schemas(self) -> None:
        result = tattle("plugins", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        listing = json.loads(result.stdout)
        found = {(p["kind"], p["type"]) for p in listing["plugins"]}
        self.assertTrue({("sink", "stdout"), ("sink", "file"), ("source", "file")} <= found, found)
        for plugin in listing["plugins"]:
            self.assertEqual(plugin["config_schema"]["type"], "object")
            self.assertTrue(plugin["location"].endswith(".so"), plugin["location"])

    def test_plugin_dir_refusals_are_reported(self) -> None:
        fixtures = os.environ.get("TATTLE_LOADER_FIXTURE_DIR")
        if not fixtures or not os.path.isdir(fixtures):
            self.fail("TATTLE_LOADER_FIXTURE_DIR is not set to the built loader fixtures")
        result = tattle("plugins", "--plugin-dir", fixtures)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0)
        self.assertIn("sink c_echo", out)
        self.assertIn("tattle_sink_wrong_major.so: built for plugin ABI 2.0", out)
        self.assertIn("missing symbol tattle_sink_send", out)


class PluginsAConfigNames(TempDirTest):
    """A config loads the plugins it names, found by their file names, and no others."""

    def fixtures(self) -> str:
        fixtures = os.environ.get("TATTLE_LOADER_FIXTURE_DIR")
        if not fixtures or not os.path.isdir(fixtures):
            self.fail("TATTLE_LOADER_FIXTURE_DIR is not set to the built loader fixtures")
        return fixtures

    def config_with_destination_type(self, destination_type: str) -> str:
        return self.write("config.toml", f'''
[[destination]]
id = "echo"
type = "{destination_type}"

[[rule]]
name = "Any"
jq_match = "select(.eventName == \\"CreateUser\\")"
destinations = ["echo"]
''')

    def test_plugins_the_config_does_not_name_are_not_opened(self) -> None:
        result = tattle("--plugin-dir", self.fixtures(), "check", self.config_with_destination_type("c_echo"))
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        # The fixtures built wrong sit beside c_echo; nothing asked for them.
        self.assertNotIn("refused", result.stdout.decode() + result.stderr.decode())

    def test_a_type_no_file_is_named_for_lists_every_type_and_refusal(self) -> None:
        result = tattle("--plugin-dir", self.fixtures(), "check", self.config_with_destination_type("c_ech"))
        self.assertEqual(result.returncode, 2, result.stderr.decode())
        err = result.stderr.decode()
        self.assertIn('no plugin provides destination type "c_ech"', err)
        self.assertIn('did you mean "c_echo"', err)
        available = err.split("available destination types: ", 1)[-1].splitlines()[0].split(", ")
        self.assertTrue({"c_echo", "slack_webhook", "stdout"} <= set(available), available)
        self.assertIn("tattle_sink_wrong_major.so: built for plugin ABI 2.0", err)


class TattletailCompatibility(TempDirTest):
    def test_check_accepts_the_example_config_unchanged(self) -> None:
        result = tattle("check", TATTLETAIL_EXAMPLE)
        # Every destination type of tattletail's example (sns, slack_webhook, ses) is provided
        # with tattletail's keys.
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        out = result.stdout.decode()
        self.assertIn("rules (2):", out)
        self.assertIn("destinations (3):", out)
        self.assertNotIn("foo.slack.com", out + result.stderr.decode())  # a secret, never printed

    def test_create_user_rule_on_gzipped_testdata_gives_one_alert(self) -> None:
        gz = self.gzip_copy(TATTLETAIL_TESTDATA, "testdata-1.json.gz")
        result = tattle("eval", "--format", "json", CREATE_USER_RULE, gz)
        self.assertEqual(result.returncode, 0, result.stderr)
        alerts = json_lines(result.stdout)
        self.assertEqual(len(alerts), 1)
        self.assertEqual(alerts[0]["annotation"], "username: user1")
        self.assertEqual(alerts[0]["event"]["eventName"], "CreateUser")
        self.assertEqual(alerts[0]["origin"]["batch"], gz)

    def test_tattletail_rules_run_with_a_stdout_destination(self) -> None:
        with open(TATTLETAIL_EXAMPLE, encoding="utf-8") as f:
            rules = f.read().split("[[destination]]")[0]
        rules = rules.replace('destinations = ["Default SNS", "Slack Warnings", "Email"]', 'destinations = ["out"]')
        config = self.write("tattletail.toml", rules + '\n[[destination]]\nid = "out"\ntype = "stdout"\nformat = "json"\n')
        gz = self.gzip_copy(TATTLETAIL_TESTDATA, "testdata-1.json.gz")
        result = tattle("run", "--config", config, gz)
        self.assertEqual(result.returncode, 0, result.stderr)
        alerts = json_lines(result.stdout)
        by_rule = {}
        for alert in alerts:
            by_rule.setdefault(alert["rule"]["name"], []).append(alert)
        self.assertEqual(len(by_rule["Create User"]), 1)
        self.assertEqual(by_rule["Create User"][0]["annotation"], "username: user1")
        self.assertEqual(by_rule["Create User"][0]["rule"]["description"], "A new IAM user has been created")
        # What each kind of thread cost, for sizing `workers`.
        self.assertRegex(result.stderr.decode(), r"CPU seconds: batch workers \d+\.\d{3} \(\d+ threads?\), "
                                                 r"delivery \d+\.\d{3} \(1 thread\), main thread \d+\.\d{3} \(reading, routing\)")
        # The same event gives the same alert id on every run: redelivery is idempotent.
        again = tattle("run", "--config", config, gz)
        first_ids = sorted(a["alert_id"] for a in alerts)
        second_ids = sorted(alert["alert_id"] for alert in json_lines(again.stdout))
        self.assertEqual(first_ids, second_ids)


class BadInput(TempDirTest):
    def config_with_stdout(self) -> str:
        return self.write("c.toml", f"""
            [[rule]]
            name = "Create User"
            jq_match = '{CREATE_USER_RULE}'
            destinations = ["out"]

            [[destination]]
            id = "out"
            type = "stdout"
            format = "json"
            """)

    def test_corrupt_gzip_fails_its_batch_only(self) -> None:
        good = self.gzip_copy(TATTLETAIL_TESTDATA, "a-good.json.gz")
        with open(good, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2: len(data) // 2 + 16] = b"\x00" * 16
        with open(self.path("b-corrupt.json.gz"), "wb") as f:
            f.write(data)
        shutil.copy(TATTLETAIL_TESTDATA, self.path("c-plain.json"))
        result = tattle("run", "--config", self.config_with_stdout(), self.dir)
        self.assertEqual(result.returncode, 1)
        alerts = json_lines(result.stdout)
        self.assertEqual(sorted(os.path.basename(a["origin"]["batch"]) for a in alerts),
                         ["a-good.json.gz", "c-plain.json"])
        stderr = result.stderr.decode()
        self.assertIn("b-corrupt.json.gz", stderr)
        self.assertIn("1 failed", stderr)

    def test_broken_json_names_file_line_and_column(self) -> None:
        self.write("broken.json", '{"Records": [\n  {"eventName": "CreateUser",\n   "x": }\n]}\n')
        result = tattle("run", "--config", self.config_with_stdout(), self.path("broken.json"))
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr.decode(), r"broken\.json:3:\d+")

    def test_missing_input_file_is_named_and_others_go_on(self) -> None:
        shutil.copy(TATTLETAIL_TESTDATA, self.path("ok.json"))
        result = tattle("run", "--config", self.config_with_stdout(), self.path("nope.json"), self.path("ok.json"))
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stdout.decode().splitlines()), 1)
        self.assertIn("nope.json", result.stderr.decode())

    def test_stdin_input(self) -> None:
        with open(TATTLETAIL_TESTDATA, "rb") as f:
            result = tattle("run", "--config", self.config_with_stdout(), "-", stdin=f.read())
        self.assertEqual(result.returncode, 0, result.stderr)
        alert = json.loads(result.stdout)
        self.assertEqual(alert["origin"]["batch"], "<stdin>")

    def test_large_stdin_input_is_read_whole(self) -> None:
        # Far more than one read's worth: stdin has no size to read ahead by.
        with open(TATTLETAIL_TESTDATA, "rb") as f:
            document = json.load(f)
        document["Records"] = document["Records"] * 400
        text = json.dumps(document).encode()
        self.assertGreater(len(text), 1 << 20)
        from_stdin = tattle("run", "--config", self.config_with_stdout(), "-", stdin=text)
        self.assertEqual(from_stdin.returncode, 0, from_stdin.stderr)
        with open(self.path("big.json"), "wb") as f:
            f.write(text)
        from_file = tattle("run", "--config", self.config_with_stdout(), self.path("big.json"))
        self.assertEqual(from_file.returncode, 0, from_file.stderr)
        alerts = from_stdin.stdout.decode().splitlines()
        self.assertEqual(len(alerts), 400)
        self.assertEqual(len(from_file.stdout.decode().splitlines()), 400)

    def test_config_errors_are_all_reported_with_places(self) -> None:
        config = self.write("bad.toml", """
            [[rule]]
            name = "a"
            jq_macth = '.'
            destinations = ["out"]

            [[rule]]
            name = "b"
            jq_match = 'select(.eventName == '
            destinations = ["ot"]

            [[destination]]
            id = "out"
            type = "stdot"
            """)
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2)
        stderr = result.stderr.decode()
        self.assertIn('did you mean "jq_match"', stderr)
        self.assertIn('did you mean "out"', stderr)
        self.assertRegex(stderr, r"bad\.toml:4:\d+:")
        self.assertRegex(stderr, r"bad\.toml:10:\d+:")

    def test_jq_syntax_error_names_the_rule_and_jq_message(self) -> None:
        config = self.write("jq.toml", """
            [[rule]]
            name = "Broken rule"
            jq_match = 'select(.eventName == '
            destinations = ["out"]

            [[rule]]
            name = "Fine rule"
            jq_match = '.eventName == "CreateUser"'
            destinations = ["out"]

            [[destination]]
            id = "out"
            type = "stdout"
            """)
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2)
        stderr = result.stderr.decode()
        self.assertIn('rule "Broken rule"', stderr)
        self.assertIn("syntax error", stderr)
        self.assertNotIn("Fine rule", stderr)
        self.assertRegex(stderr, r"jq\.toml:4:\d+:")

    def test_plugin_schema_violation_is_reported_at_its_line(self) -> None:
        config = self.write("schema.toml", """
            [[destination]]
            id = "out"
            type = "stdout"
            format = "yaml"
            """)
        result = tattle("check", config)
        self.assertEqual(result.returncode, 2)
        self.assertRegex(result.stderr.decode(), r'schema\.toml:5:\d+: destination "out" \(stdout\): "format" must be one of')

    def test_sandboxed_rule_is_refused_and_secret_never_printed(self) -> None:
        canary = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY"
        gz = self.gzip_copy(TATTLETAIL_TESTDATA, "t.json.gz")
        for program in ("$ENV.AWS_SECRET_ACCESS_KEY", "env | .AWS_SECRET_ACCESS_KEY", '"\\(env)"',
                        "$ ENV", "input_filename"):
            result = tattle("eval", "--format", "json", program, gz, env={"AWS_SECRET_ACCESS_KEY": canary})
            self.assertEqual(result.returncode, 2, program)
            self.assertNotIn(canary, result.stdout.decode() + result.stderr.decode(), program)
            self.assertIn("rules cannot read the environment", result.stderr.decode(), program)

    def test_runtime_error_in_one_rule_does_not_stop_others(self) -> None:
        config = self.write("rt.toml", f"""
            [[rule]]
            name = "Explodes"
            jq_match = 'error("boom")'
            destinations = ["out"]

            [[rule]]
            name = "Create User"
            jq_match = '{CREATE_USER_RULE}'
            destinations = ["out"]

            [[destination]]
            id = "out"
            type = "stdout"
            format = "json"
            """)
        result = tattle("run", "--config", config, TATTLETAIL_TESTDATA)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(result.stdout.decode().splitlines()), 1)
        stderr = result.stderr.decode()
        self.assertIn("Explodes", stderr)
        self.assertIn("boom", stderr)
        self.assertEqual(stderr.count("boom"), 1, "logged once per rule per batch")


class Sinks(TempDirTest):
    def test_file_sink_appends_alerts_and_json_logs(self) -> None:
        out_file = self.path("alerts.jsonl")
        config = self.write("f.toml", f"""
            [[rule]]
            name = "Any IAM call"
            jq_match = 'select(.eventSource == "iam.amazonaws.com")'
            destinations = ["archive"]

            [[destination]]
            id = "archive"
            type = "file"
            path = "alerts.jsonl"   # relative to this config file
            """)
        for _ in range(2):
            result = tattle("--log-format", "json", "run", "--config", config, TATTLETAIL_TESTDATA)
            self.assertEqual(result.returncode, 0, result.stderr)
            for line in result.stderr.decode().splitlines():
                record = json.loads(line)
                self.assertIn(record["level"], ("info", "warning", "error", "debug"))
        with open(out_file, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f]
        with open(TATTLETAIL_TESTDATA, encoding="utf-8") as f:
            expected = sum(1 for r in json.load(f)["Records"] if r.get("eventSource") == "iam.amazonaws.com")
        self.assertGreater(expected, 0)
        self.assertEqual(len(lines), 2 * expected)
        self.assertTrue(all(a["destination"] == "archive" for a in lines))


class Demo(unittest.TestCase):
    def test_demo_config_prints_alerts_from_the_samples(self) -> None:
        result = tattle("run", "--config", os.path.join(SOURCE_DIR, "configs", "demo.toml"))
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.decode().splitlines()
        self.assertGreaterEqual(len(lines), 10)
        self.assertTrue(any("[Create User]" in line and "username: malicious-iam-user" in line for line in lines))
        self.assertRegex(result.stderr.decode(), r"skipped .*CloudTrail-Digest.*digest file")


if __name__ == "__main__":
    require_tattle_bin()
    unittest.main(verbosity=2)
