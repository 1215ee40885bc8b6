"""Hostile rules through the real binary (TATTLE_BIN): libjq runs in the rule evaluator
process under [limits] max_rule_cpu_ms / max_rule_memory_bytes.

A team's rule that never ends or eats memory is stopped on the first event that makes
it, disabled, logged, and reported to that team's own destination; every other rule's
alerts are exactly what they are without it. `tattle check` and `tattle test` stop such a
rule on its own test events before it ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from tattle_process import SAMPLES_DIR as SAMPLES, ScratchDirTestCase, run_tattle, start_tattle  # noqa: E402

ROOT = """
bundles = ["red.toml"]

[limits]
max_rule_cpu_ms = {cpu_ms}
max_rule_memory_bytes = {memory}

[[destination]]
id = "security"
type = "file"
path = "security.jsonl"

[[rule]]
name = "Create User"
jq_match = 'select(.eventName == "CreateUser") | "username: \\(.responseElements.user.userName)"'
destinations = ["security"]

[[rule]]
name = "Errors"
jq_match = 'select(.errorCode != null) | {{code: .errorCode, user: .userIdentity.arn}}'
destinations = ["security"]

[[rule]]
name = "Any root"
jq_match = 'select(any(.userIdentity.type; . == "Root"))'
destinations = ["security"]
"""

RED_HEAD = """
team = "red"

[[destination]]
id = "alerts"
type = "file"
path = "red.jsonl"

[[rule]]
id = "secret-created"
name = "Secret created"
jq_match = 'select(.eventName == "CreateSecret") | "secret \\(.requestParameters.name)"'
destinations = ["alerts"]

[[rule.test]]
event = '{"eventName": "CreateSecret", "requestParameters": {"name": "vault"}}'
match = true
annotation = "secret vault"
"""

HOSTILE = {
    "loops": "select(.eventName != null) | def f: f; f",
    "hoards": "select(.eventName != null) | [range(1e9)] | length > 0",
}


def hostile_rules(names: list[str], with_tests: bool = False) -> str:
    text = ""
    for name in names:
        text += f"""
[[rule]]
id = "{name}"
name = "Rule that {name}"
jq_match = '{HOSTILE[name]}'
destinations = ["alerts"]
"""
        if with_tests:
            text += """
[[rule.test]]
event = '{"eventName": "CreateUser"}'
match = true
"""
    return text


def read_alerts(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


class HostileRules(ScratchDirTestCase):
    scratch_prefix = "tattle_hostile_"

    def write_config(self, hostile: list[str], cpu_ms: int = 300, memory: int = 64 << 20,
                     with_tests: bool = False) -> str:
        with open(os.path.join(self.dir, "red.toml"), "w") as out:
            out.write(RED_HEAD + hostile_rules(hostile, with_tests))
        root = os.path.join(self.dir, "root.toml")
        with open(root, "w") as out:
            out.write(ROOT.format(cpu_ms=cpu_ms, memory=memory))
        return root

    def run_samples(self, hostile: list[str], **settings) -> tuple[subprocess.CompletedProcess, float]:
        for name in ("security.jsonl", "red.jsonl"):
            if os.path.exists(os.path.join(self.dir, name)):
                os.remove(os.path.join(self.dir, name))
        config = self.write_config(hostile, **settings)
        started = time.monotonic()
        result = run_tattle("run", "--workers", "2", "-c", config, SAMPLES, text=True, timeout=300)
        return result, time.monotonic() - started

    def keyed(self, alerts: list[dict]) -> list[tuple]:
        return sorted((a["rule"]["name"], a["event"].get("eventID"), json.dumps(a.get("annotation"), sort_keys=True))
                      for a in alerts)

    def test_hostile_rules_are_stopped_and_every_other_alert_arrives(self) -> None:
        clean, clean_seconds = self.run_samples([])
        self.assertEqual(clean.returncode, 0, clean.stderr)
        expected_security = self.keyed(read_alerts(os.path.join(self.dir, "security.jsonl")))
        expected_red = self.keyed(read_alerts(os.path.join(self.dir, "red.jsonl")))
        self.assertGreater(len(expected_security), 50)
        self.assertGreater(len(expected_red), 0)

        hostile, hostile_seconds = self.run_samples(["loops", "hoards"])
        self.assertEqual(hostile.returncode, 0, hostile.stderr)
        # The root's destination: not one alert more or less.
        self.assertEqual(self.keyed(read_alerts(os.path.join(self.dir, "security.jsonl"))), expected_security)
        # The team's own destination: its good rule's alerts, and one notice per stopped rule.
        red = read_alerts(os.path.join(self.dir, "red.jsonl"))
        notices = [a for a in red if a["event"].get("eventName") == "RuleDisabled"]
        self.assertEqual(self.keyed([a for a in red if a not in notices]), expected_red)
        self.assertEqual(sorted(a["rule"]["id"] for a in notices), ["red/hoards", "red/loops"])
        for notice in notices:
            self.assertEqual(notice["rule"]["severity"], "high")
            self.assertIn("disabled the rule", notice["title"])
            self.assertIn("the other rules keep running", notice["annotation"]["problem"].lower())
        reasons = {a["rule"]["id"]: a["annotation"]["problem"] for a in notices}
        self.assertIn("more than 300 ms of CPU time", reasons["red/loops"])
        self.assertRegex(reasons["red/hoards"], r"more than (300 ms of CPU time|64 MiB of memory)")
        # Logged once per rule, with where the event came from.
        for rule in ("red/loops", "red/hoards"):
            lines = [line for line in hostile.stderr.splitlines() if f'rule "{rule}" disabled' in line]
            self.assertEqual(len(lines), 1, hostile.stderr)
            self.assertIn("configs/samples/", lines[0])
        # Each rule costs one budget (both workers may meet them at once) plus a restart.
        extra = hostile_seconds - clean_seconds
        print(f"[ measured ] two hostile rules stopped; run took {hostile_seconds:.2f} s against "
              f"{clean_seconds:.2f} s without them (+{extra:.2f} s, budget 0.3 s CPU each)")
        self.assertLess(extra, 30)

    def test_check_and_test_stop_the_rule_on_its_test_events(self) -> None:
        config = self.write_config(["loops"], cpu_ms=200, with_tests=True)
        check = run_tattle("check", "-c", config, text=True, timeout=120)
        self.assertEqual(check.returncode, 2, check.stdout + check.stderr)
        output = check.stdout + check.stderr
        self.assertRegex(output, r'red\.toml:\d+.*rule "red/loops" was stopped on its test event')
        self.assertIn("ran for more than 200 ms of CPU time", output)

        tested = run_tattle("test", config, text=True, timeout=120)
        self.assertEqual(tested.returncode, 1, tested.stdout + tested.stderr)
        fail_lines = [line for line in tested.stdout.splitlines() if line.startswith("FAIL")]
        self.assertEqual(len(fail_lines), 1, tested.stdout)
        self.assertIn("red/loops", fail_lines[0])
        self.assertIn("the rule was stopped: it ran for more than 200 ms of CPU time", tested.stdout)

        good = self.write_config([], with_tests=True)
        check = run_tattle("check", "-c", good, text=True, timeout=120)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertIn("rule budget (300 ms CPU, 64 MiB per rule and event)", check.stdout)

    def test_a_title_that_never_ends_is_stopped_and_its_alerts_go_out_untitled(self) -> None:
        config = self.write_config([], cpu_ms=200)
        with open(os.path.join(self.dir, "red.toml"), "a") as out:
            out.write("""
[[rule]]
id = "titled"
name = "Titled"
jq_match = 'select(.eventName == "CreateSecret")'
title = 'def f: f; f'
destinations = ["alerts"]
""")
        result = run_tattle("run", "--workers", "2", "-c", config, SAMPLES, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        red = read_alerts(os.path.join(self.dir, "red.jsonl"))
        notices = [a for a in red if a["event"].get("eventSource") == "tattle.internal"]
        titled = [a for a in red if a["rule"]["id"] == "red/titled" and a not in notices]
        created = [a for a in red if a["rule"]["id"] == "red/secret-created"]
        self.assertGreater(len(created), 0)
        self.assertEqual(len(titled), len(created))  # same events, every alert delivered
        self.assertTrue(all("title" not in a for a in titled))
        disabled = [line for line in result.stderr.splitlines() if 'rule "red/titled": title disabled' in line]
        self.assertEqual(len(disabled), 1, result.stderr)
        self.assertIn("ran for more than 200 ms of CPU time", disabled[0])
        # The team hears of it from tattle: exactly one alert, of that rule, naming the part and why.
        self.assertEqual(len(notices), 1, notices)
        notice = notices[0]
        self.assertEqual(notice["rule"]["id"], "red/titled")
        self.assertEqual(notice["rule"]["severity"], "high")
        self.assertEqual(notice["title"], 'tattle disabled the title of the rule "Titled"')
        self.assertEqual(notice["event"]["eventName"], "RuleExpressionDisabled")
        self.assertEqual(notice["event"]["tattle"]["expression"], "title")
        problem = notice["annotation"]["problem"]
        self.assertIn("the rule's title was disabled: it ran for more than 200 ms of CPU time", problem)
        self.assertIn("its alerts go out without a title", problem)
        self.assertIn("configs/samples/", problem)
        security = read_alerts(os.path.join(self.dir, "security.jsonl"))
        self.assertGreater(len(security), 50)
        self.assertFalse([a for a in security if a["event"].get("eventSource") == "tattle.internal"])

        with open(os.path.join(self.dir, "red.toml"), "a") as out:
            out.write("""
[[rule.test]]
event = '{"eventName": "CreateSecret"}'
match = true
""")
        check = run_tattle("check", "-c", config, text=True, timeout=120)
        self.assertEqual(check.returncode, 2, check.stdout + check.stderr)
        self.assertRegex(check.stdout + check.stderr,
                         r'red\.toml:\d+:\d+: rule "red/titled": title was stopped on a test event: it ran for more')

    def test_the_evaluator_does_not_outlive_tattle(self) -> None:
        # A rule looping in the evaluator, a budget far away, and tattle killed outright:
        # the evaluator must not stay behind spinning a core.
        config = self.write_config(["loops"], cpu_ms=600000)
        tattle = start_tattle("run", "--workers", "1", "-c", config, SAMPLES,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        evaluator = None
        deadline = time.monotonic() + 60
        while evaluator is None and time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as stat:
                        parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        arguments = cmdline.read().split(b"\0")
                except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                    continue
                if parent == tattle.pid and b"__rule-evaluator" in arguments:
                    evaluator = int(pid)
            time.sleep(0.05)
        self.assertIsNotNone(evaluator, "no rule evaluator started")
        tattle.kill()
        tattle.wait(timeout=30)
        gone_by = time.monotonic() + 10
        while os.path.exists(f"/proc/{evaluator}") and time.monotonic() < gone_by:
            try:
                os.waitpid(evaluator, os.WNOHANG)  # reaped by init, not us; tolerate either way
            except ChildProcessError:
                pass
            time.sleep(0.05)
        alive = os.path.exists(f"/proc/{evaluator}")
        if alive:
            with open(f"/proc/{evaluator}/stat") as stat:
                alive = stat.read().rsplit(")", 1)[1].split()[0] != "Z"
        self.assertFalse(alive, "the rule evaluator outlived tattle")

    def test_the_budget_keys_are_checked(self) -> None:
        config = self.write_config([], cpu_ms=5)
        check = run_tattle("check", "-c", config, text=True, timeout=60)
        self.assertEqual(check.returncode, 2)
        self.assertRegex(check.stdout + check.stderr,
                         r"root\.toml:\d+:\d+: limits\.max_rule_cpu_ms must be an integer from 10 to 600000")


if __name__ == "__main__":
    unittest.main(verbosity=2)
