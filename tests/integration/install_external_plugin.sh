#!/usr/bin/env bash
# cmake --install lays out tattle, its plugins, the ABI header, the SDK and the CMake
# package; a sink built outside the tree against that installation is loaded by the
# installed binary and receives alerts.
#   install_external_plugin.sh BUILD_DIR WORK_DIR
set -euo pipefail
build_dir=$1
work=$2
source_dir=${TATTLE_SOURCE_DIR:?}
data=${TATTLE_SHARED_DATA_DIR:?}
rm -rf "$work"
mkdir -p "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
[[ -x $work/prefix/bin/tattle ]] || fail "no installed binary"
[[ -f $work/prefix/include/tattle/tattle_plugin.h ]] || fail "no installed ABI header"
[[ -f $work/prefix/include/tattle/sdk.hpp ]] || fail "no installed SDK"

cmake -S "$source_dir/tests/integration/external_sink" -B "$work/external" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/external" >/dev/null
plugin_dir=$(dirname "$(find "$work/external" -name 'tattle_sink_receipt.so' -print -quit)")
[[ -n $plugin_dir ]] || fail "external plugin not built"

# The installed binary lists its own plugins and the external one.
listing=$(TATTLE_PLUGIN_PATH="$plugin_dir" "$work/prefix/bin/tattle" plugins)
grep -q "^sink receipt 1.0.0" <<<"$listing" || fail "external plugin not listed: $listing"
grep -q "^sink stdout" <<<"$listing" || fail "installed stdout plugin not found by the installed binary"
grep -q "from: $work/prefix/" <<<"$listing" || fail "installed plugins not loaded from the prefix"

gzip -c "$data/tattletail/testdata-1.json" >"$work/testdata-1.json.gz"
cat >"$work/config.toml" <<TOML
plugin_dirs = ["$plugin_dir"]

[[rule]]
name = "Create User"
jq_match = 'select(.eventName == "CreateUser") | "username: \(.responseElements.user.userName)"'
description = "A new IAM user has been created"
destinations = ["receipts"]

[[destination]]
id = "receipts"
type = "receipt"
receipts = "$work/receipts.txt"
TOML
"$work/prefix/bin/tattle" run --config "$work/config.toml" "$work/testdata-1.json.gz"
[[ $(wc -l <"$work/receipts.txt") -eq 1 ]] || fail "expected exactly one receipt, got: $(cat "$work/receipts.txt")"
grep -q '^receipts [0-9]* {"alert_id":"' "$work/receipts.txt" || fail "bad receipt: $(cat "$work/receipts.txt")"

# A schema violation in the external plugin's config is reported with file:line.
cat >"$work/bad.toml" <<TOML
plugin_dirs = ["$plugin_dir"]

[[destination]]
id = "receipts"
type = "receipt"
reciepts = "$work/receipts.txt"
TOML
if out=$("$work/prefix/bin/tattle" check "$work/bad.toml" 2>&1); then fail "bad config accepted"; fi
grep -q "bad.toml:6:" <<<"$out" || fail "no file:line in: $out"
grep -q 'did you mean \\\?"receipts"' <<<"$out" || grep -q 'did you mean "receipts"' <<<"$out" || fail "no hint in: $out"
echo "install and external plugin: ok"
