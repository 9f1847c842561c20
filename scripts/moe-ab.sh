#!/usr/bin/env bash
# A/B of MoE decode settings on the GPU machine, after scripts/device-test.sh has built build-gpu: volt_ops_bench's
# MoE rows (MOE_AB_TOKENS) and volt bench e2e (4 layers, FP8 experts, batch 1 and 64 at 4K context) under each of
# MOE_AB's environment settings in turn, twice (MOE_AB_PARTS="ops e2e": either alone); logs under $OUT. E.g.
#   MOE_AB="VOLT_MOE_DECODE_SPLIT=1 VOLT_MOE_DECODE_SPLIT=0" scripts/moe-ab.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/device-env.sh"
BIN=$ROOT/build-gpu/bin
OUT=${OUT:-/tmp/moe-ab}
mkdir -p "$OUT"
TOKENS=${MOE_AB_TOKENS:-1,2,64}
PARTS=" ${MOE_AB_PARTS:-ops e2e} "
[[ $PARTS == *" ops "* ]] && for r in 1 2; do
  for setting in ${MOE_AB:?settings to compare, e.g. VOLT_MOE_DECODE_SPLIT=1 VOLT_MOE_DECODE_SPLIT=0}; do
    tag=${setting//[^A-Za-z0-9]/_}_$r
    echo "== ops bench, $setting (round $r)"
    env "$setting" "$BIN/volt_ops_bench" --only moe --moe-tokens "$TOKENS" --json "$OUT/ops_$tag.jsonl" \
      >"$OUT/ops_$tag.log" 2>&1 || { tail -3 "$OUT/ops_$tag.log"; continue; }
    row='.*"op": "([a-z0-9_]+)".*"T": ([0-9]+).*"path": "([a-z_0-9]+)", "ms": ([0-9.]+).*"tbps": ([0-9.]+)'
    row+='.*"out_hash": "([0-9a-f]+)", "gated_parts": ([0-9]+).*'
    grep -E '"moe_(fp8|int8)"' "$OUT/ops_$tag.log" | grep -v fp8_activations |
      sed -E "s/$row/\1 T=\2 \3 \4 ms \5 TB\/s, hash \6, parts \7/"
    grep -E '"moe_one_warp"' "$OUT/ops_$tag.log"
  done
done
[[ $PARTS == *" e2e "* ]] && for r in 1 2; do
  for setting in $MOE_AB; do
    echo "== volt bench e2e, FP8 experts, $setting (round $r)"
    env "$setting" "$BIN/volt" bench e2e --synthetic minimax-text-01 --device cuda --layers 4 --prompt-tokens 2048 \
      --reps 1 --warmup 0 --decode-context 4096 --decode-steps 16 --decode-batch 1 --decode-batch 64 \
      --expert-weights fp8 --json "$OUT/e2e_${setting//[^A-Za-z0-9]/_}_$r.json" 2>&1 | grep -E "decode_sample"
  done
done
true  # (a part left out is not a failure)
