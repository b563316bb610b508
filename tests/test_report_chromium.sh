#!/bin/bash
# The HTML report renders in headless Chromium: no console errors, every figure present and
# non-empty (an inline self-check writes data-figures / data-empty-figures on <body>), and a
# screenshot is written for review (kept in $GB_BUILD/report_screenshots/).
# Inputs are made here: small synthetic features -> simulate (MEG and fMRI) -> scikit-learn
# reference scores (tests/ref/gbsci_fixtures.py, 2 signals for the MEG case) -> analyze -> report.
set -euo pipefail
: "${GB_BIN:?}" "${GB_SRC:?}" "${GB_BUILD:?}"
CHROME=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROME" ]; then echo "FAIL: chromium not installed (scripts/install-deps.sh installs it)"; exit 1; fi
T=$(mktemp -d /tmp/gb_report_XXXXXX)
trap 'rm -rf "$T"' EXIT
SHOTS="$GB_BUILD/report_screenshots"
mkdir -p "$SHOTS"
cd "$T"
export PYTHONPATH="$GB_SRC/tests/ref${PYTHONPATH:+:$PYTHONPATH}"
/usr/bin/python3 - <<'PY'
import h5py, numpy as np, gbsci_fixtures as fx
fx.make_features("feat.h5", n=120, layers=5, dim=24, seed=1)
# a second signal ("fa") so the report compares signals side by side
with h5py.File("feat.h5", "a") as h:
    rng = np.random.default_rng(9)
    for l in range(1, 6):
        h[f"fa/layer_{l:02d}"] = rng.normal(size=(120, 24)).astype(np.float32)
PY
"$GB_BIN" simulate --features feat.h5 --kind meg --out meg.h5 --signal backprop --quiet --channels 10 --tmax 0.6
"$GB_BIN" simulate --features feat.h5 --kind fmri --out fmri.h5 --signal backprop --quiet --vox-per-roi 12
/usr/bin/python3 - <<'PY'
import gbsci_fixtures as fx
fx.mini_encode("feat.h5", "meg.h5", "meg_bp.h5", signal="backprop")
fx.mini_encode("feat.h5", "meg.h5", "meg_fa.h5", signal="fa")
fx.mini_encode("feat.h5", "fmri.h5", "fmri_bp.h5", signal="backprop")
PY
"$GB_BIN" analyze --scores meg_bp.h5 meg_fa.h5 --brain meg.h5 --out A_meg.json --n-boot 200 --n-boot-images 50 --n-perm 200 --quiet
"$GB_BIN" analyze --scores fmri_bp.h5 --brain fmri.h5 --out A_fmri.json --n-boot 200 --n-perm 200 --quiet
# a trajectory section (issue 5 format) to exercise that figure
/usr/bin/python3 - <<'PY'
import json
A = json.load(open("A_fmri.json"))
A["trajectory"] = {"x": [0, 100, 200, 400], "x_label": "training step", "y_label": "spatial-order rho",
                   "series": {"forward": [0.1, 0.5, 0.8, 0.9], "residual": [0.0, -0.2, -0.4, -0.5]},
                   "training": {"iteration": [1, 2, 3, 4, 5], "loss": [6.9, 6.1, 5.0, 4.2, 4.0],
                                "dino": [6.8, 6.0, 4.9, 4.1, 3.9], "teacher_entropy": [6.0, None, 4.1, 3.3, 3.1],
                                "teacher_batch_entropy": [6.5, 6.2, 5.5, 4.9, 4.8],
                                "knn_iteration": [0, 5], "knn": [0.14, 0.33]}}
json.dump(A, open("A_fmri_traj.json", "w"))
PY
"$GB_BIN" report --analysis A_meg.json --scores meg_bp.h5 meg_fa.h5 --out meg.html
"$GB_BIN" report --analysis A_fmri_traj.json --out fmri.html
# both kinds in one analysis (as the demo does): MEG (2 signals) and fMRI
"$GB_BIN" analyze --scores meg_bp.h5 meg_fa.h5 fmri_bp.h5 --brain meg.h5 fmri.h5 --out A_both.json --n-boot 100 --n-boot-images 30 --n-perm 100 --quiet
"$GB_BIN" report --analysis A_both.json --out both.html

fail=0
check_page() { # page expected_figures
  local page=$1 want=$2 name
  name=$(basename "$page" .html)
  if grep -qiE '(src|href)="(https?:)?//' "$page"; then echo "FAIL $name: references the network"; fail=1; fi
  local flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
               --disable-sync --no-first-run --user-data-dir="$T/profile-$name")
  timeout 60 "$CHROME" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "file://$T/$page" > "$T/$name.dom" 2> "$T/$name.log" || true
  if grep -E "CONSOLE|Uncaught|SyntaxError" "$T/$name.log" | grep -v "DevTools" ; then
    echo "FAIL $name: console messages above"; fail=1
  fi
  local figs empty
  figs=$(grep -o 'data-figures="[0-9]*"' "$T/$name.dom" | grep -o '[0-9]*' || echo 0)
  empty=$(grep -o 'data-empty-figures="[0-9]*"' "$T/$name.dom" | grep -o '[0-9]*' || echo -1)
  echo "$name: $figs figures rendered, $empty empty (expected $want)"
  if [ "$figs" != "$want" ] || [ "$empty" != "0" ]; then echo "FAIL $name: figure check"; fail=1; fi
  timeout 60 "$CHROME" "${flags[@]}" --hide-scrollbars --window-size=1200,4200 --screenshot="$SHOTS/$name.png" "file://$T/$page" > /dev/null 2>&1 || true
  if [ ! -s "$SHOTS/$name.png" ]; then echo "FAIL $name: no screenshot"; fail=1; else echo "screenshot: $SHOTS/$name.png"; fi
}
# MEG: forward courses, residual courses, latency, ceiling, signals compared = 5
check_page meg.html 5
# fMRI: R by layer, best layer, ceiling, trajectory, training run = 5
check_page fmri.html 5
# both: the 5 MEG figures + fMRI R by layer, best layer, ceiling = 8
check_page both.html 8
grep -q "k-NN accuracy of the teacher CLS: 0: 0.140; 5: 0.330;" fmri.html || { echo "FAIL: training figure caption"; fail=1; }
grep -q "SYNTHETIC" meg.html || { echo "FAIL: synthetic banner missing"; fail=1; }
grep -q "meg_fa.h5" meg.html || { echo "FAIL: provenance does not list the scores files"; fail=1; }
# bad input: not an analysis file
echo '{"hello": 1}' > bad.json
if "$GB_BIN" report --analysis bad.json --out bad.html 2> err.txt; then echo "FAIL: accepted a non-analysis JSON"; fail=1; fi
grep -q "bad.json" err.txt || { echo "FAIL: error does not name the file: $(cat err.txt)"; fail=1; }
exit $fail
