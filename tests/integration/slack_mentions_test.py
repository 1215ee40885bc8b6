"""Event text cannot mention anyone or disguise a link in a Slack message.

CloudTrail fields are attacker-chosen: anyone who can call an AWS API picks the user agent,
the bucket name, the role session name. Slack turns `<!channel>`, `<!here>`, `<@U123>` and
`<https://evil|click>` in message text into mentions and links, so the real binary posts
events carrying them through both message styles (tattle's own layout and a user template)
to a local HTTPS receiver, and every string of every body it receives is searched: no
mention at all, no link but the AWS console's, and each hostile value still shown, escaped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from receiver import Receiver, make_test_ca  # noqa: E402
# Real CloudTrail events (cloudtrail-tattletail's test log), with hostile text put in.
from tattle_process import TATTLETAIL_TESTDATA as TESTDATA, ScratchDirTestCase, run_tattle  # noqa: E402

HOSTILE = {
    "userAgent": "<!channel> aws-cli/2.0",
    "userName": "<@U123> please approve",
    "bucketName": "<https://evil.example/login|click here>",
    "errorMessage": "<!here> <!subteam^S012|oncall> <#C0123|general>",
}

# A mention or a link in Slack markup: `<` then `!`, `@`, `#` or a URL.
MARKUP = re.compile(r"<(?:[!@#]|https?:|mailto:)")
CONSOLE_LINK = re.compile(r"<https://[a-z0-9-]+\.console\.aws\.amazon\.com/")


def strings_in(value, path="$"):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}[{index}]")


class SlackMentionsTest(ScratchDirTestCase):
    scratch_prefix = "tattle_slack_mentions_"

    def setUp(self) -> None:
        super().setUp()
        self.ca_dir = make_test_ca(os.path.join(self.dir, "ca"))
        self.receiver = Receiver(self.dir, ca_dir=self.ca_dir)

    def tearDown(self) -> None:
        self.receiver.stop()
        super().tearDown()

    def write_events(self) -> str:
        with open(TESTDATA, encoding="utf-8") as f:
            event = json.load(f)["Records"][0]
        event["userAgent"] = HOSTILE["userAgent"]
        event["userIdentity"]["userName"] = HOSTILE["userName"]
        event["userIdentity"]["arn"] = "arn:aws:sts::123456789:assumed-role/admin/" + HOSTILE["userName"]
        event["requestParameters"] = {"bucketName": HOSTILE["bucketName"]}
        event["errorCode"] = "AccessDenied"
        event["errorMessage"] = HOSTILE["errorMessage"]
        event["eventName"] = "CreateBucket"
        path = os.path.join(self.dir, "events.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"Records": [event]}, f)
        return path

    def write_config(self) -> str:
        ca_file = os.path.join(self.ca_dir, "ca.pem")
        url = self.receiver.url("")
        return self.write("tattle.toml", f"""\
                state_dir = "state"
                spool_dir = "spool"

                [[rule]]
                name = "Bucket created"
                jq_match = 'select(.eventName == "CreateBucket") | "agent \\(.userAgent), bucket \\(.requestParameters.bucketName)"'
                destinations = ["built-in layout", "own template"]

                [[destination]]
                id = "built-in layout"
                type = "slack_webhook"
                webhook_url = "{url}/services/T0/B0/layout"
                ca_file = "{ca_file}"

                [[destination]]
                id = "own template"
                type = "slack_webhook"
                webhook_url = "{url}/services/T0/B0/template"
                ca_file = "{ca_file}"
                template = '''
                {{"text": "{{{{rule}}}} by {{{{actor}}}} ({{{{user_agent}}}})",
                 "blocks": [
                   {{"type": "section", "text": {{"type": "mrkdwn",
                     "text": "*Agent* {{{{user_agent}}}}\\n*Bucket* {{{{event.requestParameters.bucketName}}}}\\n*Error* {{{{summary.error_message}}}}\\n{{{{annotation}}}}"}}}},
                   {{"type": "context", "elements": [{{"type": "mrkdwn", "text": "{{{{event.userIdentity.userName}}}}"}}]}}
                 ]}}
                '''
                """)

    def test_event_text_mentions_nobody(self) -> None:
        result = run_tattle("run", "--config", self.write_config(), self.write_events(), timeout=120, text=True,
                            cwd=self.dir)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        requests = self.receiver.requests()
        self.assertEqual(sorted(r["path"] for r in requests),
                         ["/services/T0/B0/layout", "/services/T0/B0/template"])

        for request in requests:
            body = json.loads(request["body"])
            self.assertNotIn("link_names", body)
            texts = list(strings_in(body))
            for path, text in texts:
                for match in MARKUP.finditer(text):
                    self.assertIsNotNone(CONSOLE_LINK.match(text, match.start()),
                                         f"{request['path']} {path}: markup from event data in {text!r}")
            everything = "\n".join(text for _, text in texts)
            # The hostile values are shown, as text: escaped, not dropped.
            self.assertIn("&lt;!channel&gt;", everything, request["path"])
            self.assertIn("&lt;https://evil.example/login|click here&gt;", everything, request["path"])
            self.assertIn("&lt;!here&gt;", everything, request["path"])
        template_body = json.loads(next(r["body"] for r in requests if r["path"].endswith("/template")))
        self.assertIn("&lt;@U123&gt;", json.dumps(template_body, ensure_ascii=False))

    def test_the_search_finds_unescaped_markup(self) -> None:
        # The check above must be able to fail: raw mentions and links are found, the
        # console link is not.
        self.assertIsNotNone(MARKUP.search("deploy by <!channel>"))
        self.assertIsNotNone(MARKUP.search("hi <@U123>"))
        self.assertIsNotNone(MARKUP.search("<https://evil|click>"))
        link = "<https://us-east-1.console.aws.amazon.com/cloudtrailv2/home|View>"
        self.assertIsNotNone(CONSOLE_LINK.match(link))
        self.assertIsNone(CONSOLE_LINK.match("<https://evil.example/x.console.aws.amazon.com/|x>"))


if __name__ == "__main__":
    unittest.main()
