#!/usr/bin/env bash
# s45 call 3: TMA decode GEMV variants (box width, ring, consumers, CTAs per SM, no compute) in the ops bench.
R=$(pwd)
mkdir -p $OUT/r
T0=$SECONDS
( OUT=$R/build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 DEVICE_TEST_STAGES="build" DEVICE_TEST_TARGETS="volt volt_gpu_tests volt_ops_bench" scripts/device-test.sh > $OUT/r/build.log 2>&1 ) || { tail -40 $OUT/r/build.log; cd $OUT && tar czf r.tgz r; exit 1; }
echo "build $((SECONDS-T0)) s"
source scripts/device-env.sh
timeout 120 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.TmaDecodeKernelAgainstCpu:MoeFp8Gpu.ShortSanitizerRun' > $OUT/r/tests.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |FAILED|Failure" $OUT/r/tests.txt | head -20
row='.*"op": "([a-z0-9_]+)".*"T": ([0-9]+).*"path": "([a-z_0-9]+)", "ms": ([0-9.]+).*"tbps": ([0-9.]+).*'
for r in 1 2; do
for v in base nocompute c12 box64 ctas2 c16; do
  VOLT_MOE_TMA_VARIANT=$v timeout 60 build-gpu/bin/volt_ops_bench --only moe --moe-tokens 1,64 --json $OUT/r/ops_$v_$r.jsonl > $OUT/r/ops_${v}_$r.log 2>&1
  echo "== $v ($r): $(grep -E '"moe_fp8"' $OUT/r/ops_${v}_$r.log | grep -E 'grouped_tma|"grouped_f16"' | sed -E "s/$row/\3 T=\2 \4 ms \5/" | tr '\n' ';')"
done
done
echo "t $((SECONDS-T0)) s"
cd $OUT && tar czf r.tgz r
