"""Summarizes bench/run_encode_bench.sh results: times, speed ratios, achieved GFLOP/s.

usage: encode_bench_report.py DIR N D T SIZE [SIZE2]

Times are end-to-end wall seconds (process start to exit: reading inputs, all folds, writing
outputs). Peers measured at two target counts are extrapolated linearly in the number of
targets (time = a + b * T, through both points): every cost of these pipelines is either
per-fold constant (scaling, decompositions) or proportional to the number of targets.

Achieved GFLOP/s for gradbrain uses a nominal count of the shared-decomposition algorithm
(DESIGN section 7), not a profile: per outer fold and model with p features (r = min(p, n_tr)):
  decomposition        2 n_tr p^2 + 10 r^3      (Gram matrix + symmetric eigensolver)
  U^T Y                2 n_tr r T
  LOO residuals        A * 2 n_tr r T           (one n_tr x r x T product per alpha)
  test predictions     2 n_te r T
and for --inner kfold:K, per inner fold the same with the inner split sizes plus the refit.
The fraction of the measured sgemm peak (bench_sgemm_peak, same cores) is printed beside it,
and the rate per THREADS cpu-seconds (flops / (cpu time / threads)): on a shared machine the
wall rate understates what the code does with the cores it gets. This is an *effective* rate:
gradbrain forms the per-alpha fits through k <= A basis products (the shrinkage matrix's
numerical rank, 9 on this case) and, on CPUs with AMX, runs those alpha-ranking products in
bf16x3 on the tile unit (S.h5 attribute selection_products), so the effective rate can exceed
the float32 sgemm peak; only U^T Y and the predictions are float32 SGEMM.
"""
import json
import os
import sys

A, FOLDS = 10, 5
THREADS = int(os.environ.get("BENCH_THREADS", 2))


def load(d, label):
    path = os.path.join(d, label + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.loads(fh.readline())


def gcv_flops(n, p, T, k=FOLDS):
    total = 0.0
    for f in range(k):
        n_te = n // k + (1 if f < n % k else 0)
        n_tr = n - n_te
        r = min(p, n_tr)
        total += 2 * n_tr * p * p + 10 * r ** 3 + 2 * n_tr * r * T * (1 + A) + 2 * n_te * r * T
    return total


def kfold_flops(n, p, T, inner=5, k=FOLDS):
    total = 0.0
    for f in range(k):
        n_te = n // k + (1 if f < n % k else 0)
        n_tr = n - n_te
        r = min(p, n_tr)
        for g in range(inner):
            n_va = n_tr // inner + (1 if g < n_tr % inner else 0)
            n_in = n_tr - n_va
            ri = min(p, n_in)
            total += 2 * n_in * p * p + 10 * ri ** 3 + 2 * n_in * ri * T + A * 2 * n_va * ri * T
        total += 2 * n_tr * p * p + 10 * r ** 3 + 2 * n_tr * r * T + 2 * n_te * r * T
    return total


def main():
    d, N, D, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    sizes = [int(s) for s in sys.argv[5:]]
    peak = None
    with open(os.path.join(d, "sgemm.txt")) as fh:
        for line in fh:
            if line.startswith("peak_gflops"):
                peak = float(line.split()[1])
    print("\n== results (N=%d, %d features per space, T=%d targets, %d folds, %d alphas)"
          % (N, D, T, FOLDS, A))
    print("sgemm peak on these cores: %s GFLOP/s" % peak)
    gb = {}
    for label, models, flops in (
            ("gb_forward", "forward only, GCV", gcv_flops(N, D, T)),
            ("gb_all", "forward+joint+signal, GCV",
             2 * gcv_flops(N, D, T) + gcv_flops(N, 2 * D, T)),
            ("gb_forward_kfold", "forward only, inner kfold:5", kfold_flops(N, D, T))):
        rec = load(d, label)
        if rec is None or rec["exit"] != 0:
            print("%-18s %-30s FAILED (%s)" % (label, models, rec and rec["exit"]))
            continue
        s = rec["wall_seconds"]
        gb[label] = (s, rec.get("cpu_seconds", float("nan")))
        rate = flops / s / 1e9
        cpu_rate = flops / (gb[label][1] / THREADS) / 1e9
        print("gradbrain %-28s wall %9.2f s  cpu %9.2f s  peak RSS %6.0f MB  nominal %.2e flop"
              " -> %6.1f GFLOP/s wall (%4.1f%% of sgemm peak), %6.1f GFLOP/s per %d cpu-s"
              % (models, s, gb[label][1], rec["peak_rss_mb"], flops, rate,
                 100 * rate / peak if peak else float("nan"), cpu_rate, THREADS))
    extrapolated = len(sizes) == 2
    peers = {}
    for peer, name in (("sklearn", "scikit-learn RidgeCV (GCV, float64)"),
                       ("himalaya", "numpy himalaya K-fold SVD (float32)"),
                       ("himalayaF", "numpy himalaya K-fold SVD, factored U^T Y")):
        for scope in ("forward", "all"):
            recs = [load(d, "%s_%s_t%d" % (peer, scope, t)) for t in sizes]
            if any(r is None or r["exit"] != 0 for r in recs):
                print("%-44s %-8s not run (or failed; see its .json)" % (name, scope))
                continue
            ests = []
            for key in ("wall_seconds", "cpu_seconds"):
                secs = [r.get(key, float("nan")) for r in recs]
                if extrapolated:
                    slope = (secs[1] - secs[0]) / (sizes[1] - sizes[0])
                    ests.append(secs[0] + slope * (T - sizes[0]))
                else:
                    ests.append(secs[0])
            if extrapolated:
                how = "EXTRAPOLATED linearly in targets from %d and %d targets (wall %.2f, %.2f s)" % (
                    sizes[0], sizes[1], recs[0]["wall_seconds"], recs[1]["wall_seconds"])
            else:
                how = "measured on all targets"
            peers[(peer, scope)] = tuple(ests)
            print("%-44s %-8s wall %9.2f s  cpu %9.2f s  (%s; peak RSS %.0f MB)"
                  % (name, scope, ests[0], ests[1], how, max(r["peak_rss_mb"] for r in recs)))
    print("\n== speed-up of gradbrain (peer time / gradbrain time; acceptance: >= 5x)"
          "\n   wall ratio | cpu-time ratio")
    for (peer, scope), (wall, cpu) in peers.items():
        mine = gb.get("gb_forward" if scope == "forward" else "gb_all")
        if mine:
            print("  vs %-10s %-8s (gradbrain GCV)      %6.1fx | %6.1fx"
                  % (peer, scope, wall / mine[0], cpu / mine[1]))
        if scope == "forward" and peer.startswith("himalaya") and "gb_forward_kfold" in gb:
            k = gb["gb_forward_kfold"]
            print("  vs %-10s %-8s (gradbrain kfold:5)  %6.1fx | %6.1fx   <- same selection protocol"
                  % (peer, scope, wall / k[0], cpu / k[1]))
    if extrapolated:
        print("\nNOTE: peer times above are extrapolated from subsets of the targets (see each line).")


if __name__ == "__main__":
    main()
