#!/usr/bin/env bash
# Encode speed benchmark (issue 2, acceptance 2): gradbrain encode vs the scikit-learn
# pipeline (bench/peer_sklearn.py) and a numpy implementation of himalaya's K-fold SVD ridge
# solver (bench/peer_himalaya.py), all on the same case, the same cores, in one run.
#
#   bench/run_encode_bench.sh            full case: N=8000 images, 768 features per space
#                                        (forward, backprop), 20000 targets, 5 outer folds,
#                                        10 alphas
#   BENCH_SCALE=0.1 bench/run_encode_bench.sh   quick run (N, features, targets x 0.1)
#
# Environment: GB_BUILD (build dir with gradbrain and bench/bench_sgemm_peak; default
# ./build), BENCH_THREADS (2), BENCH_DIR (where the case and results go; default
# /tmp/gb_encode_bench_<scale>), PEER_TARGETS (peers run on all targets when there are at
# most 2*PEER_TARGETS of them; otherwise at PEER_TARGETS and 2*PEER_TARGETS targets and the
# time is extrapolated linearly in the number of targets — the output says so; default 1000),
# BENCH_TARGETS (override the number of targets, e.g. 2000 for a full-size case with fewer
# targets when the machine is busy), BENCH_ALL_PEERS=1 (also time both himalaya peers on all three models; slow).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${GB_BUILD:-$SRC/build}
GB=$BUILD/gradbrain
PEAK=$BUILD/bench/bench_sgemm_peak
SCALE=${BENCH_SCALE:-1}
THREADS=${BENCH_THREADS:-2}
PEER_TARGETS=${PEER_TARGETS:-1000}
DIR=${BENCH_DIR:-/tmp/gb_encode_bench_$SCALE}
PY=/usr/bin/python3
export PYTHONPATH=$SRC/tests/ref:$SRC/bench
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# Passive OpenMP waiting for every contender (gradbrain and numpy's OpenMP OpenBLAS alike), so
# CPU time measures work rather than spinning when the machine is shared.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

for f in "$GB" "$PEAK"; do
  [[ -x $f ]] || { echo "missing $f: build first (cmake --build $BUILD)" >&2; exit 1; }
done
read -r N D T < <($PY -c "s=float('$SCALE'); print(round(8000*s), max(8, round(768*s)), round(20000*s))")
T=${BENCH_TARGETS:-$T}
mkdir -p "$DIR"
echo "== encode bench: N=$N images, $D features per space, T=$T targets, 5 outer folds," \
     "10 alphas, $THREADS threads; scale $SCALE; dir $DIR"
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores visible," \
     "load $(cut -d' ' -f1-3 /proc/loadavg)"

echo "-- sgemm peak ($THREADS threads)"
taskset -c 0-$((THREADS - 1)) "$PEAK" "$THREADS" 2048,4096 | tee "$DIR/sgemm.txt"

STAMP="$N $D $T v1"
echo "   (times: wall = end to end; cpu = user + system of the process, robust to other load)"
if [[ ! -f $DIR/F.h5 || ! -f $DIR/B.h5 || "$(cat "$DIR/stamp" 2>/dev/null)" != "$STAMP" ]]; then
  echo "-- generating the case (planted structure, 1 layer)"
  $PY "$SRC/tests/ref/make_encode_case.py" --out "$DIR" --n "$N" --df "$D" --ds "$D" \
      --targets "$T" --layers 1 --const 0 --seed 0 >/dev/null
  echo "$STAMP" > "$DIR/stamp"
fi

run() {  # run LABEL -- CMD...: timed on the first $THREADS cores
  local label=$1
  shift 2
  taskset -c 0-$((THREADS - 1)) $PY "$SRC/bench/timed.py" "$label" "$DIR/$label.json" -- "$@"
}

echo "-- gradbrain encode"
GBARGS=(--features "$DIR/F.h5" --brain "$DIR/B.h5" --threads "$THREADS" --overwrite --quiet)
run gb_forward -- "$GB" encode "${GBARGS[@]}" --out "$DIR/S_forward.h5" --add none
run gb_all -- "$GB" encode "${GBARGS[@]}" --out "$DIR/S_all.h5"
run gb_forward_kfold -- "$GB" encode "${GBARGS[@]}" --out "$DIR/S_forward_kfold.h5" --add none --inner kfold:5

echo "-- peers"
if (( T <= 2 * PEER_TARGETS )); then
  SIZES=("$T")
else
  SIZES=("$PEER_TARGETS" "$((2 * PEER_TARGETS))")
  echo "   (peers measured at ${SIZES[*]} targets and extrapolated linearly to $T)"
fi
PEER_IN=(--features "$DIR/F.h5" --brain "$DIR/B.h5" --threads "$THREADS")
for t in "${SIZES[@]}"; do
  run "sklearn_forward_t$t" -- $PY "$SRC/bench/peer_sklearn.py" "${PEER_IN[@]}" --targets "$t" --no-joint
  run "sklearn_all_t$t" -- $PY "$SRC/bench/peer_sklearn.py" "${PEER_IN[@]}" --targets "$t"
  run "himalaya_forward_t$t" -- $PY "$SRC/bench/peer_himalaya.py" "${PEER_IN[@]}" --targets "$t" --no-joint
  if [[ ${BENCH_ALL_PEERS:-0} == 1 ]]; then  # the slowest peer run; off by default
    run "himalaya_all_t$t" -- $PY "$SRC/bench/peer_himalaya.py" "${PEER_IN[@]}" --targets "$t"
  fi
  run "himalayaF_forward_t$t" -- $PY "$SRC/bench/peer_himalaya.py" "${PEER_IN[@]}" --targets "$t" --no-joint --factored
  if [[ ${BENCH_ALL_PEERS:-0} == 1 ]]; then
    run "himalayaF_all_t$t" -- $PY "$SRC/bench/peer_himalaya.py" "${PEER_IN[@]}" --targets "$t" --factored
  fi
done

$PY "$SRC/bench/encode_bench_report.py" "$DIR" "$N" "$D" "$T" "${SIZES[@]}" | tee "$DIR/report.txt"
