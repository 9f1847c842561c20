#!/usr/bin/env bash
# s45 call 6 (H100): the TMA decode GEMV as the default: model tests and the MoE suites (two processes at once), then
# the MoE rows (both kernels) and volt bench e2e, 4 layers, FP8, 4K, batch 1 and 64, TMA off / on alternated.
R=$(pwd)
mkdir -p $OUT/r
T0=$SECONDS
( OUT=$R/build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 DEVICE_TEST_STAGES="build" DEVICE_TEST_TARGETS="volt volt_gpu_tests volt_gpu_model_tests volt_ops_bench" scripts/device-test.sh > $OUT/r/build.log 2>&1 ) || { tail -40 $OUT/r/build.log; cd $OUT && tar czf r.tgz r; exit 1; }
echo "build $((SECONDS-T0)) s"
source scripts/device-env.sh
nvidia-smi --query-gpu=name,clocks.sm,power.limit,memory.total --format=csv > $OUT/r/gpu.txt
timeout 280 build-gpu/bin/volt_gpu_model_tests --gtest_filter='-*MultiGpu*' > $OUT/r/model.txt 2>&1 &
M=$!
timeout 280 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.*:MoeInt8Gpu.*:MoeGpu.*:Fp8Cpu.*:Int8Cpu.*' > $OUT/r/moe.txt 2>&1 &
Q=$!
wait $M; echo "model rc $?"; wait $Q; echo "moe rc $?"
grep -E "^\[  (PASSED|FAILED) |FAILED|tests ran" $OUT/r/model.txt $OUT/r/moe.txt | head -30
echo "t $((SECONDS-T0)) s"
row='.*"op": "([a-z0-9_]+)".*"T": ([0-9]+).*"path": "([a-z_0-9]+)", "ms": ([0-9.]+).*"tbps": ([0-9.]+).*'
timeout 60 build-gpu/bin/volt_ops_bench --only moe --moe-tokens 1,2,8,64 --json $OUT/r/ops_moe.jsonl > $OUT/r/ops_moe.log 2>&1; echo "ops rc $?"
grep -E '"copy"' $OUT/r/ops_moe.log
grep -E '"moe_(fp8|int8)"' $OUT/r/ops_moe.log | grep -E 'grouped_tma|"grouped"|"grouped_f16"' | sed -E "s/$row/\1 \3 T=\2 \4 ms \5/"
for r in 1 2; do
for setting in "VOLT_MOE_DECODE_TMA=0" "VOLT_MOE_DECODE_TMA=1"; do
  tag=$(echo "$setting" | tr -c 'A-Za-z0-9' _)$r
  echo "== e2e 4 layers $setting ($r): $(env $setting timeout 60 build-gpu/bin/volt bench e2e --synthetic minimax-text-01 --device cuda --layers 4 --prompt-tokens 2048 \
      --reps 1 --warmup 0 --decode-context 4096 --decode-steps 16 --decode-batch 1 --decode-batch 64 \
      --expert-weights fp8 --json $OUT/r/e2e4_$tag.json 2>&1 | tee $OUT/r/e2e4_$tag.log | grep -E "pick, (1|64) seq" | sed -E 's/.*decode_sample/decode_sample/' | tr '\n' ';')"
done
done
echo "t $((SECONDS-T0)) s"
cd $OUT && tar czf r.tgz r
