#!/usr/bin/env bash
# One device call for the pinned-staging weight upload (issue 12, sdk/cuda_upload.h): build the GPU tests, the model
# and vision GPU tests, `volt` and volt_upload_bench (through scripts/device-test.sh's build stage), then, in order of
# importance and within one deadline: the uploader's GPU tests, the benchmark (old path vs staged from a real mmapped
# checkpoint written on the machine, warm and cold, with the H2D ceilings; bench/upload_bench.cpp), `volt logits`
# loading that checkpoint, the backbone GPU tests (TextModelGpu.*: load progress and cancel included), the vision GPU
# tests, compute-sanitizer memcheck on the uploader tests. Usage (device tool, carry ["build-opsdeps"]):
#   bench/upload_device_run.sh        logs and JSON lines under $OUT; UPLOAD_DEADLINE_S (default 560) bounds it all
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/build-gpu/out}
mkdir -p "$OUT"
t0=$(date +%s)
deadline=$((t0 + ${UPLOAD_DEADLINE_S:-560}))
note() { echo "== [$(($(date +%s) - t0)) s] $*" | tee -a "$OUT/summary.txt"; }
left() { local l=$((deadline - $(date +%s))); [[ $l -gt $1 ]] && echo "$1" || echo $((l > 5 ? l : 5)); }
note "build"
OUT=$OUT/build DEVICE_TEST_STAGES=build DEVICE_TEST_PARTS=model DEVICE_TEST_UNIT=0 \
  DEVICE_TEST_TARGETS="volt_gpu_tests volt_gpu_model_tests volt_gpu_vision_tests volt volt_upload_bench" \
  scripts/device-test.sh >"$OUT/build_stage.log" 2>&1 || { tail -40 "$OUT/build_stage.log"; note "build FAILED"; exit 1; }
source scripts/device-env.sh  # .devdeps, cuDNN, NCCL, NCCL_NVLS_ENABLE=0
BIN=build-gpu/bin
status=0
nproc; free -g | head -2; df -h . /tmp | tail -2
run() {  # run NAME TIMEOUT CMD...: log to $OUT/NAME.log, print the gtest summary lines
  local name=$1 t=$2; shift 2
  note "$name (timeout $(left "$t") s)"
  timeout "$(left "$t")" "$@" >"$OUT/$name.log" 2>&1 || { local rc=$?; status=1; note "$name FAILED (rc $rc)"; }
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|Failure|Which is|actual" "$OUT/$name.log" | head -40
}
run upload_tests 90 "$BIN/volt_gpu_tests" --gtest_color=no --gtest_filter='CudaUploadGpu.*'
DIR=$PWD/build-gpu/upload-bench
note "benchmark (timeout $(left 200) s)"
timeout "$(left 200)" "$BIN/volt_upload_bench" --dir "$DIR" --json "$OUT/upload.jsonl" --keep 2>&1 | tee "$OUT/bench.log" ||
  { status=1; note "benchmark FAILED"; }
if [[ -f $DIR/model.safetensors ]]; then
  echo "[1, 2, 3]" >"$DIR/ids.json"
  note "volt logits --device cuda on the benchmark's checkpoint (warm page cache)"
  s=$(date +%s.%N)
  timeout "$(left 60)" "$BIN/volt" logits --model "$DIR" --ids-file "$DIR/ids.json" --out "$DIR/l.npy" --device cuda \
    >"$OUT/volt_logits.log" 2>&1 || { status=1; tail -5 "$OUT/volt_logits.log"; }
  note "volt logits wall $(awk "BEGIN{print $(date +%s.%N) - $s}") s for $(stat -c %s "$DIR/model.safetensors") bytes"
fi
rm -rf "$DIR"
run model_tests 150 "$BIN/volt_gpu_model_tests" --gtest_color=no --gtest_filter='TextModelGpu.*'
run vision_tests 120 "$BIN/volt_gpu_vision_tests" --gtest_color=no
run memcheck 60 compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/volt_gpu_tests" \
  --gtest_filter='CudaUploadGpu.EqualsTheOldPath*:CudaUploadGpu.Refuses*'
grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | tail -1
note "done, status $status"
(cd "$OUT" && tar czf logs.tgz --remove-files $(ls | grep -vE '^(upload.jsonl|bench.log|summary.txt|logs.tgz)$') 2>/dev/null)
exit $status
