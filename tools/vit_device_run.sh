#!/usr/bin/env bash
# One GPU-machine call for the CUDA vision tower (issue 12, vision/cuda): build only its targets through
# scripts/device-test.sh, run tests/gpu/vision (cuDNN attention, then the own attention kernel), compute-sanitizer
# memcheck on the tiny-fixture tests, then `volt bench vision --device cuda --synthetic vit-l-336` (1 and 37 crops)
# and its transformers anchor (tools/vit_hf_anchor.py) in the same run (best of 20, 10 single forwards each after 2 s
# idle, 4 s back to back with joules per forward). Logs and JSON under $OUT.
#   run(command="tools/vit_device_run.sh", carry=["build-opsdeps"], kind="nvidia-h200")
# VIT_QUICK=1 skips the own-attention variants and memcheck; VIT_AB=1 adds the A/B variants (GELU form, LayerNorm,
# eager/graph order, graph granularity) with an nvidia-smi clock/power log ($OUT/smi.csv).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build-gpu/out}
mkdir -p "$OUT"
mkdir -p "$OUT/build"
OUT="$OUT/build" DEVICE_TEST_STAGES=build DEVICE_TEST_UNIT=0 DEVICE_TEST_TARGETS="volt_gpu_vision_tests volt" \
  scripts/device-test.sh >"$OUT/build_stage.log" 2>&1 || { tail -40 "$OUT/build_stage.log"; exit 1; }
source scripts/device-env.sh  # .devdeps, cuDNN (looked up before .devdeps joins the library path), NCCL
echo "libcudnn: ${CUDNN_LIB:-not found}"
BIN=build-gpu/bin
status=0
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
echo "== tests/gpu/vision"
"$BIN/volt_gpu_vision_tests" --gtest_color=no >"$OUT/vision_tests.log" 2>&1 || status=1
grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[(tiny|attention|ViT|volt|GELU)|Failure|Which is|actual|rel_" "$OUT/vision_tests.log" | head -50
if [[ ${VIT_QUICK:-0} != 1 ]]; then  # VIT_QUICK=1: skip the own-kernel variants and memcheck
echo "== tests/gpu/vision, own attention kernel"
VOLT_VIT_ATTENTION=own "$BIN/volt_gpu_vision_tests" --gtest_color=no \
  --gtest_filter='VisionGpu.Tiny*:VisionGpu.Cancel*:VisionGpu.VitL*' >"$OUT/vision_tests_own.log" 2>&1 || status=1
grep -E "^\[  (FAILED|PASSED) |^\[(tiny|ViT)|Failure|actual" "$OUT/vision_tests_own.log" | head -20
echo "== compute-sanitizer memcheck (tiny fixture)"
timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/volt_gpu_vision_tests" --gtest_color=no \
  --gtest_filter='VisionGpu.Tiny*:VisionGpu.Cancel*:VisionGpu.Bad*' >"$OUT/memcheck.log" 2>&1 || status=1
grep -E "ERROR SUMMARY|^\[  (FAILED|PASSED) " "$OUT/memcheck.log" | tail -3
fi
if [[ ${VIT_AB:-0} == 1 ]]; then  # VIT_AB=1: the A/B variants of bench/vision_notes.md, same run, before the anchor
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader -lms 50 >"$OUT/smi.csv" 2>&1 &
  SMI=$!
  ab() {  # name, env..., then the bench's crop arguments after --
    local name=$1; shift
    local envs=(); while [[ $1 != -- ]]; do envs+=("$1"); shift; done; shift
    sleep 2
    echo "== bench variant $name (${envs[*]:-defaults})"
    env "${envs[@]}" "$BIN/volt" bench vision --device cuda --synthetic vit-l-336 "$@" --reps 20 \
      --json "$OUT/ab_$name.json" 2>&1 | grep -E "ViT|ceiling" || status=1
  }
  # The previous default (erf pass, two-read LayerNorm, per-layer graphs); the eager-then-eager order control (with
  # VOLT_VIT_GRAPHS=0 the bench's "graphs" column runs eagerly too); then one change at a time.
  ab before VOLT_VIT_GELU=erf VOLT_VIT_LN_REREAD=1 VOLT_VIT_GRAPHS=layers -- --crops 1 --crops 37
  ab order_control VOLT_VIT_GRAPHS=0 -- --crops 37 --crops 37
  ab erf VOLT_VIT_GELU=erf -- --crops 1 --crops 37
  ab ln_reread VOLT_VIT_LN_REREAD=1 -- --crops 1 --crops 37
  ab layer_graphs VOLT_VIT_GRAPHS=layers -- --crops 1 --crops 37
  ab default -- --crops 1 --crops 37
  kill "$SMI" 2>/dev/null
  sleep 2
fi
echo "== bench: Volt (cuDNN attention), Volt (own attention), transformers anchor"
"$BIN/volt" bench vision --device cuda --synthetic vit-l-336 --crops 1 --crops 37 --reps 20 \
  --from-idle 10 --sustain 4 --json "$OUT/vit_volt.json" 2>&1 | tee "$OUT/vit_volt.md" || status=1
[[ ${VIT_QUICK:-0} != 1 ]] && { VOLT_VIT_ATTENTION=own "$BIN/volt" bench vision --device cuda --synthetic vit-l-336 --crops 1 --crops 37 --reps 5 \
  --json "$OUT/vit_volt_own.json" 2>&1 | grep -E "ViT|attention" || status=1; }
PYTHONUNBUFFERED=1 python3 tools/vit_hf_anchor.py --crops 1 37 --reps 20 --from-idle 10 --sustain 4 \
  --json "$OUT/vit_anchor.jsonl" \
  >"$OUT/vit_anchor.log" 2>&1 || { tail -5 "$OUT/vit_anchor.log"; status=1; }
cat "$OUT/vit_anchor.jsonl"
(cd "$OUT" && tar czf vision_logs.tgz --remove-files *.log logs.tgz 2>/dev/null)
echo "== status $status"
exit $status
