#!/bin/bash
# iBOT (`train --ibot W`; shared and separate head): stopping and resuming gives bit-identical
# checkpoints (the mask token, the patch center, a separate head and the AdamW moments travel in
# ckpt_XXXXXX.state.safetensors; the masks come from (seed, iteration, crop)); the iBOT state and
# options are in the checkpoint;
# resuming an iBOT run without --ibot is refused; --ibot with Sinkhorn-Knopp centering and a bad
# mask ratio are clear errors; the checkpoint still loads in extract (the mask token is not a
# backbone key) and records that its objective is the DINO CLS term without the iBOT term.
set -euo pipefail
: "${GB_BIN:?}"
T=$(mktemp -d /tmp/gb_train_ibot.XXXXXX)
trap 'rm -rf "$T"' EXIT
cat > "$T/micro.json" <<'J'
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 8,
 "num_register_tokens": 2, "intermediate_size": 64, "image_size": 32}
J
base=(--images procedural --arch "$T/micro.json" --iters 6 --save-every 3 --batch 4 --local-crops 2
      --n-images 40 --categories 4 --image-size 40 --seed 5 --threads 2 --quiet)
common=("${base[@]}" --ibot 1 --ibot-mask-prob 0.8)
"$GB_BIN" train "${common[@]}" --out "$T/A"
"$GB_BIN" train "${common[@]}" --out "$T/B" --stop-at 3
test ! -e "$T/B/ckpt_000006.json"
"$GB_BIN" train "${common[@]}" --out "$T/B" --resume
for f in ckpt_000006.safetensors ckpt_000006.student.safetensors ckpt_000006.state.safetensors ckpt_000006.json; do
  if ! cmp "$T/A/$f" "$T/B/$f"; then echo "FAIL: $f differs between the straight and the resumed run"; exit 1; fi
done
echo "resumed iBOT checkpoints are bit-identical"
/usr/bin/python3 - "$T/A" <<'P'
import json, struct, sys
import numpy as np
d = sys.argv[1]
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    return {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]], "<f4") for k, v in h.items() if k != "__metadata__"}
s3, s6 = tensors(d + "/ckpt_000003.state.safetensors"), tensors(d + "/ckpt_000006.state.safetensors")
for k in ("ibot.mask_token", "ibot.center", "adam.ibot.m", "adam.ibot.v"):
    assert k in s6, "missing " + k
    assert np.all(np.isfinite(s6[k])), k
assert np.linalg.norm(s6["ibot.mask_token"]) > 0, "mask token never moved"
assert not np.array_equal(s3["ibot.center"], s6["ibot.center"]), "patch center did not move"
j = json.load(open(d + "/ckpt_000006.json"))
assert j["config"]["ibot_weight"] == 1 and j["config"]["ibot_mask_probability"] == 0.8, j["config"]
h = j["history"]
assert all("ibot" in e and e["ibot"] >= 0 for e in h), h
assert any(e["ibot"] > 0 for e in h), h
print("state: mask token norm %.3e, patch center moved; iBOT losses %s" % (
    np.linalg.norm(s6["ibot.mask_token"]), ["%.3f" % e["ibot"] for e in h]))
P
# the same with a separate iBOT head (its student / teacher copies and moments in the state file)
sep=("${common[@]}" --ibot-separate-head)
"$GB_BIN" train "${sep[@]}" --out "$T/S1"
"$GB_BIN" train "${sep[@]}" --out "$T/S2" --stop-at 3
"$GB_BIN" train "${sep[@]}" --out "$T/S2" --resume
for f in ckpt_000006.safetensors ckpt_000006.student.safetensors ckpt_000006.state.safetensors ckpt_000006.json; do
  if ! cmp "$T/S1/$f" "$T/S2/$f"; then echo "FAIL: $f differs (separate iBOT head, resumed)"; exit 1; fi
done
/usr/bin/python3 - "$T/S1" <<'P'
import json, struct, sys
d = sys.argv[1]
with open(d + "/ckpt_000006.state.safetensors", "rb") as f:
    h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
for k in ("ibot_head.student", "ibot_head.teacher", "adam.ibot_head.m", "adam.ibot_head.v"):
    assert k in h, "missing " + k
assert json.load(open(d + "/ckpt_000006.json"))["config"]["ibot_head"] == "separate"
print("separate iBOT head: resumed bit-identical; state has", sorted(k for k in h if "ibot_head" in k))
P
# resuming an iBOT run without --ibot is refused (different options)
if "$GB_BIN" train "${base[@]}" --out "$T/B" --resume 2> "$T/err"; then
  echo "FAIL: resumed an iBOT run without --ibot"; exit 1
fi
grep -q "different options" "$T/err" || { cat "$T/err"; echo "FAIL: message"; exit 1; }
# bad options
if "$GB_BIN" train "${common[@]}" --out "$T/D" --ibot-ratio 0.6:0.2 2> "$T/err"; then echo "FAIL: bad ratio"; exit 1; fi
grep -q "ratio" "$T/err" || { cat "$T/err"; exit 1; }
# iBOT with Sinkhorn-Knopp centering (all masked patches at once) resumes bit-identically too
"$GB_BIN" train "${common[@]}" --centering sinkhorn --out "$T/K1"
"$GB_BIN" train "${common[@]}" --centering sinkhorn --out "$T/K2" --stop-at 3
"$GB_BIN" train "${common[@]}" --centering sinkhorn --out "$T/K2" --resume
for f in ckpt_000006.safetensors ckpt_000006.student.safetensors ckpt_000006.state.safetensors ckpt_000006.json; do
  cmp "$T/K1/$f" "$T/K2/$f" || { echo "FAIL: iBOT + Sinkhorn-Knopp resume: $f differs"; exit 1; }
done
if cmp -s "$T/K1/ckpt_000006.safetensors" "$T/A/ckpt_000006.safetensors"; then
  echo "FAIL: --centering sinkhorn changed nothing"; exit 1
fi
echo "iBOT + Sinkhorn-Knopp: resumed bit-identical"
# extract reads the checkpoint (HF DINOv3 keys only in the model files)
"$GB_BIN" images --out "$T/img" --n 4 --categories 2 --size 32 --quiet
"$GB_BIN" extract --model "$T/A/ckpt_000006.student.safetensors" --teacher-model "$T/A/ckpt_000006.safetensors" \
  --center-from "$T/A/ckpt_000006.json" --images "$T/img" --out "$T/F.h5" --image-size 32 --threads 2 --quiet
# ... and records that the run's iBOT term is not part of the extracted objective
/usr/bin/python3 - "$T/F.h5" <<'P'
import sys
import h5py
d = h5py.File(sys.argv[1], "r").attrs["dino_objective"]
d = d.decode() if isinstance(d, bytes) else str(d)
assert "iBOT patch term (weight 1) is not included" in d, d
print("extract on an iBOT checkpoint:", d.split("; ")[-1])
P
echo ok
