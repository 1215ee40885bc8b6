"""moto (python3 -m moto.server) for the integration tests, with signature checking on.

Started with INITIAL_NO_AUTH_ACTION_COUNT=3: the first three calls (CreateUser,
CreateAccessKey, PutUserPolicy) go unauthenticated, every later one must be signed with
the key they create. `MotoServer.tattle_env()` gives tattle that key and the endpoint.

    with MotoServer() as moto:
        moto.bucket_with_files("trail", "AWSLogs/", paths)
        run_tattle("run", ..., timeout=300, env=moto.tattle_env(home=tmpdir))  # tattle_process.py

A test class whose tests share one server inherits OneMotoPerClass (it sets cls.moto).
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

from receiver import free_port

REGION = "us-east-1"
_UNAUTHENTICATED_ACTIONS = 3

_LAUNCHER = """
import logging, os, sys, threading
logging.getLogger('werkzeug').setLevel(logging.ERROR)
def exit_at_eof():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=exit_at_eof, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
"""


class MotoServer:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.access_key_id = None
        self.secret_access_key = None
        self._sqs = None

    def __enter__(self):
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(_UNAUTHENTICATED_ACTIONS))
        # moto exits when its stdin closes, so it never outlives a killed test.
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("moto.server exited at start (is moto installed for python3?)")
                if time.monotonic() > deadline:
                    raise RuntimeError("moto.server did not listen within 60 s")
                time.sleep(0.1)
        self._create_user()
        return self

    def __exit__(self, *exc):
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    def _create_user(self):
        iam = boto3.client("iam", region_name=REGION, endpoint_url=self.url,
                           aws_access_key_id="AKIDBOOTSTRAP", aws_secret_access_key="bootstrap-secret")
        iam.create_user(UserName="tattle")
        key = iam.create_access_key(UserName="tattle")["AccessKey"]
        iam.put_user_policy(UserName="tattle", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]

    def client(self, service):
        """A boto3 client signed with the test user's key (path-style S3)."""
        return boto3.client(service, region_name=REGION, endpoint_url=self.url,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def tattle_env(self, home, **extra):
        """Environment for a tattle process: the user's key, the endpoint, no shared files, no IMDS."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        env.update(HOME=str(home), AWS_ACCESS_KEY_ID=self.access_key_id,
                   AWS_SECRET_ACCESS_KEY=self.secret_access_key, AWS_REGION=REGION,
                   AWS_ENDPOINT_URL=self.url, AWS_EC2_METADATA_DISABLED="true")
        env.update(extra)
        return env

    def bucket_with_files(self, bucket, key_prefix, paths):
        """Creates bucket and puts each file of paths in it as key_prefix + its name."""
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        for path in paths:
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key_prefix + os.path.basename(path), Body=f.read())

    def queue_depth(self, queue_url):
        """(messages waiting, messages received and not yet deleted) in the queue, as SQS counts them."""
        if self._sqs is None:  # one client for all: a test may ask many times a second
            self._sqs = self.client("sqs")
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def api(self, path):
        """moto's own inspection API (/moto-api/...), e.g. the SES and SNS stores."""
        with urllib.request.urlopen(self.url + path, timeout=30) as answer:
            return json.loads(answer.read())


class OneMotoPerClass:
    """Mixin for a unittest.TestCase: one MotoServer (cls.moto) for all the tests of the
    class, started before the first and stopped after the last; starting moto and creating
    its user takes seconds, too long to pay for each test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.moto = MotoServer().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.moto.__exit__(None, None, None)
        super().tearDownClass()
