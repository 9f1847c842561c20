#!/usr/bin/env bash
# s45 call 5 (H200): the TMA decode GEMV as the default: its tests, the MoE rows (both kernels, one process), and
# volt bench e2e with 8 layers (one 7 + 1 period), FP8 experts, 4K context, batch 1 and 64, TMA on / off alternated.
R=$(pwd)
mkdir -p $OUT/r
T0=$SECONDS
( OUT=$R/build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 DEVICE_TEST_STAGES="build" DEVICE_TEST_TARGETS="volt volt_gpu_tests volt_ops_bench" scripts/device-test.sh > $OUT/r/build.log 2>&1 ) || { tail -40 $OUT/r/build.log; cd $OUT && tar czf r.tgz r; exit 1; }
echo "build $((SECONDS-T0)) s"
source scripts/device-env.sh
nvidia-smi --query-gpu=name,clocks.sm,power.limit,memory.total --format=csv > $OUT/r/gpu.txt
timeout 120 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.TmaDecodeKernelAgainstCpu:MoeFp8Gpu.DecodeKernelResolution:MoeFp8Gpu.DecodeSplitPolicy:MoeFp8Gpu.DecodeProductsModeResolution:MoeFp8Gpu.ShortSanitizerRun' > $OUT/r/tests.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |FAILED|Failure" $OUT/r/tests.txt | head -20
row='.*"op": "([a-z0-9_]+)".*"T": ([0-9]+).*"path": "([a-z_0-9]+)", "ms": ([0-9.]+).*"tbps": ([0-9.]+).*'
for r in 1 2; do
  timeout 60 build-gpu/bin/volt_ops_bench --only moe --moe-tokens 1,2,8,64 --json $OUT/r/ops_moe_$r.jsonl > $OUT/r/ops_moe_$r.log 2>&1
  grep -E '"moe_(fp8|int8)"' $OUT/r/ops_moe_$r.log | grep -E 'grouped_tma|"grouped"|"grouped_f16"' | sed -E "s/$row/\1 \3 T=\2 \4 ms \5/" | tr '\n' ';'; echo
done
echo "t $((SECONDS-T0)) s"
for r in 1 2; do
for setting in "VOLT_MOE_DECODE_TMA=0" "VOLT_MOE_DECODE_TMA=1"; do
  tag=$(echo "$setting" | tr -c 'A-Za-z0-9' _)$r
  echo "== e2e 8 layers $setting ($r): $(env $setting timeout 120 build-gpu/bin/volt bench e2e --synthetic minimax-text-01 --device cuda --layers 8 --prompt-tokens 2048 \
      --reps 1 --warmup 0 --decode-context 4096 --decode-steps 16 --decode-batch 1 --decode-batch 64 \
      --expert-weights fp8 --json $OUT/r/e2e8_$tag.json 2>&1 | tee $OUT/r/e2e8_$tag.log | grep -E "decode_sample|roofline" | tr '\n' ';')"
done
done
echo "t $((SECONDS-T0)) s"
cd $OUT && tar czf r.tgz r
