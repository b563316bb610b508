#!/bin/bash
# Resume: training 6 iterations straight through and training 3, stopping (--stop-at, as if
# interrupted) and continuing with --resume must give bit-identical checkpoints (all three
# safetensors files and the JSON with the loss history). Also: the checkpoint loads in the
# extraction loader without flags (HF DINOv3 layout + config.json), a second run without
# --resume refuses to touch the directory, and --resume with different options is refused.
set -euo pipefail
: "${GB_BIN:?}"
T=$(mktemp -d /tmp/gb_train_resume.XXXXXX)
trap 'rm -rf "$T"' EXIT
cat > "$T/micro.json" <<'J'
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 8,
 "num_register_tokens": 2, "intermediate_size": 64, "image_size": 32}
J
common=(--images procedural --arch "$T/micro.json" --iters 6 --save-every 3 --batch 4 --local-crops 2
        --n-images 40 --categories 4 --image-size 40 --koleo 0.1 --seed 5 --threads 2 --quiet)
"$GB_BIN" train "${common[@]}" --out "$T/A"
"$GB_BIN" train "${common[@]}" --out "$T/B" --stop-at 3
test -f "$T/B/ckpt_000003.safetensors"
test ! -e "$T/B/ckpt_000006.json"
"$GB_BIN" train "${common[@]}" --out "$T/B" --resume
for f in ckpt_000003.safetensors ckpt_000006.safetensors ckpt_000006.student.safetensors \
         ckpt_000006.state.safetensors ckpt_000006.json; do
  if ! cmp "$T/A/$f" "$T/B/$f"; then echo "FAIL: $f differs between the straight and the resumed run"; exit 1; fi
done
echo "resumed checkpoints are bit-identical"
# the parameters must differ between iterations 3 and 6 (the comparison above is not trivial)
if cmp -s "$T/A/ckpt_000003.safetensors" "$T/A/ckpt_000006.safetensors"; then
  echo "FAIL: teacher did not change between iterations 3 and 6"; exit 1
fi
# a second run into the same directory without --resume is refused
if "$GB_BIN" train "${common[@]}" --out "$T/A" 2> "$T/err"; then echo "FAIL: reran over checkpoints"; exit 1; fi
grep -q "resume" "$T/err" || { echo "FAIL: message does not mention --resume"; cat "$T/err"; exit 1; }
# --overwrite starts again from scratch (old checkpoints removed) and reproduces the run
"$GB_BIN" train "${common[@]}" --out "$T/A" --overwrite
cmp "$T/A/ckpt_000006.safetensors" "$T/B/ckpt_000006.safetensors" || { echo "FAIL: --overwrite rerun differs"; exit 1; }
# --resume with different options is refused, naming the difference
if "$GB_BIN" train "${common[@]/--seed/--seed}" --lr 1e-3 --out "$T/B" --resume 2> "$T/err"; then
  echo "FAIL: resumed with a different --lr"; exit 1
fi
grep -q "different options" "$T/err" || { echo "FAIL: unclear message"; cat "$T/err"; exit 1; }
# the step is data-parallel over a fixed number of shards: one thread gives the same bits as two
# (and the photometric augmentation, seeded per crop, resumes exactly too)
one=("${common[@]}")
for i in "${!one[@]}"; do [ "${one[$i]}" = "--threads" ] && one[$((i + 1))]=1; done
"$GB_BIN" train "${one[@]}" --out "$T/C"
cmp "$T/A/ckpt_000006.safetensors" "$T/C/ckpt_000006.safetensors" || { echo "FAIL: 1 thread differs from 2"; exit 1; }
"$GB_BIN" train "${common[@]}" --photometric dino --out "$T/P1"
"$GB_BIN" train "${common[@]}" --photometric dino --out "$T/P2" --stop-at 3
"$GB_BIN" train "${common[@]}" --photometric dino --out "$T/P2" --resume
cmp "$T/P1/ckpt_000006.safetensors" "$T/P2/ckpt_000006.safetensors" || { echo "FAIL: photometric resume differs"; exit 1; }
if cmp -s "$T/A/ckpt_000006.safetensors" "$T/P1/ckpt_000006.safetensors"; then
  echo "FAIL: --photometric dino changed nothing"; exit 1
fi
# the weight-normed last layer (V in the files as weight_v) resumes exactly too
"$GB_BIN" train "${common[@]}" --last-layer weightnorm --out "$T/W1"
"$GB_BIN" train "${common[@]}" --last-layer weightnorm --out "$T/W2" --stop-at 3
"$GB_BIN" train "${common[@]}" --last-layer weightnorm --out "$T/W2" --resume
for f in ckpt_000006.safetensors ckpt_000006.student.safetensors ckpt_000006.state.safetensors ckpt_000006.json; do
  cmp "$T/W1/$f" "$T/W2/$f" || { echo "FAIL: weight-normed resume: $f differs"; exit 1; }
done
if "$GB_BIN" train "${common[@]}" --out "$T/W2" --resume 2> "$T/err"; then
  echo "FAIL: resumed a weight-normed run with a plain last layer"; exit 1
fi
grep -q "last_layer" "$T/err" || { echo "FAIL: the refusal does not name the last layer"; cat "$T/err"; exit 1; }
echo "1 and 2 threads bit-identical; photometric and weight-normed resume bit-identical"
# the teacher checkpoint is a model the extraction loader reads without flags
/usr/bin/python3 - "$T/A" <<'P'
import json, struct, sys
d = sys.argv[1]
with open(d + "/ckpt_000006.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
need = ["embeddings.patch_embeddings.weight", "layer.1.attention.q_proj.weight", "norm.weight",
        "dino_head.mlp.0.weight", "dino_head.last_layer.weight"]
missing = [k for k in need if k not in h]
assert not missing, missing
hist = json.load(open(d + "/ckpt_000006.json"))["history"]
assert [e["it"] for e in hist] == [1, 2, 3, 4, 5, 6], hist
print("keys ok; losses", [round(e["loss"], 4) for e in hist])
P
echo ok
