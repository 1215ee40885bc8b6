#!/usr/bin/env python3
"""Generate a CloudTrail benchmark corpus from real events.

Reads the invictus-ir/aws_dataset CloudTrail logs (MIT licence; 55 files, ~2,900
real events of a simulated attack) and writes N gzip files of E events each into
OUT_DIR, shaped like CloudTrail's own deliveries ({"Records": [...]}, named
<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 chars>.json.gz).

Every output event is a copy of a real event with a fresh eventID (uuid4) and its
eventTime shifted: file i covers the source hour moved forward by i hours. Events
are drawn in a shuffled order; the output is fully determined by --seed (same seed,
same bytes). No event shapes are invented.

Usage: make_corpus.py OUT_DIR [--files 10] [--events-per-file 2000] [--seed 1]
                              [--source DIR]
Default: 10 files x 2,000 events = 20,000 events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import json
import os
import random
import string
import sys
import uuid

DEFAULT_SOURCE = "/work/shared/data/cloudtrail/invictus-ir_aws_dataset/CloudTrail"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def default_source() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    cand = os.path.join(repo, "..", "shared", "data", "cloudtrail",
                        "invictus-ir_aws_dataset", "CloudTrail")
    return os.path.normpath(cand) if os.path.isdir(cand) else DEFAULT_SOURCE


def load_events(source: str) -> list[dict]:
    events = []
    for path in sorted(glob.glob(os.path.join(source, "*.json"))):
        with open(path, "rb") as fh:
            doc = json.load(fh)
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            events.extend(r for r in doc["Records"] if isinstance(r, dict))
    # A stable order independent of the file system.
    events.sort(key=lambda r: (r.get("eventTime", ""), r.get("eventID", "")))
    return events


def shift_time(value, delta: dt.timedelta):
    try:
        t = dt.datetime.strptime(value, TIME_FORMAT)
    except (TypeError, ValueError):
        return value
    return (t + delta).strftime(TIME_FORMAT)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--events-per-file", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", default=default_source())
    args = ap.parse_args(argv)

    events = load_events(args.source)
    if not events:
        print(f"make_corpus: no CloudTrail events under {args.source}", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    first = min(e.get("eventTime", "9999") for e in events)
    base = dt.datetime.strptime(first, TIME_FORMAT)

    order: list[int] = []
    total = 0
    for i in range(args.files):
        delta = dt.timedelta(hours=i)
        records = []
        for _ in range(args.events_per_file):
            if not order:
                order = list(range(len(events)))
                rng.shuffle(order)
            src = events[order.pop()]
            ev = json.loads(json.dumps(src))          # deep copy
            ev["eventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            ev["eventTime"] = shift_time(ev.get("eventTime"), delta)
            records.append(ev)
        records.sort(key=lambda r: r.get("eventTime", ""))
        account = str(records[0].get("recipientAccountId") or "123456789012")
        region = str(records[0].get("awsRegion") or "us-east-1")
        stamp = (base + delta).strftime("%Y%m%dT%H%MZ")
        suffix = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(16))
        name = f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"
        payload = json.dumps({"Records": records}, separators=(",", ":")).encode()
        # mtime=0 keeps the gzip bytes deterministic.
        with open(os.path.join(args.out_dir, name), "wb") as fh:
            fh.write(gzip.compress(payload, compresslevel=6, mtime=0))
        total += len(records)
    print(f"make_corpus: wrote {args.files} files, {total} events to {args.out_dir}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
