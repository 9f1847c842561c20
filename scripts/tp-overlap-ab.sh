#!/usr/bin/env bash
# A/B of a split model's prefill (issue 8): `volt bench e2e --gpus N` (real geometry, 8 layers, 8K and 32K prompts)
# once per configuration, configurations alternating in separate processes, e.g. with and without the comm/compute
# overlap of text/cuda/comm_overlap.h. AB_CONFIGS: configurations separated by "|", each a list of VAR=value
# (default "VOLT_TP_OVERLAP=1|VOLT_TP_OVERLAP=0"); AB_ROUNDS (default 2); AB_GPUS (default 2); logs and JSON to $O.
set -uo pipefail
O=${O:-/tmp/o}
mkdir -p "$O"
source scripts/device-env.sh
IFS='|' read -r -a configs <<<"${AB_CONFIGS:-VOLT_TP_OVERLAP=1|VOLT_TP_OVERLAP=0}"
i=0
for ((round = 0; round < ${AB_ROUNDS:-2}; ++round)); do
  for cfg in "${configs[@]}"; do
    i=$((i + 1))
    name=$(echo "$cfg" | tr ' =' '_-')
    env $cfg build-gpu/bin/volt bench e2e --synthetic minimax-text-01 --device cuda --gpus "${AB_GPUS:-2}" \
      --layers 8 --prompt-tokens 8192 --prompt-tokens 32768 --reps 3 --warmup 1 --decode-context 1024 \
      --decode-steps 2 --json "$O/ab_${i}_$name.json" >"$O/ab_${i}_$name.log" 2>&1
    echo "run $i [$cfg]: $(grep -E 'prefill (8192|32768)' "$O/ab_${i}_$name.log" | sed 's/|//g' | tr -s ' ' |
      cut -c1-48 | tr '\n' ';')"
  done
done
