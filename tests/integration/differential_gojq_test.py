#!/usr/bin/env python3
"""Differential test: tattle (libjq 1.6) against gojq (cloudtrail-tattletail's engine).

Runs

    TATTLE_BIN run --config configs/rules/cloudtrail.toml FILE...

over every CloudTrail log file under the data directory (.json / .json.gz holding
{"Records": [...]}, found recursively), reads tattle's alerts (one JSON document per
line on stdout: {"rule": {"name": ...}, "event": {...}, "annotation": ..., ...}),
and compares the set of (rule name, event.eventID, annotation) with the set that
gojq_reference.py computes with gojq and tattletail's match semantics.

Values are compared as Python values (key order does not matter; 1 == 1.0).

Test data: /work/shared/data/cloudtrail — invictus-ir/aws_dataset (MIT),
flosell/trailscraper test data (Apache-2.0), AWS CloudTrail user guide examples
(CC-BY-SA-4.0 / MIT-0).

Usage:
    differential_gojq_test.py [TATTLE_BIN] [DATA_DIR] [--rules FILE]
    differential_gojq_test.py --candidate jq [DATA_DIR]     # harness self-check

TATTLE_BIN defaults to $TATTLE_BIN; DATA_DIR to $TATTLE_CLOUDTRAIL_DATA, then
<repo>/../shared/data/cloudtrail, then /work/shared/data/cloudtrail.

A few records in the public data share an eventID with a *different* record (the
user-guide examples reuse IDs; some have no eventID at all). For those IDs the key
(rule, eventID) is ambiguous and tattle may legitimately suppress the second alert
(alert id = hash of rule and event id). For such IDs the test requires tattle's
annotations to be a non-empty subset of the reference's whenever the reference
matched, and nothing when it did not; every other key must match exactly.

Exit status: 0 identical, 1 different (or the reference is too small to mean
anything), 2 setup error.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import gojq_reference as ref  # noqa: E402

MIN_RULES_MATCHING = 25
MIN_MATCHES = 100
SHOW = 20


def default_data_dir() -> str:
    env = os.environ.get("TATTLE_CLOUDTRAIL_DATA")
    if env:
        return env
    for cand in (os.path.join(REPO, "..", "shared", "data", "cloudtrail"),
                 "/work/shared/data/cloudtrail"):
        if os.path.isdir(cand):
            return os.path.normpath(cand)
    return "/work/shared/data/cloudtrail"


# --------------------------------------------------------------------------
# Candidates
# --------------------------------------------------------------------------

def run_tattle(binary: str, rules: str, files: list[str], timeout: float):
    """Run tattle; return (list of (rule, eventID, annotation), duplicates, seconds)."""
    cmd = [binary, "run", "--config", rules, *files]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise SetupError(f"tattle binary not found: {binary}")
    except subprocess.TimeoutExpired:
        raise SetupError(f"tattle did not finish within {timeout:.0f}s")
    elapsed = time.perf_counter() - t0
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        tail = "\n".join(stderr.splitlines()[-20:])
        raise SetupError(f"tattle exited with status {proc.returncode}:\n{tail}")

    alerts = []
    for lineno, line in enumerate(proc.stdout.decode().splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise SetupError(f"tattle stdout line {lineno} is not JSON ({exc}): {line[:200]}")
        if not isinstance(doc, dict):
            raise SetupError(f"tattle stdout line {lineno} is not an object: {line[:200]}")
        rule = doc.get("rule")
        name = rule.get("name") if isinstance(rule, dict) else rule
        event = doc.get("event")
        if not isinstance(name, str) or not isinstance(event, dict):
            raise SetupError(f"tattle stdout line {lineno} lacks rule.name/event: {line[:200]}")
        alerts.append((name, event.get("eventID"), doc.get("annotation")))
    return alerts, elapsed, stderr


def run_engine_candidate(engine: str, rules, records):
    """Harness self-check: the same reference semantics computed with another engine."""
    t0 = time.perf_counter()
    results = ref.evaluate(engine, rules, records)
    for r in results:
        if r.compile_error:
            raise SetupError(f"{engine} cannot run rule {r.name!r}: {r.compile_error}")
    alerts = [(r.name, eid, ann) for r in results for eid, ann in r.matches]
    return alerts, time.perf_counter() - t0, ""


class SetupError(Exception):
    pass


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------

def index(triples) -> dict:
    """(rule, key(eventID)) -> {key(annotation): (eventID, annotation)}"""
    out = collections.defaultdict(dict)
    for rule, eid, ann in triples:
        out[(rule, ref.key(eid))][ref.key(ann)] = (eid, ann)
    return out


def ambiguous_ids(records) -> set:
    """key(eventID) of IDs shared by records with different content."""
    variants = collections.defaultdict(set)
    for r in records:
        variants[ref.key(r.get("eventID"))].add(ref.key(r))
    return {eid for eid, v in variants.items() if len(v) > 1}


def compare(reference, candidate, ambiguous):
    """Return (missing, extra, tolerated): lists of (rule, eventID, annotation)."""
    ri, ci = index(reference), index(candidate)
    missing, extra, tolerated = [], [], []
    for k in sorted(set(ri) | set(ci)):
        ra, ca = ri.get(k, {}), ci.get(k, {})
        if ra.keys() == ca.keys():
            continue
        rule = k[0]
        if k[1] in ambiguous and ra and ca and ca.keys() <= ra.keys():
            tolerated.extend((rule, *ra[a]) for a in ra.keys() - ca.keys())
            continue
        missing.extend((rule, *ra[a]) for a in sorted(ra.keys() - ca.keys()))
        extra.extend((rule, *ca[a]) for a in sorted(ca.keys() - ra.keys()))
    return missing, extra, tolerated


def fmt(t) -> str:
    rule, eid, ann = t
    return f"  {rule!r} {eid!r} {json.dumps(ann, sort_keys=True)[:300]}"


# --------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("args", nargs="*", metavar="TATTLE_BIN|DATA_DIR",
                    help="tattle binary (default $TATTLE_BIN) and/or CloudTrail data directory")
    ap.add_argument("--rules", default=os.path.join(REPO, "configs", "rules", "cloudtrail.toml"))
    ap.add_argument("--candidate", default="tattle", choices=["tattle", "jq", "gojq"],
                    help="what to test against gojq (jq/gojq: harness self-check without tattle)")
    ap.add_argument("--timeout", type=float, default=900.0)
    opts = ap.parse_args(argv)

    binary = os.environ.get("TATTLE_BIN")
    data_dir = None
    for a in opts.args:
        if os.path.isdir(a):
            data_dir = a
        else:
            binary = a
    data_dir = data_dir or default_data_dir()

    try:
        rules = ref.load_rules(opts.rules)
        files, records = ref.load_records([data_dir])
        if not files:
            raise SetupError(f"no CloudTrail files under {data_dir}")
        if opts.candidate == "tattle":
            if not binary:
                raise SetupError("no tattle binary: pass it as an argument or set TATTLE_BIN")
            if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
                raise SetupError(f"tattle binary not found or not executable: {binary}")

        t0 = time.perf_counter()
        results = ref.evaluate("gojq", rules, records)
        ref_secs = time.perf_counter() - t0
        broken = [r for r in results if r.compile_error]
        if broken:
            raise SetupError("gojq cannot run rule(s): " + "; ".join(
                f"{r.name}: {r.compile_error}" for r in broken))
        reference = ref.triples(results)

        if opts.candidate == "tattle":
            cand, cand_secs, cand_err = run_tattle(binary, opts.rules, files, opts.timeout)
            cand_label = f"tattle ({binary})"
        else:
            cand, cand_secs, cand_err = run_engine_candidate(opts.candidate, rules, records)
            cand_label = opts.candidate
    except (SetupError, OSError, ValueError) as exc:
        print(f"differential: SETUP ERROR: {exc}", file=sys.stderr)
        return 2

    for r in results:
        if r.errors:
            print(f"note: gojq runtime errors in rule {r.name!r} on {len(r.errors)} event(s),"
                  f" e.g. {r.errors[0]}")

    ref_rules = {t[0] for t in reference}
    cand_counts = collections.Counter(ref.key(list(t)) for t in cand)
    dup = sum(n - 1 for n in cand_counts.values() if n > 1)
    unknown_rules = sorted({t[0] for t in cand} - {r["name"] for r in rules})

    missing, extra, tolerated = compare(reference, cand, ambiguous_ids(records))

    print(f"data: {len(files)} files, {len(records)} events from {data_dir}")
    print(f"reference (gojq): {len(reference)} matches from {len(ref_rules)} rules in {ref_secs:.1f}s")
    print(f"candidate ({cand_label}): {len(cand)} alerts"
          f" ({len(cand_counts)} distinct, {dup} repeated) in {cand_secs:.2f}s")
    if tolerated:
        print(f"note: {len(tolerated)} reference match(es) on eventIDs shared by different"
              f" records not reported by the candidate (allowed: alert ids dedup):")
        for t in tolerated[:SHOW]:
            print(fmt(t))
    if unknown_rules:
        print(f"candidate reported rules not in {opts.rules}: {unknown_rules[:SHOW]}")

    ok = True
    if missing:
        ok = False
        print(f"MISSING from {cand_label} ({len(missing)}; first {min(SHOW, len(missing))}):")
        for t in missing[:SHOW]:
            print(fmt(t))
    if extra:
        ok = False
        print(f"EXTRA in {cand_label} ({len(extra)}; first {min(SHOW, len(extra))}):")
        for t in extra[:SHOW]:
            print(fmt(t))
    if len(ref_rules) < MIN_RULES_MATCHING or len(reference) < MIN_MATCHES:
        ok = False
        print(f"reference too small: {len(ref_rules)} rules matching (need {MIN_RULES_MATCHING}),"
              f" {len(reference)} matches (need {MIN_MATCHES})")
    if not ok and cand_err.strip():
        print("candidate stderr (last 20 lines):")
        print("\n".join(cand_err.splitlines()[-20:]))

    verdict = "identical" if ok else "DIFFERENT"
    print(f"differential: {len(rules)} rules, {len(records)} events, {len(reference)} matches,"
          f" {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
