#!/bin/bash
# train / trajectory CLI: help, and bad input refused with a message naming what was wrong
# (file / field / expected / found), never a crash and never a half-written checkpoint.
set -uo pipefail
: "${GB_BIN:?}"
T=$(mktemp -d /tmp/gb_train_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
expect_error() { # expect_error "pattern" args...
  local pat=$1; shift
  "$GB_BIN" "$@" > "$T/out" 2> "$T/err"
  local rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 2 ]; then echo "FAIL: '$*' exited $rc (expected 1 or 2)"; fail=1; return; fi
  if ! grep -qi -- "$pat" "$T/err"; then echo "FAIL: '$*': message lacks '$pat':"; cat "$T/err"; fail=1; fi
}
"$GB_BIN" train --help | grep "DINO self-distillation" > /dev/null || { echo "FAIL: train --help"; fail=1; }
"$GB_BIN" trajectory --help | grep "half its final value" > /dev/null || { echo "FAIL: trajectory --help"; fail=1; }
expect_error "required" train --images procedural
expect_error "vit-tiny, vit-small or a config.json" train --images procedural --out "$T/o" --arch vit-huge
expect_error "HIDDEN:BOTTLENECK:K" train --images procedural --out "$T/o" --head 12:3
expect_error "ema or sinkhorn" train --images procedural --out "$T/o" --centering median
expect_error "plain or weightnorm" train --images procedural --out "$T/o" --last-layer wn
# the collapse monitor: a teacher temperature of 10 makes every target uniform -> a warning that
# names it; the default temperature does not warn
cat > "$T/micro.json" <<'J'
{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 8,
 "num_register_tokens": 2, "intermediate_size": 64, "image_size": 32}
J
micro=(train --images procedural --arch "$T/micro.json" --iters 4 --save-every 2 --batch 4 --local-crops 2
       --n-images 20 --categories 4 --image-size 40 --threads 2)
"$GB_BIN" "${micro[@]}" --teacher-temp 10:10 --out "$T/hot" 2> "$T/err" || { echo "FAIL: hot run"; fail=1; }
grep -q "nearly uniform" "$T/err" || { echo "FAIL: no collapse warning at teacher temperature 10:"; cat "$T/err"; fail=1; }
"$GB_BIN" "${micro[@]}" --out "$T/cool" 2> "$T/err" || { echo "FAIL: default run"; fail=1; }
if grep -q "collapsing" "$T/err"; then echo "FAIL: collapse warning at the default temperature"; cat "$T/err"; fail=1; fi
grep -q "teacher targets: entropy" "$T/err" || { echo "FAIL: no target entropy in the progress lines"; fail=1; }
expect_error "A:B" train --images procedural --out "$T/o" --wd 0.04
expect_error "batch" train --images procedural --out "$T/o" --batch 1
echo '{"hidden_size": 30, "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 8}' > "$T/bad.json"
expect_error "divisible by 4" train --images procedural --out "$T/o" --arch "$T/bad.json"
echo '{"hidden_size": 32}' > "$T/short.json"
expect_error "num_hidden_layers" train --images procedural --out "$T/o" --arch "$T/short.json"
mkdir -p "$T/empty"
expect_error "$T/empty" train --images "$T/empty" --out "$T/o2"
printf 'not a png' > "$T/empty/a.png"
printf 'not a png' > "$T/empty/b.png"
expect_error "a.png" train --images "$T/empty" --out "$T/o3"
ls "$T"/o3/ckpt_* > /dev/null 2>&1 && { echo "FAIL: checkpoint written after a decode error"; fail=1; }
expect_error "required" trajectory --checkpoints "$T/o"
expect_error "no checkpoints" trajectory --checkpoints "$T/empty" --images "$T/empty" --brain x.h5 --out "$T/t.h5"
expect_error "identity or augment" trajectory --checkpoints "$T/o" --images x --brain x --out y --views sideways
[ $fail -eq 0 ] && echo ok
exit $fail
