#!/usr/bin/env bash
# Extraction speed benchmark (issue 3, acceptance 3): gradbrain's ViT engine vs PyTorch on
# the same case, the same cores, in one run. ViT-S/16, 224 px, batch 16, forward + backprop
# taps of all 12 blocks, DINO objective (K = 65536), identity views, parameters frozen.
#
#   GB_BUILD=build bench/bench_extract.sh
#
# Environment: GB_BUILD (build dir with bench/bench_extract and bench/bench_sgemm_peak),
# BENCH_THREADS (2), BENCH_BATCH (16), BENCH_ITERS (5), BENCH_ROUNDS (2: the two sides
# alternate this many times so load from other processes hits both alike).
# Prints images/s of each side (median per batch), the ratio, and the engine's GEMM rate as
# a fraction of the sgemm peak measured in the same run. gradbrain runs twice per round: the
# default float32 products, and --precision bf16x3 (GB_NN_PRECISION; AMX tiles).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${GB_BUILD:-$SRC/build}
THREADS=${BENCH_THREADS:-2}
BATCH=${BENCH_BATCH:-16}
ITERS=${BENCH_ITERS:-5}
ROUNDS=${BENCH_ROUNDS:-2}
CORES=0-$((THREADS - 1))
# PASSIVE: waiting OpenMP threads sleep instead of spinning, so on a shared machine CPU time
# measures work, not waiting (both sides alike).
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PEAK=$(taskset -c $CORES "$BUILD/bench/bench_sgemm_peak" "$THREADS" 2048 | awk '/peak_gflops/ {print $2}')
gb_best=0; th_best=0; gb_gflops=0; gb_cpu=0; th_cpu=0; x3_best=0; x3_cpu=0
for r in $(seq 1 "$ROUNDS"); do
  # gradbrain with --precision bf16x3 (linear layers on AMX tiles; falls back to float32 without AMX)
  out=$(GB_NN_PRECISION=bf16x3 taskset -c $CORES "$BUILD/bench/bench_extract" "$THREADS" "$BATCH" "$ITERS" 2>/dev/null)
  echo "$out" | sed "s/^/[gb bf16x3  round $r] /"
  ips=$(echo "$out" | awk '/images_per_s/ {print $2}')
  if awk "BEGIN {exit !($ips > $x3_best)}"; then x3_best=$ips; fi
  c=$(echo "$out" | awk '/images_per_cpu_s/ {print $2}')
  if awk "BEGIN {exit !($c > $x3_cpu)}"; then x3_cpu=$c; fi
  out=$(GB_NN_PRECISION=fp32 taskset -c $CORES "$BUILD/bench/bench_extract" "$THREADS" "$BATCH" "$ITERS" 2>/dev/null)
  echo "$out" | sed "s/^/[gradbrain round $r] /"
  ips=$(echo "$out" | awk '/images_per_s/ {print $2}')
  gf=$(echo "$out" | awk '/^total/ {print $4}')
  if awk "BEGIN {exit !($ips > $gb_best)}"; then gb_best=$ips; gb_gflops=$gf; fi
  c=$(echo "$out" | awk '/images_per_cpu_s/ {print $2}')
  if awk "BEGIN {exit !($c > $gb_cpu)}"; then gb_cpu=$c; fi
  out=$(taskset -c $CORES /usr/bin/python3 "$SRC/bench/bench_extract_torch.py" "$THREADS" "$BATCH" "$ITERS")
  echo "$out" | sed "s/^/[pytorch   round $r] /"
  ips=$(echo "$out" | awk '/images_per_s/ {print $2}')
  if awk "BEGIN {exit !($ips > $th_best)}"; then th_best=$ips; fi
  c=$(echo "$out" | awk '/images_per_cpu_s/ {print $2}')
  if awk "BEGIN {exit !($c > $th_cpu)}"; then th_cpu=$c; fi
done
echo "sgemm peak (same run): $PEAK GFLOP/s"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "gradbrain: $gb_best images/s, $gb_cpu images per CPU-s ($gb_gflops GFLOP/s GEMM work = $(awk "BEGIN {printf \"%.0f\", 100*$gb_gflops/$PEAK}")% of peak)"
echo "pytorch:   $th_best images/s, $th_cpu images per CPU-s"
echo "ratio gradbrain/pytorch: $(awk "BEGIN {printf \"%.2f\", $gb_best/$th_best}")x wall, $(awk "BEGIN {printf \"%.2f\", $gb_cpu/$th_cpu}")x CPU time (best round of each)"
echo "gradbrain --precision bf16x3: $x3_best images/s, $x3_cpu images per CPU-s"
echo "ratio gradbrain bf16x3/pytorch: $(awk "BEGIN {printf \"%.2f\", $x3_best/$th_best}")x wall, $(awk "BEGIN {printf \"%.2f\", $x3_cpu/$th_cpu}")x CPU time (best round of each)"
