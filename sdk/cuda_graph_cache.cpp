#include "sdk/cuda_graph_cache.h"

#include <algorithm>

#include "sdk/cuda_check.h"

namespace volt {

CudaGraphCache::~CudaGraphCache() { clear(); }

void CudaGraphCache::clear() {
    // A launched graph may still run: destroying its exec is allowed, CUDA frees it once the launch is done.
    for (Graph& g : graphs_) (void)cudaGraphExecDestroy(g.exec);
    graphs_.clear();
}

std::list<CudaGraphCache::Graph>::iterator CudaGraphCache::locate(std::span<const int64_t> key) {
    return std::find_if(graphs_.begin(), graphs_.end(),
                        [&](const Graph& g) { return std::equal(key.begin(), key.end(), g.key.begin(), g.key.end()); });
}

cudaGraphExec_t CudaGraphCache::find(std::span<const int64_t> key, std::span<const void* const> buffers) {
    const auto it = locate(key);
    if (it == graphs_.end()) return nullptr;
    if (!std::equal(buffers.begin(), buffers.end(), it->buffers.begin(), it->buffers.end())) {
        (void)cudaGraphExecDestroy(it->exec);  // a buffer it writes has moved
        graphs_.erase(it);
        return nullptr;
    }
    graphs_.splice(graphs_.begin(), graphs_, it);
    return graphs_.front().exec;
}

Expected<cudaGraphExec_t> capture_graph(cudaStream_t stream, const std::function<Status()>& enqueue) {
    if (!stream) return invalid_argument("CUDA graph capture: the legacy default stream cannot be captured");
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal)));
    const Status queued = enqueue();
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);  // always: the stream leaves capture mode
    struct GraphGuard {
        cudaGraph_t g;
        ~GraphGuard() {
            if (g) (void)cudaGraphDestroy(g);
        }
    } guard{graph};
    if (!queued.is_ok()) {
        (void)cudaGetLastError();  // an invalidated capture's error is not sticky
        return queued.with_context("CUDA graph capture");
    }
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(ended));
    cudaGraphExec_t exec = nullptr;
    VOLT_RETURN_IF_ERROR(VOLT_CUDA_STATUS(cudaGraphInstantiateWithFlags(&exec, graph, 0)));
    return exec;
}

Status CudaGraphCache::capture(std::span<const int64_t> key, std::span<const void* const> buffers, cudaStream_t stream,
                               const std::function<Status()>& enqueue) {
    VOLT_ASSIGN_OR_RETURN(cudaGraphExec_t exec, capture_graph(stream, enqueue));
    if (const auto it = locate(key); it != graphs_.end()) {  // a stale graph of the same key
        (void)cudaGraphExecDestroy(it->exec);
        graphs_.erase(it);
    }
    graphs_.push_front(Graph{{key.begin(), key.end()}, {buffers.begin(), buffers.end()}, exec});
    while (graphs_.size() > max_graphs_) {
        (void)cudaGraphExecDestroy(graphs_.back().exec);
        graphs_.pop_back();
    }
    return Status::ok();
}

}  // namespace volt
