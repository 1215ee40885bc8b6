#!/usr/bin/env python3
"""Reference matcher for tattle rules, computed with gojq (tattletail's engine).

For a TOML rule file (tattletail format: [[rule]] name / jq_match) and a set of
CloudTrail log files ({"Records": [...]}, .json or .json.gz), compute the set of
(rule name, eventID, annotation) that tattletail's match semantics produce:

  * for each event, only the FIRST output of the rule's program counts;
  * no output, null or false  -> no match;
  * true                      -> match, no annotation;
  * any other value           -> match, annotation = that value, unless it equals
                                 the event itself (then no annotation);
  * a runtime error           -> no match (tattle counts and logs it).

The engine runs ONCE per rule over all events (JSON lines on stdin); the wrapper
program emits exactly one line per event, so outputs pair with eventIDs by order.
The equality test against the event is done inside the engine, so it uses the
engine's own notion of equality (as tattle does with jv_equal).

Usage:
  gojq_reference.py --config RULES.toml [--engine gojq|jq] [--stats] PATH...
  gojq_reference.py --config RULES.toml --compare-engines PATH...
PATH may be a file or a directory (walked recursively). Prints a sorted JSON list
of [rule, eventID, annotation-or-null].
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field

ENGINES = {"gojq": "gojq", "jq": "jq"}

# Filters tattle refuses to compile (security: environment, files, other events).
FORBIDDEN = ("$ENV", "env", "input", "inputs", "input_filename", "debug",
             "stderr", "halt", "halt_error", "import", "include", "$__loc__",
             "get_search_list", "splits_env")


# --------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------

def is_log_name(name: str) -> bool:
    low = name.lower()
    if low.startswith(("license", "readme")):
        return False
    return low.endswith(".json") or low.endswith(".json.gz")


def find_log_files(paths: list[str]) -> list[str]:
    """Files named *.json / *.json.gz under the given paths, sorted."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if is_log_name(f):
                        out.append(os.path.join(root, f))
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise FileNotFoundError(p)
    return sorted(set(out))


def read_json_file(path: str):
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":          # gzip by magic bytes, as tattle does
        data = gzip.decompress(data)
    return json.loads(data)


def load_records(paths: list[str]) -> tuple[list[str], list[dict]]:
    """Return (files holding CloudTrail records, all records in file order).

    Files that do not hold {"Records": [...]} (digests, other JSON) are skipped.
    """
    files, records = [], []
    for path in find_log_files(paths):
        try:
            doc = read_json_file(path)
        except (OSError, ValueError) as exc:
            print(f"gojq_reference: skipping {path}: {exc}", file=sys.stderr)
            continue
        if not (isinstance(doc, dict) and isinstance(doc.get("Records"), list)):
            continue
        files.append(path)
        records.extend(r for r in doc["Records"] if isinstance(r, dict))
    return files, records


def load_rules(config_path: str) -> list[dict]:
    with open(config_path, "rb") as fh:
        cfg = tomllib.load(fh)
    rules = cfg.get("rule", [])
    for r in rules:
        if "name" not in r or "jq_match" not in r:
            raise ValueError(f"{config_path}: rule without name/jq_match: {r!r}")
    return rules


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

def wrap_program(rule_program: str) -> str:
    """One output line per input event: {"m":0}, {"m":1}, {"m":1,"a":V} or {"err":E}.

    The rule text goes inside first( ... ) on its own lines so that a trailing
    `# comment` in the rule cannot swallow the closing parenthesis.
    """
    return (
        ". as $__tattle_event | try ([first(\n" + rule_program + "\n)]"
        " | if length == 0 then {\"m\": 0}"
        "   else .[0] as $__v"
        "   | if $__v == null or $__v == false then {\"m\": 0}"
        "     elif $__v == true then {\"m\": 1}"
        "     elif $__v == $__tattle_event then {\"m\": 1}"
        "     else {\"m\": 1, \"a\": $__v} end end)"
        " catch {\"err\": .}"
    )


@dataclass
class RuleResult:
    name: str
    matches: list = field(default_factory=list)   # [(eventID, annotation)]
    errors: list = field(default_factory=list)    # [(eventID, message)]
    compile_error: str | None = None


def run_rule(engine: str, rule: dict, events_path: str, event_ids: list) -> RuleResult:
    res = RuleResult(rule["name"])
    prog = wrap_program(rule["jq_match"])
    with open(events_path, "rb") as stdin:
        proc = subprocess.run([ENGINES[engine], "-c", prog], stdin=stdin,
                              capture_output=True)
    if proc.returncode != 0:
        res.compile_error = proc.stderr.decode(errors="replace").strip()
        return res
    lines = proc.stdout.decode().splitlines()
    if len(lines) != len(event_ids):
        res.compile_error = (f"{engine} produced {len(lines)} lines for "
                             f"{len(event_ids)} events")
        return res
    for eid, line in zip(event_ids, lines):
        out = json.loads(line)
        if "err" in out:
            res.errors.append((eid, out["err"]))
        elif out.get("m"):
            res.matches.append((eid, out.get("a")))
    return res


def evaluate(engine: str, rules: list[dict], records: list[dict]) -> list[RuleResult]:
    event_ids = [r.get("eventID") for r in records]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as tmp:
        for r in records:
            tmp.write(json.dumps(r, separators=(",", ":")))
            tmp.write("\n")
        events_path = tmp.name
    try:
        # One engine process per rule; rules are independent, so run a few at once.
        workers = max(1, min(len(rules), os.cpu_count() or 1, 8))
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda r: run_rule(engine, r, events_path, event_ids), rules))
    finally:
        os.unlink(events_path)


# --------------------------------------------------------------------------
# Canonical values (so that key order and 1 vs 1.0 do not matter)
# --------------------------------------------------------------------------

def canon(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 63:
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, list):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    return v


def key(v) -> str:
    """Hashable canonical form of a JSON value."""
    return json.dumps(canon(v), sort_keys=True, separators=(",", ":"))


def triples(results: list[RuleResult]) -> list[list]:
    """Sorted, de-duplicated [rule, eventID, annotation] list (canonical values)."""
    seen = {}
    for res in results:
        for eid, ann in res.matches:
            t = canon([res.name, eid, ann])
            seen.setdefault(key(t), t)
    return [seen[k] for k in sorted(seen)]


def diff_engines(rules: list[dict], records: list[dict]) -> int:
    """Run every rule with gojq and jq 1.6; print rules whose results differ."""
    a = evaluate("gojq", rules, records)
    b = evaluate("jq", rules, records)
    bad = 0
    for ra, rb in zip(a, b):
        if ra.compile_error or rb.compile_error:
            print(f"{ra.name}: compile error gojq={ra.compile_error!r} jq={rb.compile_error!r}")
            bad += 1
            continue
        sa = {key([e, v]) for e, v in ra.matches}
        sb = {key([e, v]) for e, v in rb.matches}
        ea = {key(e) for e, _ in ra.errors}
        eb = {key(e) for e, _ in rb.errors}
        if sa != sb or ea != eb:
            bad += 1
            print(f"{ra.name}: gojq-only {sorted(sa - sb)[:5]} jq-only {sorted(sb - sa)[:5]}"
                  f" errors gojq-only {sorted(ea - eb)[:5]} jq-only {sorted(eb - ea)[:5]}")
    print(f"engines: {len(rules)} rules, {len(records)} events, "
          f"{bad} rule(s) differ between gojq and jq 1.6")
    return 1 if bad else 0


def compute(config: str, paths: list[str], engine: str = "gojq"):
    """Return (rules, files, records, results)."""
    rules = load_rules(config)
    files, records = load_records(paths)
    return rules, files, records, evaluate(engine, rules, records)


def forbidden_tokens(program: str) -> list[str]:
    import re
    found = []
    for tok in FORBIDDEN:
        pat = re.escape(tok) if tok.startswith("$") else r"(?<![\w$.])" + re.escape(tok) + r"\b"
        if re.search(pat, program):
            found.append(tok)
    return found


def print_stats(results: list[RuleResult], nrec: int, engine: str, rules: list[dict]) -> None:
    err = sys.stderr
    print(f"{engine}: {len(results)} rules over {nrec} events", file=err)
    for rule, res in zip(rules, results):
        bad = forbidden_tokens(rule["jq_match"])
        flag = f"  FORBIDDEN {bad}" if bad else ""
        if res.compile_error:
            print(f"  COMPILE ERROR {res.name}: {res.compile_error}{flag}", file=err)
            continue
        print(f"  {len(res.matches):5d} matches {len(res.errors):4d} errors  {res.name}{flag}",
              file=err)
        for eid, msg in res.errors[:3]:
            print(f"        error on {eid}: {msg}", file=err)
    matched = sum(1 for r in results if r.matches)
    total = sum(len(r.matches) for r in results)
    print(f"{engine}: {matched} rules match something, {total} matches", file=err)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="TOML rule file")
    ap.add_argument("--engine", choices=sorted(ENGINES), default="gojq")
    ap.add_argument("--stats", action="store_true", help="per-rule counts on stderr")
    ap.add_argument("--compare-engines", action="store_true",
                    help="run gojq and jq 1.6, report rules whose results differ")
    ap.add_argument("paths", nargs="+", help="CloudTrail files or directories")
    args = ap.parse_args(argv)

    if args.compare_engines:
        rules = load_rules(args.config)
        _, records = load_records(args.paths)
        return diff_engines(rules, records)

    rules, files, records, results = compute(args.config, args.paths, args.engine)
    if args.stats:
        print(f"{len(files)} files", file=sys.stderr)
        print_stats(results, len(records), args.engine, rules)
    json.dump(triples(results), sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")
    failed = [r.name for r in results if r.compile_error]
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
