// cuDNN SDPA for the ViT (vision/cuda/vit_attention_cudnn.h): cudnn-frontend's graph API, dynamic loading through
// the handle kernels/cuda/attention_cudnn.cu sets (cudnn_sdpa_available() loads libcudnn once per process). Layout:
// BSHD with B = crops: dims {B, H, T, hd}, strides {batch_stride, hd, token_stride, 1} into the packed q|k|v rows;
// inference mode (no softmax stats), no mask.
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <cudnn_frontend.h>

#include "kernels/cuda/attention_cudnn.h"
#include "sdk/cuda_check.h"
#include "vision/cuda/vit_attention_cudnn.h"

namespace volt::vision::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kQ = 1, kK = 2, kV = 3, kO = 4;

using Key = std::tuple<int64_t, int64_t, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float>;

struct Entry {
    std::shared_ptr<fe::graph::Graph> graph;
    void* workspace = nullptr;
};

struct PerDevice {
    cudnnHandle_t handle = nullptr;
    std::map<Key, Entry> graphs;
};

std::mutex g_mu;
std::map<int, PerDevice>* g_devices = new std::map<int, PerDevice>();  // never destroyed (process-exit order)

Status fe_status(fe::error_t e, const char* what) {
    if (e.is_good()) return Status::ok();
    return internal_error("ViT attention (cuDNN): ", what, ": ", e.get_message());
}

Expected<Entry*> get_graph(PerDevice& dev, const VitAttentionParams& p) {
    const Key key{p.batch, p.tokens, p.heads, p.head_dim, p.token_stride, p.batch_stride, p.k_offset, p.v_offset,
                  p.o_token_stride, p.o_batch_stride, p.scale};
    auto it = dev.graphs.find(key);
    if (it != dev.graphs.end()) return &it->second;
    const int64_t B = p.batch, T = p.tokens, H = p.heads, D = p.head_dim;
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto tensor = [&](const char* name, int64_t uid) {
        return g->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim({B, H, T, D})
                             .set_stride({p.batch_stride, D, p.token_stride, 1}));
    };
    auto Q = tensor("Q", kQ);
    auto K = tensor("K", kK);
    auto V = tensor("V", kV);
    auto opts = fe::graph::SDPA_attributes()
                    .set_name("volt_vit")
                    .set_generate_stats(false)
                    .set_causal_mask(false)
                    .set_attn_scale(p.scale);
    auto [O, stats] = g->sdpa(Q, K, V, opts);
    (void)stats;
    O->set_output(true).set_uid(kO).set_dim({B, H, T, D}).set_stride({p.o_batch_stride, D, p.o_token_stride, 1});
    VOLT_RETURN_IF_ERROR(fe_status(g->build(dev.handle, {fe::HeurMode_t::A}), "graph build"));
    int64_t ws = 0;
    VOLT_RETURN_IF_ERROR(fe_status(g->get_workspace_size(ws), "workspace size"));
    Entry e;
    e.graph = g;
    if (ws > 0) VOLT_CUDA_RETURN_IF_ERROR(cudaMalloc(&e.workspace, size_t(ws)));
    return &dev.graphs.emplace(key, std::move(e)).first->second;
}

}  // namespace

bool vit_cudnn_available() { return volt::cuda::cudnn_sdpa_available(); }

Status vit_cudnn_attention(const VitAttentionParams& p, cudaStream_t stream) {
    if (!vit_cudnn_available()) return unimplemented("ViT attention (cuDNN): libcudnn.so.9 could not be loaded");
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        PerDevice& dev = (*g_devices)[device];
        if (!dev.handle && fe::detail::create_handle(&dev.handle) != CUDNN_STATUS_SUCCESS)
            return internal_error("ViT attention (cuDNN): cudnnCreate failed");
        if (fe::detail::set_stream(dev.handle, stream) != CUDNN_STATUS_SUCCESS)
            return internal_error("ViT attention (cuDNN): cudnnSetStream failed");
        VOLT_ASSIGN_OR_RETURN(Entry * e, get_graph(dev, p));
        const char* base = static_cast<const char*>(p.qkv);
        std::unordered_map<int64_t, void*> pack = {
            {kQ, const_cast<char*>(base)},
            {kK, const_cast<char*>(base + p.k_offset * 2)},
            {kV, const_cast<char*>(base + p.v_offset * 2)},
            {kO, p.o}};
        return fe_status(e->graph->execute(dev.handle, pack, e->workspace), "execute");
    } catch (const std::exception& ex) {
        return internal_error("ViT attention (cuDNN): ", ex.what());
    }
}

}  // namespace volt::vision::cuda
