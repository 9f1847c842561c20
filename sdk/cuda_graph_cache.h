// Captured CUDA graphs of a repeated piece of GPU work (a decode step), replayed with one launch instead of one per
// kernel. A graph bakes in every launch's grid and arguments, so it is kept per `key` (what the host decided: batch
// size, split counts, ...) together with the device buffers its kernels read and write: when a buffer has been
// reallocated since the capture, find() misses and the caller runs the work eagerly and captures it again.
// CUDA builds only (include from CUDA-enabled code).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <span>
#include <vector>

#include "sdk/status.h"

namespace volt {

// Records what `enqueue()` queues on `stream` (nothing runs; not the legacy default stream) as an executable graph,
// in thread-local capture mode (other threads may capture or run meanwhile). `enqueue` must not allocate, synchronise
// or touch other streams. On failure the stream is out of capture mode again and the status says why.
Expected<cudaGraphExec_t> capture_graph(cudaStream_t stream, const std::function<Status()>& enqueue);

class CudaGraphCache {
public:
    explicit CudaGraphCache(size_t max_graphs = 16) : max_graphs_(max_graphs) {}
    ~CudaGraphCache();
    CudaGraphCache(const CudaGraphCache&) = delete;
    CudaGraphCache& operator=(const CudaGraphCache&) = delete;

    // The graph captured for `key` with exactly these `buffers`, else null (a stale one is dropped).
    cudaGraphExec_t find(std::span<const int64_t> key, std::span<const void* const> buffers);
    // capture_graph(stream, enqueue), kept for key + buffers (the least recently used goes beyond max_graphs). On
    // failure nothing is kept; the caller runs eagerly.
    Status capture(std::span<const int64_t> key, std::span<const void* const> buffers, cudaStream_t stream,
                   const std::function<Status()>& enqueue);
    size_t size() const { return graphs_.size(); }
    void clear();

private:
    struct Graph {
        std::vector<int64_t> key;
        std::vector<const void*> buffers;
        cudaGraphExec_t exec = nullptr;
    };
    std::list<Graph>::iterator locate(std::span<const int64_t> key);  // the graph kept for `key`, or end()

    const size_t max_graphs_;
    std::list<Graph> graphs_;  // most recently used first
};

}  // namespace volt
