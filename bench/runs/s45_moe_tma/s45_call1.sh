#!/usr/bin/env bash
# s45 call 1: build; the MoE quantised-expert tests (incl. the TMA decode kernel); ops bench MoE rows at T = 1, 2, 8, 64.
R=$(pwd)
mkdir -p $OUT/r
T0=$SECONDS
( OUT=$R/build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 DEVICE_TEST_STAGES="build" DEVICE_TEST_TARGETS="volt volt_gpu_tests volt_ops_bench" scripts/device-test.sh > $OUT/r/build.log 2>&1 ) || { tail -40 $OUT/r/build.log; cd $OUT && tar czf r.tgz r; exit 1; }
echo "build $((SECONDS-T0)) s"
source scripts/device-env.sh
nvidia-smi --query-gpu=name,clocks.sm,power.limit --format=csv > $OUT/r/gpu.txt
timeout 200 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.TmaDecodeKernelAgainstCpu:MoeFp8Gpu.GroupedDecodePathAgainstCpu:MoeFp8Gpu.F16Products*:MoeFp8Gpu.ShortSanitizerRun:MoeInt8Gpu.GroupedDecodePathAgainstCpu' > $OUT/r/tests.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED|  OK) |FAILED|tests ran|Failure|error" $OUT/r/tests.txt | head -40
echo "t $((SECONDS-T0)) s"
timeout $((590 - (SECONDS-T0) - 15)) build-gpu/bin/volt_ops_bench --only moe --moe-tokens 1,2,8,64 --json $OUT/r/ops_moe.jsonl > $OUT/r/ops_moe.log 2>&1; echo "bench rc $?"
row='.*"op": "([a-z0-9_]+)".*"T": ([0-9]+).*"path": "([a-z_0-9]+)", "ms": ([0-9.]+).*"tbps": ([0-9.]+).*'
grep -E '"moe' $OUT/r/ops_moe.log | grep -v fp8_activations | sed -E "s/$row/\1 T=\2 \3 \4 ms \5 TB\/s/" | head -60
echo "t $((SECONDS-T0)) s"
cd $OUT && tar czf r.tgz r
