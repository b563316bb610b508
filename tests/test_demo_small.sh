#!/usr/bin/env bash
# The demo pipeline end to end at a small size (the full `make demo` is the README's main
# command): images -> train -> extract -> simulate -> encode -> trajectory -> analyze -> report.
# Checks that every stage's output exists and that A.json carries the sections the report needs.
set -euo pipefail
: "${GB_BIN:?GB_BIN must point to the gradbrain binary}"
dir=$(mktemp -d /tmp/gb_demo_small_XXXXXX)
trap 'rm -rf "$dir"' EXIT
out="$dir/demo"
"$GB_BIN" demo --out "$out" --iters 4 --images 80 --quiet > "$dir/stdout.txt"
cat "$dir/stdout.txt"
fail=0
for f in features.h5 brain_fmri_synthetic.h5 brain_meg_synthetic.h5 scores_fmri.h5 scores_meg.h5 trajectory.h5 analysis.json report.html; do
  [ -s "$out/$f" ] || { echo "FAIL: $out/$f missing or empty"; fail=1; }
done
grep -q "SYNTHETIC" "$dir/stdout.txt" || { echo "FAIL: the demo does not say the brain data are synthetic"; fail=1; }
grep -q "Report: " "$dir/stdout.txt" || { echo "FAIL: no summary with the report path"; fail=1; }
/usr/bin/python3 - "$out/analysis.json" <<'PY' || fail=1
import json, sys
A = json.load(open(sys.argv[1]))
missing = [k for k in ("meg", "fmri", "stats", "trajectory") if k not in A]
for k in ("times", "layers", "forward", "joint", "residual", "temporal_order"):
    if k not in A.get("meg", {}): missing.append("meg." + k)
for k in ("rois", "forward", "residual", "spatial_order"):
    if k not in A.get("fmri", {}): missing.append("fmri." + k)
t = A.get("trajectory", {})
if len(t.get("x", [])) != 4: missing.append("trajectory.x (4 checkpoints)")
for m in ("forward", "joint", "residual"):
    if len(t.get("series", {}).get(m, [])) != 4: missing.append("trajectory.series." + m)
tr = t.get("training", {})
if len(tr.get("loss", [])) != 4 or len(tr.get("teacher_entropy", [])) != 4: missing.append("trajectory.training (4 iterations)")
if missing:
    print("FAIL: analysis.json lacks", missing); sys.exit(1)
print("analysis.json has meg, fmri, stats and a 4-checkpoint trajectory")
PY
grep -q 'id="fig-training"' "$out/report.html" || { echo "FAIL: report has no training-run figure"; fail=1; }
# a second run into the same directory replaces the previous demo; a foreign directory is refused
"$GB_BIN" demo --out "$out" --iters 2 --images 40 --quiet > /dev/null || { echo "FAIL: rerun into a demo directory"; fail=1; }
mkdir -p "$dir/foreign" && touch "$dir/foreign/keep.txt"
if "$GB_BIN" demo --out "$dir/foreign" --iters 2 --images 40 --quiet > /dev/null 2>&1; then echo "FAIL: demo overwrote a foreign directory"; fail=1; fi
[ -f "$dir/foreign/keep.txt" ] || { echo "FAIL: foreign file deleted"; fail=1; }
exit $fail
