"""scripts/package-lambda: the zip it writes, unpacked into an empty directory, starts as a
Lambda function does (its `bootstrap`, a clean environment holding only what Lambda sets)
under a local Runtime API, answers an invocation with alerts, and runs on the libraries it
carries, not the build machine's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

from lambda_runtime_api import RuntimeApi  # noqa: E402
from tattle_process import SOURCE_DIR, TATTLE_BIN, ScratchDirTestCase  # noqa: E402

# The real binary: TATTLE_BIN may be the wrapper that audits its output (tests/CMakeLists.txt).
BUILD_DIR = os.path.dirname(os.path.dirname(os.environ.get("TATTLE_AUDITED_BIN", TATTLE_BIN)))


class LambdaPackageTest(ScratchDirTestCase):
    scratch_prefix = "tattle-package-"

    def test_unpacked_zip_serves_an_invocation_on_its_own_libraries(self):
        alerts = os.path.join(self.dir, "alerts.jsonl")
        config = os.path.join(self.dir, "tattle.toml")
        with open(config, "w") as f:
            f.write(textwrap.dedent(f"""
                [[destination]]
                id = "out"
                type = "file"
                path = "{alerts}"

                [[rule]]
                name = "Trail stopped"
                jq_match = 'select(.eventName == "StopLogging")'
                destinations = ["out"]
                """))
        archive = os.path.join(self.dir, "tattle-lambda.zip")
        packaged = subprocess.run([os.path.join(SOURCE_DIR, "scripts", "package-lambda"), "--build-dir", BUILD_DIR,
                                   "--config", config, "--output", archive], capture_output=True, text=True)
        self.assertEqual(packaged.returncode, 0, packaged.stderr)
        with zipfile.ZipFile(archive) as zipped:
            names = set(zipped.namelist())
            self.assertIn("bootstrap", names)
            self.assertIn("bin/tattle", names)
            self.assertIn("tattle.toml", names)
            self.assertIn("lib/tattle/plugins/tattle_sink_file.so", names)
            self.assertTrue(zipped.getinfo("bootstrap").external_attr >> 16 & 0o111, "bootstrap is not executable")
        task_root = os.path.join(self.dir, "task")
        # unzip (not zipfile) keeps the executable bits, as Lambda does.
        subprocess.run(["unzip", "-q", archive, "-d", task_root], check=True)

        event = {"version": "0", "id": "eb-1", "detail-type": "AWS API Call via CloudTrail",
                 "source": "aws.cloudtrail", "account": "123456789012", "region": "us-east-1", "resources": [],
                 "detail": {"eventVersion": "1.08", "eventID": "stop-1", "eventName": "StopLogging",
                            "eventSource": "cloudtrail.amazonaws.com", "awsRegion": "us-east-1",
                            "recipientAccountId": "123456789012"}}
        with RuntimeApi() as api:
            # Only what Lambda itself sets (no PATH to the build, no LD_LIBRARY_PATH).
            environment = {"AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": task_root,
                           "AWS_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "tattle",
                           "PATH": "/usr/local/bin:/usr/bin:/bin", "TZ": ":UTC",
                           "HOME": self.dir, "TATTLE_STATE_DIR": os.path.join(self.dir, "state")}
            with open(os.path.join(self.dir, "log"), "wb") as log:
                process = subprocess.Popen([os.path.join(task_root, "bootstrap")], cwd=task_root, env=environment,
                                           stdout=log, stderr=subprocess.STDOUT)
            try:
                request = api.invoke(event)
                answer = api.result(request, timeout=60)
                with open(f"/proc/{process.pid}/maps") as maps:
                    mapped = {line.split()[-1] for line in maps if line.rstrip().endswith((".so", ".6", ".2", ".3")) or
                              ".so." in line}
            finally:
                process.kill()
                process.wait()
        with open(os.path.join(self.dir, "log"), encoding="utf-8", errors="replace") as f:
            log_text = f.read()
        self.assertEqual(answer["kind"], "response", log_text)
        self.assertEqual(answer["body"]["matches"], 1, log_text)
        with open(alerts) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        self.assertEqual([a["event"]["eventID"] for a in lines], ["stop-1"])
        # The C++ runtime, the C library and OpenSSL all come from the package.
        lib_dir = os.path.join(task_root, "lib") + "/"
        for name in ("libstdc++.so.6", "libc.so.6", "libssl.so.3"):
            paths = [path for path in mapped if os.path.basename(path) == name]
            self.assertTrue(paths, f"{name} is not loaded")
            self.assertTrue(all(path.startswith(lib_dir) for path in paths), f"{name} loaded from {paths}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
