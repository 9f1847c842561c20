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
    const int32_t* history_len = nullptr; // [N] device entries of each history row (needed with history or records)
    // Optional per-row records of a sequence's ids (the engine's TokenRecord bitmaps: uint32 [ceil(V / 32)], id i
    // present when bit i % 32 of word i / 32 is set), so that a long history need not be sent every step. A row
    // whose history_len is negative takes its penalty's ids from records[row] (none when that entry is null); a row
    // with a history and a record has that record rewritten from the history (a record rebuilt). [N] device pointers.
    uint32_t* const* records = nullptr;
    const double* uniform = nullptr;      // [N] device draws in [0, 1) (ignored when greedy)
    int32_t* out_ids = nullptr;           // [N] device
    void* workspace = nullptr;            // device scratch of sample_workspace_bytes(p) bytes (not needed greedy)
    size_t workspace_bytes = 0;
};

// Adds ids to per-sequence records (SampleParams::records' bitmaps; ids outside [0, V) are skipped): ids[i] into
// records[i] (one record per id: a decode step's rows; null entries skipped) or, with `record`, every id into that
// one (a prompt). The CPU twin is cpu::record_ids.
struct RecordIdsParams {
    const int32_t* ids = nullptr;        // [n] device
    int64_t n = 0;
    int64_t vocab_size = 0;              // V
    uint32_t* const* records = nullptr;  // [n] device pointers, or
    uint32_t* record = nullptr;          // one record for every id
};

Status validate(const SampleParams& p);
// Scratch bytes `run` needs for these sizes and options (0 when greedy).
size_t sample_workspace_bytes(const SampleParams& p);
Status run(const SampleParams& p, cudaStream_t stream);
Status run(const RecordIdsParams& p, cudaStream_t stream);

}  // namespace volt::cuda
