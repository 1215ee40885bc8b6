#!/usr/bin/env bash
# Fuzzes one libFuzzer target for a fixed time, then prints what it did.
#   run_fuzzer.sh BINARY SECONDS CORPUS WORK_DIR [DICTIONARY]     (TATTLE_FUZZ_SECONDS overrides SECONDS)
# CORPUS (the checked-in seeds) is only read; inputs that reach new coverage go to
# WORK_DIR/corpus and crashing inputs to WORK_DIR/crashes. Exits non-zero on a finding.
set -uo pipefail
binary=$1 seconds=${TATTLE_FUZZ_SECONDS:-$2} corpus=$3 work=$4 dictionary=${5:-}
name=$(basename "$binary")
mkdir -p "$work/corpus" "$work/crashes"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
      -print_final_stats=1 -artifact_prefix="$work/crashes/")
if [[ -n $dictionary ]]; then args+=(-dict="$dictionary"); fi
# detect_leaks: libFuzzer checks each new input for leaks when the process leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libjq 1.6's own leak on its compile-error path (see the file), as in the test presets.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")/.." && pwd)/lsan.supp:print_suppressions=0}
log="$work/last.log"
"$binary" "${args[@]}" "$work/corpus" "$corpus" >"$log" 2>&1
status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
entries=$(find "$work/corpus" -type f | wc -l)
if ((status != 0)); then
  tail -n 60 "$log"
  echo "$name: FAILED (exit $status) after ${execs:-?} executions; input in $work/crashes/:" >&2
  ls -1 "$work/crashes" >&2
  exit 1
fi
echo "$name: ${execs:-?} executions in ${seconds}s, ${rate:-?} exec/s, $entries new corpus entries in $work/corpus"
