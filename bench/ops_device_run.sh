#!/usr/bin/env bash
# One device call for the issue-7 follow-up runs (bench/ops_notes.md, run v4): build only the GPU tests and the ops
# benchmark (through scripts/device-test.sh's build stage), run the attention / GEMM / small-op GPU tests,
# compute-sanitizer memcheck + racecheck on their short runs, then the benchmark subsets (GEMM incl. the fc1 parts,
# decode, sampling, cuDNN prefill 32K/128K) with the torch anchors in the same machine session, and two more rounds of
# cuDNN prefill interleaved with torch SDPA for the run spread. Usage (device tool, carry ["build-opsdeps"]):
#   bench/ops_device_run.sh            logs and JSON lines under $OUT
# OPS_ONLY / ANCHOR_ONLY / PREFILL_ROUNDS override the benchmark subsets and the extra interleaved rounds.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build-gpu/out}
mkdir -p "$OUT"
t0=$(date +%s)
note() { echo "== [$(($(date +%s) - t0)) s] $*" | tee -a "$OUT/summary.txt"; }
note "build"
OUT=$OUT/build DEVICE_TEST_STAGES=build DEVICE_TEST_PARTS=ops DEVICE_TEST_UNIT=0 \
  DEVICE_TEST_TARGETS="volt_gpu_tests volt_ops_bench" scripts/device-test.sh >"$OUT/build_stage.log" 2>&1 ||
  { tail -40 "$OUT/build_stage.log"; note "build FAILED"; exit 1; }
source scripts/device-env.sh  # .devdeps, cuDNN, NCCL, NCCL_NVLS_ENABLE=0
BIN=build-gpu/bin
status=0
note "GPU tests (attention, GEMM, small ops)"
"$BIN/volt_gpu_tests" --gtest_color=no --gtest_filter='AttentionGpu.*:GemmGpu.*:SmallOpsGpu.*' >"$OUT/gpu_tests.log" 2>&1 ||
  status=1
grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|Failure|Which is|actual" "$OUT/gpu_tests.log" | head -60
for tool in memcheck racecheck; do
  note "compute-sanitizer $tool"
  compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/volt_gpu_tests" \
    --gtest_filter='AttentionGpu.ShortSanitizerRun:GemmGpu.ShortSanitizerRun:SmallOpsGpu.ShortSanitizerRun' \
    >"$OUT/sanitize_$tool.log" 2>&1 || status=1
  grep -E "ERROR SUMMARY|FAILED|PASSED" "$OUT/sanitize_$tool.log" | tail -3
done
OPS_ONLY=${OPS_ONLY:-gemm,decode,sample,prefill_cudnn}
note "benchmark (Volt): $OPS_ONLY"
VOLT_LOG_LEVEL=debug "$BIN/volt_ops_bench" --json "$OUT/ops_volt.jsonl" --only "$OPS_ONLY" \
  >"$OUT/ops_bench.log" 2>&1 || { tail -5 "$OUT/ops_bench.log"; status=1; }
grep -i "tune" "$OUT/ops_bench.log" | head
note "anchors (torch)"
PYTHONUNBUFFERED=1 python3 tools/ops_torch_anchor.py --json "$OUT/ops_anchor.jsonl" \
  --only "${ANCHOR_ONLY:-gemm,sdpa_decode,sdpa_prefill_long}" >"$OUT/ops_anchor.log" 2>&1 || tail -5 "$OUT/ops_anchor.log"
python3 tools/ops_report.py "$OUT/ops_volt.jsonl" "$OUT/ops_anchor.jsonl" | tee "$OUT/ops_table.md"
for r in $(seq 2 $((1 + ${PREFILL_ROUNDS:-2}))); do
  note "cuDNN prefill round $r (Volt, then torch SDPA)"
  "$BIN/volt_ops_bench" --json "$OUT/prefill_volt_r$r.jsonl" --only prefill_cudnn >/dev/null 2>&1
  PYTHONUNBUFFERED=1 python3 tools/ops_torch_anchor.py --json "$OUT/prefill_anchor_r$r.jsonl" \
    --only sdpa_prefill_long >/dev/null 2>&1
  grep -h '"T"' "$OUT/prefill_volt_r$r.jsonl" "$OUT/prefill_anchor_r$r.jsonl" | cut -c1-160
done
note "done, status $status"
(cd "$OUT" && tar czf logs.tgz --remove-files \
  $(ls | grep -vE '^(ops_table.md|ops_volt.jsonl|ops_anchor.jsonl|summary.txt|logs.tgz)$') 2>/dev/null)
exit $status
