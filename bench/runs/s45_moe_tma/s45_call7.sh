#!/usr/bin/env bash
# s45 call 7 (H100): the MoE tests call 6 left un-run (time), and compute-sanitizer memcheck + racecheck on the MoE
# short runs (which include the TMA decode kernel).
R=$(pwd)
mkdir -p $OUT/r
T0=$SECONDS
( OUT=$R/build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 DEVICE_TEST_STAGES="build" DEVICE_TEST_TARGETS="volt_gpu_tests" scripts/device-test.sh > $OUT/r/build.log 2>&1 ) || { tail -40 $OUT/r/build.log; cd $OUT && tar czf r.tgz r; exit 1; }
echo "build $((SECONDS-T0)) s"
source scripts/device-env.sh
timeout 250 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.Fp8Activations*:MoeFp8Gpu.*ModeResolution:MoeFp8Gpu.DecodeKernelResolution:MoeFp8Gpu.DecodeSplitPolicy:MoeInt8Gpu.*' > $OUT/r/moe.txt 2>&1 &
Q=$!
for tool in memcheck racecheck; do
  compute-sanitizer --tool $tool --error-exitcode 9 build-gpu/bin/volt_gpu_tests --gtest_filter='MoeFp8Gpu.ShortSanitizerRun:MoeInt8Gpu.ShortSanitizerRun:MoeGpu.ShortSanitizerRun' > $OUT/r/sanitize_$tool.log 2>&1
  echo "$tool rc $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|FAILED|PASSED" $OUT/r/sanitize_$tool.log | tail -3
done
wait $Q; echo "moe rc $?"
grep -E "^\[  (PASSED|FAILED) |FAILED|tests ran" $OUT/r/moe.txt | head
echo "t $((SECONDS-T0)) s"
cd $OUT && tar czf r.tgz r
