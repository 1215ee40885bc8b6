#!/usr/bin/env python3
"""Build the jq/gojq equivalent of a tattle rule file, for scripts/bench.

Reads a tattletail-format TOML rule file and prints ONE jq program that evaluates
every rule on every CloudTrail record with tattletail's semantics:

    .Records[] | . as $__e
    | (try (first(RULE_1) | <match?> | [0, annotation]) catch empty),
      (try (first(RULE_2) | ...) catch empty), ...

- first(RULE): only the first output counts;
- null / false / no output: nothing printed; true or the event itself: [i, null];
  anything else: [i, value];
- a runtime error in one rule is dropped (as tattle counts and skips it) instead
  of aborting the whole stream.

Usage: bench_jq_program.py RULES.toml > rules.jq
       gunzip -c corpus/*.json.gz | jq -c -f rules.jq > /dev/null
"""

import sys
import tomllib


def build(rules: list) -> str:
    parts = []
    for i, rule in enumerate(rules):
        # The rule goes on its own lines so a trailing `# comment` cannot eat the ")".
        parts.append(
            f"  # {i}: {rule['name']}\n"
            f"  (try (first(\n{rule['jq_match']}\n  )"
            f" | select(. != null and . != false)"
            f" | [{i}, (if . == true or . == $__e then null else . end)])"
            f" catch empty)"
        )
    return ".Records[] | . as $__e\n| (\n" + ",\n".join(parts) + "\n)\n"


def main(argv: list) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], "rb") as fh:
        rules = tomllib.load(fh).get("rule", [])
    if not rules:
        print(f"bench_jq_program: no [[rule]] in {argv[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(build(rules))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
