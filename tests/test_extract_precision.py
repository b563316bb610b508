"""`gradbrain extract --precision bf16x3` (linear layers on AMX tiles, two bfloat16 terms per
operand) against the default float32 run on the same tiny DINOv3-style model and images:
every forward tap within 1e-4 and every backprop tap within 1e-3 of the float32 tap, relative
to the tap's norm (issue 3's parity tolerances; bf16x3 keeps ~1e-5 per product term), the
precision recorded in the output, bad values refused. On a CPU without AMX the option warns
and both runs must be identical (then the check is that nothing else changed)."""
import os
import shutil
import sys
import tempfile

import h5py
import numpy as np

import gbsci_fixtures as fx
import vit_ref

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def main():
    tmp = tempfile.mkdtemp(prefix="gb_extract_prec_")
    try:
        mdir = os.path.join(tmp, "m")
        vit_ref.make_case(mdir, "dinov3:tiny:dino:same", 3)
        model = os.path.join(mdir, "model.safetensors")
        imgs = os.path.join(tmp, "imgs")
        fx.run_gb("images", "--out", imgs, "--n", "20", "--categories", "2", "--size", "24", "--quiet")
        common = ["extract", "--model", model, "--images", imgs, "--image-size", "16", "--quiet"]
        f32, fx3 = os.path.join(tmp, "F32.h5"), os.path.join(tmp, "FX3.h5")
        fx.run_gb(*common, "--out", f32)
        p = fx.run_gb(*common, "--out", fx3, "--precision", "bf16x3")
        with h5py.File(f32, "r") as a, h5py.File(fx3, "r") as b:
            prec = b.attrs.get("linear_precision")
            prec = prec.decode() if isinstance(prec, bytes) else str(prec)
            amx = prec.startswith("bf16x3")
            check(str(a.attrs.get("linear_precision", b"")).find("float32") >= 0,
                  "default run records float32 (%s)" % a.attrs.get("linear_precision"))
            check(amx or "no AMX" in p.stderr, "bf16x3 run records it or warns that it fell back (%s)" % prec)
            worst = {"forward": 0.0, "backprop": 0.0}
            for sig in ("forward", "backprop"):
                for layer in a[sig]:
                    x, y = a[sig][layer][:], b[sig][layer][:]
                    for i in range(x.shape[0]):
                        rel = np.linalg.norm(y[i] - x[i]) / max(np.linalg.norm(x[i]), 1e-30)
                        worst[sig] = max(worst[sig], rel)
            check(worst["forward"] <= 1e-4, "forward taps: max relative difference %.2e (limit 1e-4)" % worst["forward"])
            check(worst["backprop"] <= 1e-3, "backprop taps: max relative difference %.2e (limit 1e-3)" % worst["backprop"])
            if amx:
                check(worst["forward"] > 0, "bf16x3 actually changed the products (difference > 0)")
            else:
                check(worst["forward"] == 0 and worst["backprop"] == 0, "no AMX: identical outputs")
        bad = fx.run_gb(*common, "--out", os.path.join(tmp, "bad.h5"), "--precision", "fp16", ok=False)
        check(bad.returncode == 2 and "--precision 'fp16'" in bad.stderr, "--precision fp16 refused with a clear error")
        check(not os.path.exists(os.path.join(tmp, "bad.h5")), "nothing written for a refused option")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%s: %d failure(s)" % ("FAIL" if failures else "PASS", len(failures)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
