#!/usr/bin/env python3
"""Generate a CloudTrail benchmark corpus from real events.

Reads the CloudTrail logs under ../shared/data/cloudtrail ({"Records": [...]} files,
plain or gzip: invictus-ir/aws_dataset, MIT, ~2,900 real events of a simulated attack;
the trailscraper and CloudTrail user guide examples) and writes N gzip files of E
events each into OUT_DIR, shaped like CloudTrail's own deliveries ({"Records": [...]},
named <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 chars>.json.gz), and
OUT_DIR/stats.json (events, bytes, eventName counts) for checks on the matches.
With --single-bytes B it writes one file instead, of at least B bytes uncompressed.

Every output event is a copy of a real event with a fresh eventID (uuid4) and its
eventTime shifted: file i covers the source hour moved forward by i hours. Events
are drawn in a shuffled order; the output is fully determined by --seed (same seed,
same bytes). No event shapes are invented.

Usage: make_corpus.py OUT_DIR [--files 10] [--events-per-file 2000] [--seed 1]
                              [--single-bytes B] [--source DIR]
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

DEFAULT_SOURCE = "/work/shared/data/cloudtrail"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def default_source() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    cand = os.path.join(repo, "..", "shared", "data", "cloudtrail")
    return os.path.normpath(cand) if os.path.isdir(cand) else DEFAULT_SOURCE


def load_events(source: str) -> list[dict]:
    events = []
    seen = set()
    paths = glob.glob(os.path.join(source, "**", "*.json"), recursive=True)
    paths += glob.glob(os.path.join(source, "**", "*.json.gz"), recursive=True)
    for path in sorted(paths):
        opener = gzip.open if path.endswith(".gz") else open
        try:
            with opener(path, "rb") as fh:
                doc = json.load(fh)
        except ValueError:
            continue  # JSON Lines samples and the like: not log files
        if not (isinstance(doc, dict) and isinstance(doc.get("Records"), list)):
            continue
        for record in doc["Records"]:
            # The same log file is stored plain and gzipped: count its events once.
            key = json.dumps(record, sort_keys=True)
            if isinstance(record, dict) and key not in seen:
                seen.add(key)
                events.append(record)
    # A stable order independent of the file system.
    events.sort(key=lambda r: (r.get("eventTime", ""), r.get("eventID", "")))
    return events


def shift_time(value, delta: dt.timedelta):
    try:
        t = dt.datetime.strptime(value, TIME_FORMAT)
    except (TypeError, ValueError):
        return value
    return (t + delta).strftime(TIME_FORMAT)


class Replicator:
    """Copies of the real events, drawn in a shuffled order, with fresh ids and times."""

    def __init__(self, events: list[dict], seed: int):
        self.events = events
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def next(self, delta: dt.timedelta) -> dict:
        if not self.order:
            self.order = list(range(len(self.events)))
            self.rng.shuffle(self.order)
        ev = json.loads(json.dumps(self.events[self.order.pop()]))  # deep copy
        ev["eventID"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        ev["eventTime"] = shift_time(ev.get("eventTime"), delta)
        return ev

    def file_name(self, first: dict, stamp: str) -> str:
        account = str(first.get("recipientAccountId") or "123456789012")
        region = str(first.get("awsRegion") or "us-east-1")
        suffix = "".join(self.rng.choice(string.ascii_letters + string.digits) for _ in range(16))
        return f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz"


class Stats:
    def __init__(self):
        self.events = 0
        self.bytes = 0
        self.event_names: dict[str, int] = {}

    def add(self, record: dict) -> None:
        self.events += 1
        name = record.get("eventName")
        if isinstance(name, str):
            self.event_names[name] = self.event_names.get(name, 0) + 1

    def write(self, out_dir: str, files: int) -> None:
        with open(os.path.join(out_dir, "stats.json"), "w") as fh:
            json.dump({"files": files, "events": self.events, "bytes": self.bytes,
                       "event_names": self.event_names}, fh, indent=1, sort_keys=True)


def write_files(args, replicator: Replicator, base: dt.datetime, stats: Stats) -> None:
    for i in range(args.files):
        delta = dt.timedelta(hours=i)
        records = [replicator.next(delta) for _ in range(args.events_per_file)]
        records.sort(key=lambda r: r.get("eventTime", ""))
        name = replicator.file_name(records[0], (base + delta).strftime("%Y%m%dT%H%MZ"))
        payload = json.dumps({"Records": records}, separators=(",", ":")).encode()
        for record in records:
            stats.add(record)
        stats.bytes += len(payload)
        # mtime=0 keeps the gzip bytes deterministic.
        with open(os.path.join(args.out_dir, name), "wb") as fh:
            fh.write(gzip.compress(payload, compresslevel=6, mtime=0))


def write_single(args, replicator: Replicator, base: dt.datetime, stats: Stats) -> None:
    """One log file of at least --single-bytes, written as it is generated."""
    delta = dt.timedelta(0)
    first = replicator.next(delta)
    name = replicator.file_name(first, base.strftime("%Y%m%dT%H%MZ"))
    with gzip.GzipFile(os.path.join(args.out_dir, name), "wb", compresslevel=6, mtime=0) as out:
        def put(data: bytes) -> None:
            out.write(data)
            stats.bytes += len(data)
        put(b'{"Records":[')
        record = first
        while True:
            stats.add(record)
            put(json.dumps(record, separators=(",", ":")).encode())
            if stats.bytes >= args.single_bytes:
                break
            put(b",")
            record = replicator.next(delta)
        put(b"]}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--events-per-file", type=int, default=2000)
    ap.add_argument("--single-bytes", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--source", default=default_source())
    args = ap.parse_args(argv)

    events = load_events(args.source)
    if not events:
        print(f"make_corpus: no CloudTrail events under {args.source}", file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    first = min(e.get("eventTime", "9999") for e in events)
    base = dt.datetime.strptime(first, TIME_FORMAT)
    replicator = Replicator(events, args.seed)
    stats = Stats()
    if args.single_bytes > 0:
        write_single(args, replicator, base, stats)
        files = 1
    else:
        write_files(args, replicator, base, stats)
        files = args.files
    stats.write(args.out_dir, files)
    print(f"make_corpus: wrote {files} file(s), {stats.events} events, {stats.bytes} bytes "
          f"to {args.out_dir} (from {len(events)} real events)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
