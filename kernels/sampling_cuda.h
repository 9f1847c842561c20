// Logits processing and next-token selection on the GPU for a batch of rows (CUDA-only interface; the CPU twin is
// cpu::sample in kernels/sampling.h, whose order and rules this follows exactly):
//   repetition penalty (each distinct history id once) -> temperature -> top-k -> top-p -> min-p -> inverse CDF
//   of the row's uniform draw over the survivors in descending-logit order (equal logits: lower id first).
// temperature 0 is greedy: the argmax after the penalty, lowest id on ties (one pass, no workspace).
// Otherwise one CTA per row walks the row's sorted prefix with fp64 probabilities, as the twin does. With top-k <= 4096,
// or top-p without top-k, that prefix comes from a radix select (no full sort; a top-p row whose prefix exceeds 4096
// tokens, i.e. a flat distribution, falls back); else the penalised logits are sorted per row (CUB segmented radix
// sort, stable: ties keep ascending ids). A row holding a NaN logit gets id -1 (the twin returns an error).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/sampling.h"
#include "sdk/status.h"

namespace volt::cuda {

struct SampleParams {
    int64_t num_rows = 0;                 // N
    int64_t vocab_size = 0;               // V (< 2^31)
    const float* logits = nullptr;        // [N, V] fp32 device, row stride logits_stride (not modified)
    int64_t logits_stride = 0;
    volt::SamplingParams sampling;        // the same options for every row
    const int32_t* history = nullptr;     // optional [N, history_stride] device ids the penalty applies to
    int64_t history_stride = 0;
    const int32_t* history_len = nullptr; // [N] device entries of each history row (needed with history)
    const double* uniform = nullptr;      // [N] device draws in [0, 1) (ignored when greedy)
    int32_t* out_ids = nullptr;           // [N] device
    void* workspace = nullptr;            // device scratch of sample_workspace_bytes(p) bytes (not needed greedy)
    size_t workspace_bytes = 0;
};

Status validate(const SampleParams& p);
// Scratch bytes `run` needs for these sizes and options (0 when greedy).
size_t sample_workspace_bytes(const SampleParams& p);
Status run(const SampleParams& p, cudaStream_t stream);

}  // namespace volt::cuda
