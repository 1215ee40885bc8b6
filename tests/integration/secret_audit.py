"""The suite-wide secret audit: run by ctest after every integration test (the fixture
secret_audit's cleanup).

Each integration test runs tattle through tests/support/audited_tattle.sh, which copies
everything tattle prints to AUDIT_DIR/PID.out and writes the secret-bearing variables of its
environment (the moto user's AWS secret access key of every AWS test, webhook URLs and
headers given as env: references, ...) to AUDIT_DIR/PID.secrets. No process may print any
form of a secret it was given (tests/support/secret_search.py). The AWS secret access key
of every moto server is checked against every process's output.

    secret_audit.py AUDIT_DIR [--reset]
"""

from __future__ import annotations

import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from secret_search import leaks  # noqa: E402

SHORTEST_SECRET = 8  # shorter values (a region, "true") would be found everywhere


def secrets_of(path: str) -> dict[str, str]:
    secrets = {}
    if not os.path.exists(path):
        return secrets
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            name, _, value = line.rstrip("\n").partition("\t")
            if len(value) >= SHORTEST_SECRET:
                secrets[name] = value
    return secrets


def main() -> int:
    audit_dir = sys.argv[1]
    if sys.argv[2:] == ["--reset"]:
        shutil.rmtree(audit_dir, ignore_errors=True)
        os.makedirs(audit_dir)
        return 0
    processes = sorted(name[:-len(".command")] for name in os.listdir(audit_dir) if name.endswith(".command"))
    secrets_by_pid = {pid: secrets_of(os.path.join(audit_dir, pid + ".secrets")) for pid in processes}
    aws_keys = {}
    for pid in processes:
        for name, value in secrets_by_pid[pid].items():
            if name == "AWS_SECRET_ACCESS_KEY":
                aws_keys[f"AWS_SECRET_ACCESS_KEY of {pid}"] = value
    found = []
    printed_bytes = 0
    for pid in processes:
        output_path = os.path.join(audit_dir, pid + ".out")
        if not os.path.exists(output_path):
            continue  # printed nothing
        with open(output_path, encoding="utf-8", errors="replace") as f:
            output = f.read()
        with open(os.path.join(audit_dir, pid + ".command"), encoding="utf-8", errors="replace") as f:
            command = "tattle " + f.read().strip()
        printed_bytes += len(output)
        secrets = dict(aws_keys, **secrets_by_pid[pid])
        for line in output.splitlines():
            found += [f"{command[:120]}: {leak} in: {line[:300]}" for leak in leaks(line, secrets)]
    given = sum(1 for pid in processes if secrets_by_pid[pid])
    print(f"secret audit: {len(processes)} tattle processes ({given} given secrets in their environment), "
          f"{printed_bytes} bytes printed, {len(set(aws_keys.values()))} distinct AWS secret keys, {len(found)} leaks")
    if len(processes) == 0:
        print("secret audit: no tattle process was audited (TATTLE_BIN is not the audited wrapper?)")
        return 1
    for leak in found[:40]:
        print(leak)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
