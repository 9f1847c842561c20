#!/usr/bin/env bash
# The GPU machine's one entry point: configure with the `gpu` preset (sm_90a), build the GPU tests and benchmarks,
# run the GPU tests, compute-sanitizer memcheck + racecheck on a short run, then the benchmarks with their anchors
# (flash-linear-attention + torch copy/GEMM ceilings) in the same run, and print a table. Logs go under $OUT.
#
# Here (dev machine), once:   scripts/device-deps.sh            (Debian -dev packages -> .devdeps/)
#                             fla wheels -> .whl/                (see bench/lightning_notes.md)
# Device tool:                run(command="scripts/device-test.sh", carry=[".devdeps", ".whl"])
# Stages: DEVICE_TEST_STAGES="build test sanitize bench" (default: all); DEVICE_TEST_QUICK=1 trims the benchmark.
# Parts: DEVICE_TEST_PARTS="lightning ops model multigpu" (default: lightning ops model) selects the lightning attention (issue 6), the
# issue-7 ops (GEMM, MoE, softmax attention, small kernels: bench/ops_bench.cu + tools/ops_torch_anchor.py) in the
# test variants, sanitizer runs and benchmarks, and the whole backbone on the GPU against the CPU one (issue 12,
# tests/gpu/model); "vision" (issue 12) the CLIP ViT on the GPU against the CPU tower (tests/gpu/vision), the sanitizers
# on its attention kernels, and `volt bench vision` at 1 and 37 crops per attention backend beside torch's SDPA at the
# attention's shape; "moe" the quantised decode experts (ops bench, bench e2e with FP8 experts, ncu with the profile
# stage) and the MoE's sanitizer runs, e.g. DEVICE_TEST_PARTS=moe DEVICE_TEST_UNIT=0
# DEVICE_TEST_GPU_FILTER='Moe*'. The main GPU test run runs every kernel test unless DEVICE_TEST_GPU_FILTER says.
# cuDNN SDPA: cudnn-frontend's headers under .devdeps/cudnn_frontend (how to fetch them: kernels/cuda/ops.cmake);
# libcudnn comes from the machine's Python (nvidia-cudnn) and is put on LD_LIBRARY_PATH here. When the tracked tree
# plus .devdeps exceed the device tool's 64 MiB carry, carry an xz tarball of .devdeps from an ignored build-* dir and
# unpack it first (python3 tarfile; the machine may lack xz).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/build-gpu/out}
mkdir -p "$OUT"
STAGES=${DEVICE_TEST_STAGES:-build test sanitize bench}  # also: profile (ncu)
QUICK=${DEVICE_TEST_QUICK:-0}
PARTS=${DEVICE_TEST_PARTS:-lightning ops model}
UNIT=${DEVICE_TEST_UNIT:-1}  # 0: skip building and running the core unit tests (saves device time)
has_part() { [[ " $PARTS " == *" $1 "* ]]; }
export NCCL_NVLS_ENABLE=0
status=0
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
note() { echo "== device-test: $*" | tee -a "$OUT/summary.txt"; }

# ---- dependencies: .devdeps, fla wheels, cuDNN, NCCL (LD_LIBRARY_PATH, PKGCONF, NCCL_ROOT) -------------------------
source "$ROOT/scripts/device-env.sh"
[[ -d $ROOT/.devdeps/usr ]] || note "no .devdeps: relying on system packages"

nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
BIN=$ROOT/build-gpu/bin

if has_stage build; then
  note "configure + build (gpu preset)"
  if ! cmake --preset gpu -DPKG_CONFIG_EXECUTABLE="$PKGCONF" ${NCCL_ROOT:+-DVOLT_NCCL_ROOT="$NCCL_ROOT"} \
      >"$OUT/configure.log" 2>&1; then
    tail -30 "$OUT/configure.log"; note "configure FAILED"; exit 1
  fi
  TARGETS="volt_gpu_tests"
  has_part lightning && TARGETS+=" volt_lightning_bench volt_lightning_loads_probe"
  has_part ops && TARGETS+=" volt_ops_bench"
  has_part model && TARGETS+=" volt_gpu_model_tests volt"
  has_part multigpu && TARGETS+=" volt_gpu_model_tests volt"
  has_part vision && TARGETS+=" volt_gpu_vision_tests volt_ops_bench volt"
  has_part moe && TARGETS+=" volt_ops_bench volt"
  TARGETS=${DEVICE_TEST_TARGETS:-$TARGETS}  # e.g. "volt_gpu_model_tests volt": build only those
  [[ $UNIT != 0 ]] && TARGETS+=" volt_unit_tests"
  if ! cmake --build build-gpu -j"$(nproc)" --target $TARGETS \
      >"$OUT/build.log" 2>&1; then
    grep -E "error|FAILED" "$OUT/build.log" | head -40; note "build FAILED"; exit 1
  fi
  grep -E "spill|warning" "$OUT/build.log" | grep -v "^--" | head -20
fi

if has_stage test; then
  # The core's unit tests on a machine with a GPU: CudaMemory (the caching, stream-ordered allocator, device copies,
  # out-of-memory as RESOURCE_EXHAUSTED) runs only here; the rest checks the core builds and passes on this image.
  if [[ $UNIT != 0 ]]; then
    note "core unit tests (CUDA allocator included)"
    "$BIN/volt_unit_tests" --gtest_color=no >"$OUT/unit_tests.log" 2>&1
    rc=$?
    grep -E "^\[  (FAILED|PASSED|SKIPPED) |CudaMemory|Failure" "$OUT/unit_tests.log" | head -20
    [[ $rc -ne 0 ]] && { note "core unit tests FAILED (rc $rc)"; status=1; }
  fi
  note "GPU tests"
  if [[ -x $BIN/volt_gpu_tests ]]; then
    # DEVICE_TEST_GPU_FILTER: a gtest filter for a quicker run (default: every kernel test).
    "$BIN/volt_gpu_tests" --gtest_color=no --gtest_filter="${DEVICE_TEST_GPU_FILTER:-*}" >"$OUT/gpu_tests.log" 2>&1
    rc=$?
  else
    echo "volt_gpu_tests not built (DEVICE_TEST_TARGETS)"; rc=0
  fi
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|decode 100K|Failure|rel_error|Which is|actual" "$OUT/gpu_tests.log" | head -60
  [[ $rc -ne 0 ]] && { note "GPU tests FAILED (rc $rc)"; status=1; }
  # run_gpu_tests LABEL BINARY LOG FILTER: one GPU test binary, its summary lines, FAILED noted.
  run_gpu_tests() {
    note "$1"
    "$BIN/$2" --gtest_color=no --gtest_filter="$4" >"$OUT/$3.log" 2>&1
    rc=$?
    grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|^\[.*\] rows|^\[attention|Failure|Which is|actual" "$OUT/$3.log" |
      head -60
    [[ $rc -ne 0 ]] && { note "$1 FAILED (rc $rc)"; status=1; }
  }
  # The whole backbone on the GPU against the CPU backbone (text/cuda, issue 12).
  has_part model && run_gpu_tests "GPU backbone tests" volt_gpu_model_tests gpu_model_tests '*'
  # The backbone split over every GPU of the machine against one GPU and the CPU (issue 8; needs >= 2 GPUs).
  has_part multigpu && run_gpu_tests "multi-GPU tests ($(nvidia-smi -L | wc -l) GPUs)" volt_gpu_model_tests \
    gpu_multi_tests 'TextModelMultiGpu.*'
  # The ViT, projector and VL end to end against the CPU (vision/cuda, issue 12).
  has_part vision && run_gpu_tests "GPU vision tests" volt_gpu_vision_tests gpu_vision_tests '*'
  # The MoE GEMM path on the own grouped GEMM (kernels/cuda/moe_gemm_sm90.cu) for both products, beside the default.
  has_part ops && VOLT_MOE_OWN_GEMM=both run_gpu_tests "GPU MoE tests, VOLT_MOE_OWN_GEMM=both" volt_gpu_tests \
    gpu_tests_moe_own 'MoeGpu.*'
  has_part lightning && for variant in tma_cluster wgmma_cluster mma_sync; do
    note "GPU prefill tests, VOLT_LIGHTNING_PREFILL=$variant"
    VOLT_LIGHTNING_PREFILL=$variant "$BIN/volt_gpu_tests" --gtest_color=no \
      --gtest_filter='LightningGpu.*Prefill*:LightningGpu.*Ragged*:LightningGpu.*Continuation*:LightningGpu.*Fused*:LightningGpu.*Sanitizer*:LightningGpu.*ContextParallel*:LightningGpu.*Neighbour*' >"$OUT/gpu_tests_$variant.log" 2>&1
    rc=$?
    grep -E "^\[  (FAILED|PASSED) |Failure|actual" "$OUT/gpu_tests_$variant.log" | head -20
    [[ $rc -ne 0 ]] && { note "GPU tests ($variant) FAILED (rc $rc)"; status=1; }
  done
fi

if has_stage sanitize; then
  # racecheck on the plain inputs only: with the SiLU on load, the TMA kernel's producer warps write the stage and
  # the consumers read it with ldmatrix after mbarrier hand-offs racecheck does not follow, and it reports every
  # such pair (bench/lightning_notes.md, "compute-sanitizer").
  has_part lightning && for variant in tma wgmma_cluster mma_sync; do
    for tool in memcheck racecheck; do
      note "compute-sanitizer $tool (short run, $variant)"
      VOLT_LIGHTNING_PREFILL=$variant compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/volt_gpu_tests" \
        --gtest_filter='LightningGpu.ShortSanitizerRun' >"$OUT/sanitize_${tool}_$variant.log" 2>&1
      rc=$?
      tail -2 "$OUT/sanitize_${tool}_$variant.log"
      [[ $rc -ne 0 ]] && { note "$tool ($variant) FAILED (rc $rc)"; status=1; }
    done
  done
  # sanitize_run LABEL BINARY FILTER: memcheck and racecheck on one test binary's short runs; logs named after the
  # label (several runs share a binary).
  sanitize_run() {
    local tag=${1//[^A-Za-z0-9]/_}
    for tool in memcheck racecheck; do
      note "compute-sanitizer $tool ($1)"
      compute-sanitizer --tool "$tool" --error-exitcode 9 "$BIN/$2" --gtest_filter="$3" \
        >"$OUT/sanitize_${tool}_${tag}.log" 2>&1
      rc=$?
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY|FAILED|PASSED" "$OUT/sanitize_${tool}_${tag}.log" | tail -3
      [[ $rc -ne 0 ]] && { note "$tool ($1) FAILED (rc $rc)"; status=1; }
    done
  }
  has_part ops && sanitize_run "short runs of the issue-7 ops" volt_gpu_tests '*ShortSanitizerRun*:-LightningGpu.*'
  has_part ops && VOLT_MOE_OWN_GEMM=both sanitize_run "the MoE's short run on the own grouped GEMM" volt_gpu_tests \
    'MoeGpu.ShortSanitizerRun'
  has_part vision && sanitize_run "the ViT's own attention kernels, short runs" volt_gpu_vision_tests \
    'VisionGpu.AttentionShortSanitizerRun'
  # (with the token pick's: both are decode-step kernels)
  has_part moe && sanitize_run "the MoE's and the pick's short runs" volt_gpu_tests \
    'Moe*ShortSanitizerRun:SmallOpsGpu.ShortSanitizerRun'
fi

if has_stage profile && has_part lightning; then
  # DRAM bytes and tensor-pipe activity of one T=128K prefill (clocks left as found: --clock-control none).
  note "ncu: prefill T=131072"
  ncu --clock-control none --kernel-name regex:prefill --launch-skip 33 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --metrics dram__bytes_read.sum,dram__bytes_write.sum \
    "$BIN/volt_lightning_bench" --prefill-only --quick >"$OUT/ncu.log" 2>&1
  grep -E "dram__|Duration|Throughput|Stall|stall|Warp Cycles|==PROF==|Error" "$OUT/ncu.log" | head -30
fi
if has_stage profile && has_part moe; then
  # The FP8 weight-only decode GEMVs at T = 1 (the gated and the down product, after the warm-up runs): the mangled
  # names' template arguments pick them (MoeWeightType 1 = FP8, kAct false).
  note "ncu: FP8 decode experts at T = 1"
  ncu --clock-control none --kernel-name-base mangled \
    --kernel-name 'regex:MoeWeightTypeE1ELi[0-9]+ELb0E' --launch-skip 10 --launch-count 2 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --metrics dram__bytes_read.sum \
    "$BIN/volt_ops_bench" --only moe --moe-tokens 1 >"$OUT/ncu_moe.log" 2>&1
  grep -E "gemv_mma|Duration|DRAM Throughput|Achieved Occupancy|Warp Cycles Per Issued|dram__bytes|==PROF==|Error" \
    "$OUT/ncu_moe.log" | head -24
  # Where an FP8 decode step's time goes, kernel by kernel: 4 layers at 4K context, batch 1 and 64, the timed
  # decode_sample steps only (VOLT_BENCH_PROFILE opens the profiler's window around them; the graphs' kernels are
  # profiled one by one, so a kernel's time here is its time alone), summed per kernel by tools/kernel_breakdown.py
  # with the DRAM bytes each moves (the step's wall time is in volt bench e2e's own rows).
  for B in 1 64; do
    note "ncu: the kernels of an FP8 decode step, batch $B"
    VOLT_BENCH_PROFILE=decode_sample ncu --profile-from-start off --clock-control none --cache-control none \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum --csv --page raw \
      "$BIN/volt" bench e2e --synthetic minimax-text-01 --device cuda --layers 4 --prompt-tokens 512 --reps 1 \
      --warmup 0 --decode-context 4096 --decode-steps 2 --decode-batch $B --expert-weights fp8 \
      >"$OUT/ncu_decode_b$B.csv" 2>"$OUT/ncu_decode_b$B.err"
    python3 tools/kernel_breakdown.py "$OUT/ncu_decode_b$B.csv" --steps 2 | tee "$OUT/decode_b${B}_kernels.txt" |
      head -30
  done
fi

QARG=""
[[ $QUICK == 1 ]] && QARG="--quick"
if has_stage bench && has_part multigpu; then
  # The real MiniMax-Text-01 geometry with synthetic weights on 1 GPU and split over all of them, same run
  # (DEVICE_TEST_E2E_ARGS: layers and lengths; default 2 layers = 1 lightning + 1 softmax, 8K and 32K).
  E2E_ARGS=${DEVICE_TEST_E2E_ARGS:---layers 2 --prompt-tokens 8192 --prompt-tokens 32768}
  # Powers of two only: the real geometry's 64 heads, 8 kv heads and 32 experts do not split over 3 GPUs.
  for g in 1 2 4 8; do
    [[ $g -le $(nvidia-smi -L | wc -l) ]] || break
    note "volt bench e2e --gpus $g $E2E_ARGS"
    "$BIN/volt" bench e2e --synthetic minimax-text-01 --device cuda --gpus "$g" $E2E_ARGS \
      --json "$OUT/e2e_gpus$g.json" 2>&1 | tee "$OUT/e2e_gpus$g.log" | tail -8
  done
  # NCCL all-reduce latency at the split decode step's sizes (bench/RESULTS.md, "CUDA graphs for the split decode step").
  [[ $(nvidia-smi -L | wc -l) -ge 2 ]] && python3 tools/allreduce_latency.py --json "$OUT/allreduce.jsonl" 2>&1 | tail -5
fi

if has_stage bench && has_part model; then
  # Stop latency of a long prompt and its prefill on this GPU (issue 12): the real geometry, synthetic weights,
  # stops asked at several points of the prefill (DEVICE_TEST_STOP_ARGS; a 1M-token prompt takes minutes).
  STOP_ARGS=${DEVICE_TEST_STOP_ARGS:---layers 2 --prompt-tokens 131072 --cancel-at 0.5 --cancel-at 0.9}
  note "volt bench e2e $STOP_ARGS (stop latency)"
  "$BIN/volt" bench e2e --synthetic minimax-text-01 --device cuda $STOP_ARGS --decode-context 1024 --decode-steps 4 \
    --json "$OUT/e2e_stop.json" 2>&1 | tee "$OUT/e2e_stop.log" | grep -E "prefill|cancel"
fi

if has_stage bench && has_part ops; then
  note "benchmark of the issue-7 ops (Volt), then the torch anchors"
  "$BIN/volt_ops_bench" --json "$OUT/ops_volt.jsonl" $QARG >"$OUT/ops_bench.log" 2>&1
  rc=$?
  [[ $rc -ne 0 ]] && { tail -5 "$OUT/ops_bench.log"; note "ops benchmark FAILED (rc $rc)"; status=1; }
  # The opt-in experiments: a prefill piece's attention over 128K / 1M keys in key blocks vs one call, a prefill
  # piece beside decode steps on two streams, and what cuDNN's other SDPA plans and cuBLASLt's other algorithms give
  # at the shapes Volt runs (bench/vision_notes.md).
  "$BIN/volt_ops_bench" --only blocks,overlap,cudnn_plans,gemm_algos --json "$OUT/ops_experiments.jsonl" \
    >>"$OUT/ops_bench.log" 2>&1 ||
    { tail -5 "$OUT/ops_bench.log"; note "ops experiments FAILED"; status=1; }
  cat "$OUT/ops_experiments.jsonl" >>"$OUT/ops_volt.jsonl" 2>/dev/null
  PYTHONUNBUFFERED=1 python3 tools/ops_torch_anchor.py --json "$OUT/ops_anchor.jsonl" $QARG \
    >"$OUT/ops_anchor.log" 2>&1 || { tail -5 "$OUT/ops_anchor.log"; note "ops anchors FAILED"; }
  # torch's SDPA at the ViT's attention shape, against the cudnn_plans rows above.
  python3 tools/ops_torch_anchor.py --only vit_attn --json "$OUT/ops_anchor_vit.jsonl" >>"$OUT/ops_anchor.log" 2>&1 &&
    grep vit_attn "$OUT/ops_anchor_vit.jsonl" >>"$OUT/ops_anchor.jsonl"
  python3 tools/ops_report.py "$OUT/ops_volt.jsonl" "$OUT/ops_anchor.jsonl" | tee "$OUT/ops_table.md"
fi

if has_stage bench && has_part moe; then
  # The MoE's decode batches with quantised experts, scripts/moe-ab.sh: the ops bench's token sweep ("grouped" and
  # "grouped_f16" rows: bf16 widening and f16 products; "..._one_warp": the gated product not cut in parts), then end
  # to end (4 layers of the real geometry, FP8 experts, batch 1 and 64 at 4K context), under each of
  # DEVICE_TEST_MOE_AB's environment settings in turn, twice (default: the gated product cut in parts or not).
  OUT=$OUT MOE_AB=${DEVICE_TEST_MOE_AB:-VOLT_MOE_DECODE_SPLIT=1 VOLT_MOE_DECODE_SPLIT=0} MOE_AB_TOKENS=1,2,4,8,16,64 \
    "$ROOT/scripts/moe-ab.sh" || { note "MoE A/B FAILED"; status=1; }
fi

if has_stage bench && has_part vision; then
  # The ViT forward at 1 and 37 crops (synthetic ViT-L/14-336 weights) with each attention backend, alternating, then
  # the attention alone (volt_ops_bench --only vit_attn) beside torch's SDPA at the same shape.
  for r in 1 2; do for backend in wgmma cudnn; do
    note "volt bench vision, attention $backend (round $r)"
    VOLT_VIT_ATTENTION=$backend "$BIN/volt" bench vision --synthetic vit-l-336 --device cuda --crops 1 --crops 37 \
      --json "$OUT/vision_${backend}_$r.json" 2>&1 | tee "$OUT/vision_${backend}_$r.log" | grep -iE "crop|attention"
  done; done
  "$BIN/volt_ops_bench" --only vit_attn --json "$OUT/ops_vit_attn.jsonl" >"$OUT/ops_vit_attn.log" 2>&1 &&
    cat "$OUT/ops_vit_attn.jsonl" | grep vit_attn
  python3 tools/ops_torch_anchor.py --only vit_attn --json "$OUT/ops_anchor_vit.jsonl" >>"$OUT/ops_anchor.log" 2>&1 &&
    grep -E '"packed".*"(default|cudnn)"' "$OUT/ops_anchor_vit.jsonl"
fi

if has_stage bench && has_part lightning; then
  note "benchmark (Volt)"
  "$BIN/volt_lightning_bench" --json "$OUT/bench_volt.jsonl" $QARG 2>&1 | tee "$OUT/bench_volt.log" | tail -12
  "$BIN/volt_lightning_bench" --prefill-only --quick --silu --json "$OUT/bench_silu.jsonl" 2>&1 | grep prefill
  grep prefill_silu "$OUT/bench_silu.jsonl" >>"$OUT/bench_volt.jsonl"
  for variant in tma_cluster wgmma_cluster wgmma mma_sync; do  # A/B of the other prefill variants, same run
    VOLT_LIGHTNING_PREFILL=$variant "$BIN/volt_lightning_bench" --prefill-only --quick \
      --json "$OUT/bench_$variant.jsonl" 2>&1 | grep prefill
    grep prefill "$OUT/bench_$variant.jsonl" >>"$OUT/bench_volt.jsonl"
  done
  # The prefill's memory traffic alone (no arithmetic): how close the kernel is to its own load pattern.
  "$BIN/volt_lightning_loads_probe" >"$OUT/bench_loads_probe.jsonl" 2>&1
  grep -oE '"(variant|ms)": [^,}]+' "$OUT/bench_loads_probe.jsonl" | paste -sd' ' 
  note "anchors (torch copy/GEMM ceilings, flash-linear-attention)"
  PYTHONUNBUFFERED=1 python3 tools/lightning_fla_anchor.py --json "$OUT/bench_anchor.jsonl" $QARG \
    >"$OUT/bench_anchor.log" 2>&1
  tail -12 "$OUT/bench_anchor.log"
  python3 tools/lightning_report.py "$OUT/bench_volt.jsonl" "$OUT/bench_anchor.jsonl" | tee "$OUT/table.md"
fi
note "done, status $status"
# The device tool returns at most 8 files: keep the table and the raw numbers, pack the logs.
(cd "$OUT" && tar czf logs.tgz --remove-files $(ls | grep -vE '^(table.md|ops_table.md|bench_volt.jsonl|bench_anchor.jsonl|ops_volt.jsonl|ops_anchor.jsonl|summary.txt|logs.tgz)$') 2>/dev/null)
exit $status
