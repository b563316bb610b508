#!/bin/bash
# trajectory end to end on tiny data: train a micro ViT for 6 iterations with a checkpoint
# every 2, synthesize brain data from the last checkpoint's features, run `trajectory`, then
# check T.h5 against the per-checkpoint scores files it was built from (numpy): shapes,
# /iterations, residual = joint - forward, means, half-times recomputed independently, and
# that the backprop signal really differs between checkpoints (each checkpoint's own model
# and head were used).
set -euo pipefail
: "${GB_BIN:?}"
T=$(mktemp -d /tmp/gb_traj.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
cat > micro.json <<'J'
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 8,
 "num_register_tokens": 2, "intermediate_size": 64, "image_size": 32}
J
"$GB_BIN" train --images procedural --arch micro.json --out ck --iters 6 --save-every 2 --batch 8 \
  --n-images 60 --categories 4 --image-size 40 --threads 2 --quiet
"$GB_BIN" images --out img --n 40 --categories 4 --size 32 --quiet
"$GB_BIN" extract --model ck/ckpt_000006.safetensors --images img --out F.h5 --image-size 32 --threads 2 --quiet
"$GB_BIN" simulate --features F.h5 --kind fmri --out B.h5 --vox-per-roi 10 --quiet
"$GB_BIN" trajectory --checkpoints ck --images img --brain B.h5 --out T.h5 --threads 2 --quiet
# refuses to overwrite without --overwrite
if "$GB_BIN" trajectory --checkpoints ck --images img --brain B.h5 --out T.h5 --quiet 2> err; then
  echo "FAIL: overwrote T.h5"; exit 1
fi
grep -q "overwrite" err
# a directory without checkpoints is a clear error
mkdir empty
if "$GB_BIN" trajectory --checkpoints empty --images img --brain B.h5 --out T2.h5 --quiet 2> err; then
  echo "FAIL: accepted an empty checkpoint dir"; exit 1
fi
grep -q "no checkpoints" err
/usr/bin/python3 - <<'P'
import json
import h5py
import numpy as np

def half_time(x, y):
    # written from the definition: first crossing of y[-1]/2, linear interpolation
    if not (y[-1] > 0):
        return np.nan
    h = y[-1] / 2
    for i in range(len(y)):
        if y[i] >= h:
            if i == 0:
                return x[0]
            return x[i - 1] + (h - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1])
    return np.nan

with h5py.File("T.h5", "r") as f:
    it = f["/iterations"][:]
    assert list(it) == [2, 4, 6], it
    names = [s.decode() if isinstance(s, bytes) else s for s in f["/checkpoints"][:]]
    assert names == ["ckpt_000002.safetensors", "ckpt_000004.safetensors", "ckpt_000006.safetensors"], names
    r = {m: f["/%s/r" % m][:] for m in ("forward", "signal", "joint", "residual")}
    C, L, T = r["forward"].shape
    assert C == 3 and L == 2 and T > 0, r["forward"].shape
    for ci, n in enumerate(("000002", "000004", "000006")):
        with h5py.File("T.h5.work/ckpt_%s.scores.h5" % n, "r") as s:
            np.testing.assert_array_equal(r["forward"][ci], s["/forward/r"][:])
            np.testing.assert_array_equal(r["joint"][ci], s["/joint/r"][:])
            np.testing.assert_array_equal(r["signal"][ci], s["/signal/r"][:])
            np.testing.assert_array_equal(r["residual"][ci], s["/residual"][:])
    np.testing.assert_allclose(r["residual"], r["joint"] - r["forward"], atol=1e-6)
    for m in r:
        mean = np.nanmean(r[m], axis=2)
        np.testing.assert_allclose(f["/%s/mean" % m][:], mean, rtol=1e-6, atol=1e-9)
        mall = np.nanmean(r[m].reshape(C, -1), axis=1)
        np.testing.assert_allclose(f["/%s/mean_all" % m][:], mall, rtol=1e-6, atol=1e-9)
        ht = f["/%s/half_time" % m][:]
        for l in range(L):
            np.testing.assert_allclose(ht[l], half_time(it, mean[:, l]), rtol=1e-5, equal_nan=True)  # means agree to ~1e-7
        np.testing.assert_allclose(f["/%s/half_time_all" % m][0], half_time(it, mall), rtol=1e-5, equal_nan=True)
    loss = f["/extract_loss"][:]
    assert np.all(np.isfinite(loss)), loss
    # the training curves: the last checkpoint's history, iteration by iteration
    hist = [e for e in json.load(open("ck/ckpt_000006.json"))["history"] if "loss" in e]
    np.testing.assert_array_equal(f["/training/iteration"][:], [e["it"] for e in hist])
    for k in ("loss", "dino", "teacher_entropy", "teacher_batch_entropy"):
        np.testing.assert_array_equal(f["/training/" + k][:], [e[k] for e in hist])
    assert "/training/knn" not in f  # this run measured no k-NN
# the features of different checkpoints differ (each checkpoint's own weights were used)
with h5py.File("T.h5.work/ckpt_000002.features.h5", "r") as a, h5py.File("T.h5.work/ckpt_000006.features.h5", "r") as b:
    d = np.abs(a["/backprop/layer_02"][:] - b["/backprop/layer_02"][:]).max()
    assert d > 0, "backprop features identical across checkpoints"
j = json.load(open("T.json"))
assert j["x"] == [2, 4, 6] and set(j["series"]) == {"forward", "joint", "residual"}, j
print("trajectory ok: mean residual per checkpoint", j["series"]["residual"], "half-times", j["half_time"])
P
echo ok
