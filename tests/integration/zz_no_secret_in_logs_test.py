"""No secret in anything tattle prints or writes, in every mode that handles secrets.

Known secret values, given every way a config can give them (literal, env:, file:, ssm:,
secretsmanager:#key) for every kind of secret the sinks take (Slack webhook URLs, a
PagerDuty routing key, a webhook URL, its headers and HMAC secret) plus the AWS secret
access key of the environment, go through `tattle check` (a valid config and a broken one),
`tattle run` with deliveries that succeed and deliveries that fail (receivers that answer
500 and echo every secret back in their error bodies, and a receiver that is down),
`tattle spool list` (text and JSON), `tattle spool replay` (failing, then succeeding) and
`tattle plugins`, at trace level in text and JSON log formats. Everything they print, and
every file they leave in the spool and state directories, is searched for each secret,
for each secret URL's path, and for each long token inside a URL.

Every example config of the repository (configs/**: each root config, with its bundles)
goes through `tattle check`, `tattle run` and `tattle spool list` the same way, its
destinations turned into webhooks whose URL, header and HMAC secret are secret references
to distinctive values, delivering to a receiver that fails and echoes them.

The search itself is checked first against commands that do leak (echo), so this test
cannot pass by searching badly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import re
import textwrap
import time
import tomllib
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from moto_server import MotoServer  # noqa: E402
from receiver import Receiver, free_port, make_test_ca  # noqa: E402
from secret_search import leaks  # noqa: E402
from tattle_process import (SOURCE_DIR, TATTLETAIL_TESTDATA, ScratchDirTestCase, followed_file_source,  # noqa: E402
                            run_tattle, start_tattle)

# The tokens are what makes each URL a credential; each is long and unlike any other text.
SLACK_ENV_TOKEN = "slackEnvToken7f3a9c2e1b"
SLACK_FILE_TOKEN = "slackFileToken4d8e6a0f2c"
SLACK_SSM_TOKEN = "slackSsmToken9b1c5e7a3d"
WEBHOOK_TOKEN = "webhookLiteralToken2e4f6a8c0b"
PAGERDUTY_KEY = "pdRoutingKeyLiteral5c7e9a1b3d"
HEADER_VALUE = "Bearer headerEnvSecret8a6c4e2f0d"
HMAC_SECRET = "hmacFileSecret3b5d7f9a1c"
API_KEY_SECRET = "smApiKeySecret6e8a0c2e4f"  # a key of a JSON secret in Secrets Manager
EXAMPLE_URL_TOKEN = "exampleUrlToken1a3c5e7b9d"
EXAMPLE_HEADER = "Bearer exampleHeaderSecret0f2d4b6a8c"
EXAMPLE_HMAC = "exampleHmacSecret9e7c5a3f1b"


class NoSecretInLogsTest(ScratchDirTestCase):
    scratch_prefix = "tattle_no_secret_"

    maxDiff = None

    def setUp(self) -> None:
        super().setUp()
        self.ca_dir = os.path.join(self.dir, "ca")
        make_test_ca(self.ca_dir)
        self.receivers: list[Receiver] = []
        self.outputs: list[tuple[str, str]] = []  # (what, text) of everything to search
        self.moto = MotoServer().__enter__()

    def tearDown(self) -> None:
        for receiver in self.receivers:
            receiver.stop()
        self.moto.__exit__(None, None, None)
        super().tearDown()

    def receiver(self, name: str, script: list | None = None, tls: bool = True) -> Receiver:
        receiver = Receiver(self.dir, f"{name}-requests", script, ca_dir=self.ca_dir if tls else None)
        self.receivers.append(receiver)
        return receiver

    # ---- the leak detector, checked against commands that leak -------------------------

    def test_the_search_finds_leaks_in_a_leaking_command(self) -> None:
        secrets = {"url": "https://hooks.example/services/T0/B0/echoedToken0123456789", "key": PAGERDUTY_KEY}
        for leaking, expected in ((["echo", "POST https://hooks.example/services/T0/B0/echoedToken0123456789"], "url"),
                                  (["echo", "path /services/T0/B0/echoedToken0123456789 refused"], "url"),
                                  (["echo", "receiver said: token echoedToken0123456789 invalid"], "url"),
                                  (["sh", "-c", f"echo routing key {PAGERDUTY_KEY} >&2"], "key"),
                                  (["echo", f"receiver said: {PAGERDUTY_KEY[:14]}..."], "key")):
            result = subprocess.run(leaking, capture_output=True, text=True, check=True)
            found = leaks(result.stdout + result.stderr, secrets)
            self.assertTrue(any(f.startswith(expected + ":") for f in found), (leaking, found))
        self.assertEqual(leaks("POST https://hooks.example/<redacted> failed: HTTP 500", secrets), [])

    # ---- tattle in every mode ------------------------------------------------------------

    def tattle(self, what: str, *args: str, env: dict, expect: int | tuple = 0) -> str:
        for log_format in ("text", "json"):
            result = run_tattle("--log-format", log_format, "--log-level", "trace", *args, timeout=300, env=env)
            printed = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
            self.outputs.append((f"{what} ({log_format})", printed))
            expected = expect if isinstance(expect, tuple) else (expect,)
            self.assertIn(result.returncode, expected, f"{what}: {printed[-3000:]}")
        return printed

    def collect_files(self, what: str, directory: str) -> int:
        count = 0
        for root, _, names in os.walk(directory):
            for name in names:
                relative = os.path.relpath(os.path.join(root, name), self.dir)
                self.outputs.append((f"{what} name", relative))  # a spool file's name is searched too
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    self.outputs.append((f"{what} {relative}", f.read()))
                count += 1
        return count

    def write_config(self, name: str, slack: Receiver, pagerduty: Receiver, webhook: Receiver,
                     ssm_slack_port: int, delivery: str) -> str:
        ca_file = os.path.join(self.ca_dir, "ca.pem")
        path = self.write(name, f"""\
                spool_dir = "spool"
                state_dir = "state-{name}"

                [[rule]]
                name = "Create User"
                jq_match = 'select(.eventName == "CreateUser") | "username: \\(.responseElements.user.userName)"'
                destinations = ["slack env", "slack file", "slack ssm", "pagerduty", "hook"]

                [[destination]]
                id = "slack env"
                type = "slack_webhook"
                webhook_url = "env:TATTLE_TEST_SLACK_URL"
                ca_file = "{ca_file}"
                delivery = {{ {delivery} }}

                [[destination]]
                id = "slack file"
                type = "slack_webhook"
                webhook_url = "file:slack_url.txt"
                ca_file = "{ca_file}"
                delivery = {{ {delivery} }}

                [[destination]]
                id = "slack ssm"
                type = "slack_webhook"
                webhook_url = "ssm:/tattle/slack-{ssm_slack_port}"
                ca_file = "{ca_file}"
                delivery = {{ {delivery} }}

                [[destination]]
                id = "pagerduty"
                type = "pagerduty"
                routing_key = "{PAGERDUTY_KEY}"
                events_url = "{pagerduty.url('/v2/enqueue')}"
                ca_file = "{ca_file}"
                delivery = {{ {delivery} }}

                [[destination]]
                id = "hook"
                type = "webhook"
                url = "{webhook.url('/hooks/' + WEBHOOK_TOKEN)}"
                allow_plain_http = true
                headers = {{ Authorization = "env:TATTLE_TEST_HEADER", X-Api-Key = "secretsmanager:tattle/api#key" }}
                hmac_secret = "file:hmac.txt"
                delivery = {{ {delivery} }}
                """)
        self.write("slack_url.txt", slack.url(f"/services/TFILE0001/BFILE0001/{SLACK_FILE_TOKEN}") + "\n")
        self.write("hmac.txt", HMAC_SECRET + "\n")
        return path

    def test_no_secret_is_printed_or_written_in_any_mode(self) -> None:
        # Every receiver's error body repeats every secret: a sink or the core that quotes a
        # receiver's answer must scrub them all.
        echo = " ".join([SLACK_ENV_TOKEN, SLACK_FILE_TOKEN, SLACK_SSM_TOKEN, WEBHOOK_TOKEN, PAGERDUTY_KEY,
                         HEADER_VALUE, HMAC_SECRET, API_KEY_SECRET])
        good_https = self.receiver("good-https", [{"status": 200, "body": "ok"}])
        good_http = self.receiver("good-http", [{"status": 200, "body": "ok"}], tls=False)
        bad_https = self.receiver("bad-https", [{"status": 500, "body": "trouble with " + echo}])
        bad_http = self.receiver("bad-http", [{"status": 500, "body": "trouble with " + echo}], tls=False)
        down_port = free_port()  # nobody listens: connection refused, the URL in the error

        ssm = self.moto.client("ssm")
        for port, receiver_url in ((good_https.port, good_https.url(f"/services/TSSM0001/BSSM0001/{SLACK_SSM_TOKEN}")),
                                   (down_port, f"https://127.0.0.1:{down_port}/services/TSSM0001/BSSM0001/"
                                               f"{SLACK_SSM_TOKEN}")):
            ssm.put_parameter(Name=f"/tattle/slack-{port}", Value=receiver_url, Type="SecureString")
        self.moto.client("secretsmanager").create_secret(Name="tattle/api", SecretString=json.dumps(
            {"key": API_KEY_SECRET}))

        secrets = {
            "slack env url": good_https.url(f"/services/TENV0001/BENV0001/{SLACK_ENV_TOKEN}"),
            "slack file url": good_https.url(f"/services/TFILE0001/BFILE0001/{SLACK_FILE_TOKEN}"),
            "slack ssm url": good_https.url(f"/services/TSSM0001/BSSM0001/{SLACK_SSM_TOKEN}"),
            "webhook url": good_http.url(f"/hooks/{WEBHOOK_TOKEN}"),
            "pagerduty routing key": PAGERDUTY_KEY,
            "webhook header": HEADER_VALUE,
            "webhook hmac secret": HMAC_SECRET,
            "secrets manager key": API_KEY_SECRET,
            "aws secret access key": self.moto.secret_access_key,
        }
        for token in (SLACK_ENV_TOKEN, SLACK_FILE_TOKEN, SLACK_SSM_TOKEN, WEBHOOK_TOKEN):
            secrets[f"token {token[:10]}"] = token

        def environment(slack: Receiver) -> dict:
            return self.moto.tattle_env(
                home=self.dir, TATTLE_TEST_SLACK_URL=slack.url(f"/services/TENV0001/BENV0001/{SLACK_ENV_TOKEN}"),
                TATTLE_TEST_HEADER=HEADER_VALUE)

        fast = "max_attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20"
        good = self.write_config("good.toml", good_https, good_https, good_http, good_https.port, fast)
        good_env = environment(good_https)

        self.tattle("check", "check", "--config", good, env=good_env)
        self.tattle("plugins", "plugins", env=good_env)
        self.tattle("plugins --json", "plugins", "--json", env=good_env)
        self.tattle("run (succeeding)", "run", "--config", good, TATTLETAIL_TESTDATA, env=good_env)
        self.assertEqual(len(good_https.requests()), 4, "three Slack destinations and PagerDuty")
        self.assertEqual(len(good_http.requests()), 1)

        # Failing deliveries: 500s echoing the secrets, and a receiver that is down.
        bad = self.write_config("bad.toml", bad_https, bad_https, bad_http, down_port, fast)
        bad_env = environment(bad_https)
        self.tattle("run (failing)", "run", "--config", bad, TATTLETAIL_TESTDATA, env=bad_env, expect=3)
        self.assertGreater(len(bad_https.requests()), 0)
        self.assertGreater(len(bad_http.requests()), 0)
        listed = self.tattle("spool list", "spool", "list", "--config", bad, env=bad_env)
        self.assertIn("slack ssm", listed)
        self.tattle("spool list --json", "spool", "list", "--json", "--config", bad, env=bad_env)
        self.tattle("spool replay (failing)", "spool", "replay", "--config", bad, env=bad_env, expect=3)
        spooled = self.collect_files("spool file", os.path.join(self.dir, "spool"))
        self.assertEqual(spooled, 5, "one alert for each of the 5 destinations")
        self.serve_and_scrape(bad, bad_env)

        # The receivers are fine again: the replay empties the spool.
        self.tattle("spool replay (succeeding)", "spool", "replay", "--config", good, env=good_env)
        self.assertEqual(self.collect_files("spool file after replay", os.path.join(self.dir, "spool")), 0)
        for name in ("good.toml", "bad.toml"):
            self.collect_files("state file", os.path.join(self.dir, f"state-{name}"))

        # A broken config: problems reported next to secret values.
        broken = os.path.join(self.dir, "broken.toml")
        with open(good, encoding="utf-8") as f:
            text = f.read()
        with open(broken, "w", encoding="utf-8") as f:
            f.write(text.replace('ca_file = "', 'timeout_ms = "soon"\nca_file = "', 1)
                        .replace("env:TATTLE_TEST_HEADER", "env:TATTLE_TEST_UNSET_HEADER")
                        .replace("secretsmanager:tattle/api#key", "secretsmanager:tattle/api#nokey"))
        broken_output = self.tattle("check (broken)", "check", "--config", broken, env=good_env, expect=2)
        self.assertIn("TATTLE_TEST_UNSET_HEADER, which is not set", broken_output)
        self.assertIn("has no key \"nokey\"", broken_output)

        self.assertGreater(len(self.outputs), 20)
        found = []
        for what, text in self.outputs:
            for line in text.splitlines():
                found += [f"{what}: {leak} in: {line[:400]}" for leak in leaks(line, secrets)]
        self.assertEqual(found, [], "secrets found in tattle's output or files:\n" + "\n".join(found[:40]))


    def serve_and_scrape(self, config: str, env: dict) -> None:
        """`tattle serve` over the failing config: its log, and /metrics (whose labels name
        rules, destinations and outcomes) once every alert of the file has settled."""
        daemon_config = os.path.join(self.dir, "serve.toml")
        incoming = os.path.join(self.dir, "incoming")
        os.makedirs(incoming)
        with open(config, encoding="utf-8") as f:
            text = f.read()
        with open(daemon_config, "w", encoding="utf-8") as f:
            text = text.replace('spool_dir = "spool"', 'spool_dir = "spool-serve"', 1)
            f.write(text.replace('state_dir = "state-bad.toml"', 'state_dir = "state-serve"', 1) +
                    followed_file_source("incoming", "state-serve/incoming.checkpoint"))
        shutil.copy(TATTLETAIL_TESTDATA, incoming)
        log_path = os.path.join(self.dir, "serve.log")
        with open(log_path, "wb") as log:
            # The log goes to a file, so that the daemon never blocks on a full pipe.
            process = start_tattle("--log-level", "trace", "serve", "--config", daemon_config,
                                   "--listen", "127.0.0.1:0", "--poll-interval", "0.1",
                                   stdout=log, stderr=subprocess.STDOUT, env=env)

        def printed() -> str:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                return f.read()

        try:
            deadline = time.monotonic() + 120
            metrics = ""
            while "tattle_batches_total{outcome=\"settled\"} 1" not in metrics:
                time.sleep(0.1)
                self.assertIsNone(process.poll(), "the daemon stopped:\n" + printed()[-3000:])
                self.assertLess(time.monotonic(), deadline, "the daemon did not settle the file:\n" + metrics)
                found = re.search(r"listening on (http://127\.0\.0\.1:\d+) ", printed())
                if found:
                    with urllib.request.urlopen(found.group(1) + "/metrics", timeout=30) as response:
                        metrics = response.read().decode()
            self.assertIn('tattle_alerts_total{destination="slack env",outcome="spooled"} 1', metrics)
            self.outputs.append(("serve /metrics", metrics))
        finally:
            process.terminate()
            process.wait(timeout=60)
            self.outputs.append(("serve", printed()))
        self.assertEqual(self.collect_files("spool file of serve", os.path.join(self.dir, "spool-serve")), 5)
        self.collect_files("state file of serve", os.path.join(self.dir, "state-serve"))

    # ---- every example config of the repository --------------------------------------------

    def example_roots(self, configs: str) -> list[str]:
        """The configs a user would run: every TOML file under configs/ that no root loads as a bundle."""
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(configs)
                       for name in names if name.endswith(".toml"))
        bundles = set()
        for path in files:
            with open(path, "rb") as f:
                patterns = tomllib.load(f).get("bundles", [])
            for pattern in patterns:
                directory = os.path.dirname(path)
                bundles.update(os.path.join(directory, os.path.dirname(pattern), name)
                               for name in os.listdir(os.path.join(directory, os.path.dirname(pattern)))
                               if re.fullmatch(re.escape(os.path.basename(pattern)).replace(r"\*", ".*"), name))
        return [path for path in files if path not in bundles]

    def test_no_secret_from_any_example_config(self) -> None:
        echo = " ".join([EXAMPLE_URL_TOKEN, EXAMPLE_HEADER, EXAMPLE_HMAC])
        receiver = self.receiver("examples", [{"status": 500, "body": "trouble with " + echo}], tls=False)
        configs = os.path.join(self.dir, "configs")
        shutil.copytree(os.path.join(SOURCE_DIR, "configs"), configs)
        with open(os.path.join(self.dir, "hmac-example.txt"), "w", encoding="utf-8") as f:
            f.write(EXAMPLE_HMAC + "\n")
        secrets = {"example webhook url": receiver.url(f"/hooks/{EXAMPLE_URL_TOKEN}"),
                   "example header": EXAMPLE_HEADER, "example hmac secret": EXAMPLE_HMAC,
                   "aws secret access key": self.moto.secret_access_key, "url token": EXAMPLE_URL_TOKEN}
        # Every destination (all are stdout in the examples) becomes a webhook of the same id,
        # so the examples' routing is unchanged and every alert meets the secrets.
        webhook = textwrap.dedent(f"""\
            type = "webhook"
            url = "env:TATTLE_EXAMPLE_WEBHOOK_URL"
            allow_plain_http = true
            headers = {{ Authorization = "env:TATTLE_EXAMPLE_HEADER" }}
            hmac_secret = "file:{os.path.join(self.dir, 'hmac-example.txt')}"
            delivery = {{ max_attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
            """)
        roots = self.example_roots(configs)
        self.assertGreaterEqual(len(roots), 4, roots)
        changed = 0
        for path in sorted(os.path.join(root, name) for root, _, names in os.walk(configs)
                           for name in names if name.endswith(".toml")):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            text, count = re.subn(r'^type = "stdout"\n(?:format = "\w+"\n)?', webhook, text, flags=re.M)
            changed += count
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        self.assertGreaterEqual(changed, len(roots))

        env = self.moto.tattle_env(home=self.dir, TATTLE_EXAMPLE_HEADER=EXAMPLE_HEADER,
                                   TATTLE_EXAMPLE_WEBHOOK_URL=secrets["example webhook url"])
        for root in roots:
            name = os.path.relpath(root, configs)
            spool = os.path.join(self.dir, "spool-" + name.replace("/", "-"))
            env_for_root = dict(env, TATTLE_SPOOL_DIR=spool,
                                TATTLE_STATE_DIR=os.path.join(self.dir, "state-" + name.replace("/", "-")))
            checked = self.tattle(f"check {name}", "check", "--explain", "--config", root, env=env_for_root)
            self.assertIn("webhook", checked, name)
            before = len(receiver.requests())
            with open(root, "rb") as f:
                # A rule library without sources reads the example logs beside it.
                inputs = [] if "source" in tomllib.load(f) else [os.path.join(configs, "samples")]
            self.tattle(f"run {name}", "run", "--config", root, *inputs, env=env_for_root, expect=3)
            self.assertGreater(len(receiver.requests()), before, f"{name}: no alert reached the receiver")
            self.tattle(f"spool list {name}", "spool", "list", "--json", "--config", root, env=env_for_root)
            self.assertGreater(self.collect_files(f"spool file of {name}", spool), 0, name)
            self.collect_files(f"state file of {name}", env_for_root["TATTLE_STATE_DIR"])
        for request in receiver.requests():  # the secrets did reach the receiver: they were used
            self.assertIn(EXAMPLE_URL_TOKEN, request.get("path", ""))

        found = []
        for what, text in self.outputs:
            for line in text.splitlines():
                found += [f"{what}: {leak} in: {line[:400]}" for leak in leaks(line, secrets)]
        self.assertEqual(found, [], "secrets found in tattle's output or files:\n" + "\n".join(found[:40]))


if __name__ == "__main__":
    unittest.main()
