"""Secret references that live in AWS, with the real `tattle` binary against moto (signature
checking on): `ssm:` (Parameter Store, SecureString) and `secretsmanager:NAME#key` resolve
at load, the resolved webhook URL is the one alerts go to, a missing parameter is an error
at its file:line naming AWS's code, and no value (nor the AWS secret key) is ever printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from moto_server import OneMotoPerClass  # noqa: E402
from receiver import Receiver  # noqa: E402
from tattle_process import TATTLETAIL_TESTDATA, ScratchDirTestCase, output_of, run_tattle  # noqa: E402

WEBHOOK_TOKEN = "ssmHeldWebhookToken0123456789"   # the secret part of the URL kept in SSM
HMAC_SECRET = "smHeldHmacSecret0123456789"         # one key of a JSON secret in Secrets Manager
HEADER_SECRET = "Bearer smHeldWholeSecret0123456789"


class AwsSecretsTest(OneMotoPerClass, ScratchDirTestCase):
    scratch_prefix = "tattle_aws_secrets_"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.ssm = cls.moto.client("ssm")
        cls.secrets = cls.moto.client("secretsmanager")

    def setUp(self) -> None:
        super().setUp()
        self.receiver = Receiver(self.dir)
        self.url = f"http://127.0.0.1:{self.receiver.port}/hooks/{WEBHOOK_TOKEN}"
        self.ssm.put_parameter(Name="/tattle/webhook", Value=self.url, Type="SecureString", Overwrite=True)
        try:
            self.secrets.create_secret(Name="prod/webhook", SecretString=json.dumps(
                {"hmac": HMAC_SECRET, "unused": "not-shown-either-0123"}))
            self.secrets.create_secret(Name="prod/header", SecretString=HEADER_SECRET)
        except self.secrets.exceptions.ResourceExistsException:
            pass
        self.printed = ""

    def tearDown(self) -> None:
        self.receiver.stop()
        for secret in (WEBHOOK_TOKEN, HMAC_SECRET, HEADER_SECRET, self.moto.secret_access_key):
            self.assertNotIn(secret, self.printed, "a secret was printed")
        super().tearDown()

    def config(self, url_reference: str) -> str:
        return self.write("tattle.toml", f"""\
                spool_dir = "spool"

                [[rule]]
                name = "Create User"
                jq_match = 'select(.eventName == "CreateUser")'
                destinations = ["hook"]

                [[destination]]
                id = "hook"
                type = "webhook"
                url = "{url_reference}"
                hmac_secret = "secretsmanager:prod/webhook#hmac"
                headers = {{ Authorization = "secretsmanager:prod/header" }}
                allow_plain_http = true
                """)

    def tattle(self, *args: str) -> subprocess.CompletedProcess:
        result = run_tattle("--log-level", "trace", *args, timeout=120, env=self.moto.tattle_env(home=self.dir))
        self.printed += output_of(result)
        return result

    def test_check_resolves_every_reference_and_prints_no_value(self) -> None:
        result = self.tattle("check", "--config", self.config("ssm:/tattle/webhook"))
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertIn("hook (webhook)", result.stdout.decode())
        self.assertTrue(result.stdout.decode().endswith("ok\n"))

    def test_run_sends_to_the_resolved_url_with_the_resolved_secrets(self) -> None:
        result = self.tattle("run", "--config", self.config("ssm:/tattle/webhook"), TATTLETAIL_TESTDATA)
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        requests = self.receiver.requests()
        self.assertEqual(len(requests), 1)
        self.assertEqual(requests[0]["path"], f"/hooks/{WEBHOOK_TOKEN}")
        headers = {name.lower(): value for name, value in requests[0]["headers"]}
        self.assertEqual(headers["authorization"], HEADER_SECRET)
        self.assertTrue(headers["x-tattle-signature"].startswith("sha256="))
        # The signature was made with the key picked from the JSON secret.
        import hashlib
        import hmac
        expected = hmac.new(HMAC_SECRET.encode(), f"{headers['x-tattle-timestamp']}.{requests[0]['body']}".encode(),
                            hashlib.sha256).hexdigest()
        self.assertEqual(headers["x-tattle-signature"], "sha256=" + expected)

    def test_parameter_arn_resolves(self) -> None:
        arn = "arn:aws:ssm:us-east-1:123456789012:parameter/tattle/webhook"
        result = self.tattle("check", "--config", self.config("ssm:" + arn))
        self.assertEqual(result.returncode, 0, result.stderr.decode())

    def test_missing_parameter_is_an_error_at_its_line_with_awss_code(self) -> None:
        config = self.config("ssm:/tattle/missing")
        result = self.tattle("check", "--config", config)
        self.assertEqual(result.returncode, 2, result.stdout.decode())
        stderr = result.stderr.decode()
        self.assertIn(f"{config}:11:", stderr)  # the url = line
        self.assertIn('"url" refers to ssm:/tattle/missing: ssm:GetParameter: ParameterNotFound', stderr)
        self.assertIn("1 problem", stderr)  # the other references resolved

    def test_wrong_aws_key_is_refused_without_printing_it(self) -> None:
        config = self.config("ssm:/tattle/webhook")
        env = self.moto.tattle_env(home=self.dir, AWS_SECRET_ACCESS_KEY="wrongSecretAccessKey0123456789")
        result = run_tattle("--log-level", "trace", "check", "--config", config, timeout=120, env=env)
        output = output_of(result)
        self.printed += output
        self.assertEqual(result.returncode, 2, output)
        self.assertIn("SignatureDoesNotMatch", output)
        self.assertNotIn("wrongSecretAccessKey0123456789", output)


if __name__ == "__main__":
    unittest.main()
