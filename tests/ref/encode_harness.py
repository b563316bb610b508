"""Helpers shared by tests/test_encode_*.py: run `gradbrain encode`, read S.h5 / S.json,
compare r arrays with a stated tolerance, and record failures without stopping early (so a
test prints every number before it fails)."""
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from threadpoolctl import threadpool_limits

# The references work on small matrices: one BLAS thread is fastest, and it keeps OpenMP
# spin-waiting from collapsing under a loaded machine (ctest -j2 next to other jobs).
_LIMIT = threadpool_limits(limits=1)

MODELS = ("forward", "joint", "signal")


class Checker:
    """Collects named pass/fail results; finish() exits non-zero if any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def finish(self):
        """Prints the verdict and returns the process exit status (1 if any check failed)."""
        if self.failures:
            print("%d failure(s):" % len(self.failures))
            for f in self.failures:
                print("  " + f)
            return 1
        print("all checks passed")
        return 0


def gb_bin():
    """Path of the gradbrain CLI: $GB_BIN (set by ctest) or ./build/gradbrain."""
    path = os.environ.get("GB_BIN") or os.path.join(os.environ.get("GB_BUILD", "build"), "gradbrain")
    if not os.path.exists(path):
        print("gradbrain binary not found at %s (set GB_BIN)" % path)
        sys.exit(1)
    return path


def workdir(prefix):
    """A fresh temporary directory, removed at exit unless GB_KEEP=1."""
    path = tempfile.mkdtemp(prefix="gb_%s_" % prefix, dir=os.environ.get("GB_TMP"))
    if os.environ.get("GB_KEEP") != "1":
        atexit.register(shutil.rmtree, path, True)
    return path


def run_encode(args, timeout=300, extra_env=None):
    """Runs `gradbrain encode ARGS` (list of str), with extra_env (dict) added to the
    environment; returns CompletedProcess (text)."""
    cmd = [gb_bin(), "encode", "--quiet"] + [str(a) for a in args]
    print("$ " + " ".join(cmd), flush=True)
    # Passive OpenMP waiting: on a loaded machine (ctest -j2 beside other jobs) spinning
    # threads made a 0.1 s run take 2-14 s. Scheduling only; results are unaffected.
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra_env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        print("exit %d\nstderr:\n%s" % (proc.returncode, proc.stderr[-3000:]))
    return proc


def _strings(ds):
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[...].reshape(-1)]


def read_scores(path):
    """S.h5 -> dict: layers, <model>: {r, r_folds, alpha}, residual, attrs (root)."""
    out = {"attrs": {}}
    with h5py.File(path, "r") as f:
        out["layers"] = _strings(f["layers"])
        for m in MODELS:
            if m in f:
                out[m] = {k: f[m][k][...] for k in ("r", "r_folds", "alpha") if k in f[m]}
        if "residual" in f:
            out["residual"] = f["residual"][...]
        for k, v in f.attrs.items():
            out["attrs"][k] = v.decode() if isinstance(v, bytes) else v
        out["datasets"] = []
        f.visit(lambda name: out["datasets"].append(name))
    return out


def json_path(h5_path):
    return h5_path[:-3] + ".json" if h5_path.endswith(".h5") else h5_path + ".json"


def read_json(h5_path):
    with open(json_path(h5_path)) as fh:
        return json.load(fh)


def compare_r(ref, got, tol):
    """Fraction of targets with |dr| <= tol, where a NaN on exactly one side counts as a
    miss and NaN on both sides as a match. Returns (fraction, max |dr| over both-finite,
    n NaN mismatches, n both-NaN)."""
    ref = np.asarray(ref, dtype=np.float64).ravel()
    got = np.asarray(got, dtype=np.float64).ravel()
    both_nan = np.isnan(ref) & np.isnan(got)
    one_nan = np.isnan(ref) ^ np.isnan(got)
    finite = ~np.isnan(ref) & ~np.isnan(got)
    d = np.abs(ref[finite] - got[finite])
    good = np.count_nonzero(d <= tol) + np.count_nonzero(both_nan)
    return good / ref.size, (float(d.max()) if d.size else 0.0), int(one_nan.sum()), \
        int(both_nan.sum())


def alpha_agreement(ref, got):
    """Fraction of (fold, layer, target) entries whose chosen alphas agree (rel 1e-5)."""
    ref = np.asarray(ref, dtype=np.float64).ravel()
    got = np.asarray(got, dtype=np.float64).ravel()
    return float(np.mean(np.isclose(ref, got, rtol=1e-5, atol=0)))


def json_numbers(node):
    """All numbers in a JSON subtree (recursively)."""
    if isinstance(node, bool):
        return []
    if isinstance(node, (int, float)):
        return [float(node)]
    if isinstance(node, dict):
        return [x for v in node.values() for x in json_numbers(v)]
    if isinstance(node, list):
        return [x for v in node for x in json_numbers(v)]
    return []


def json_find(node, pred, path=""):
    """Yields (path, value) for every dict entry whose key satisfies pred(key)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if pred(k):
                yield path + "/" + k, v
            yield from json_find(v, pred, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from json_find(v, pred, path + "[%d]" % i)


def json_layer_node(summary, layer):
    """The JSON subtree describing `layer`: a dict keyed by the layer name, or a list entry
    whose "layer"/"name" field is the layer name."""
    for _, v in json_find(summary, lambda k: k == layer):
        return v
    stack = [summary]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("layer") == layer or node.get("name") == layer:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
