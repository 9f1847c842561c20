// cuDNN SDPA behind kernels/cuda/attention_cudnn.h, through the header-only cudnn-frontend graph API with dynamic
// loading (NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING): libcudnn is dlopen'ed here at first use, so neither the build
// nor machines without cuDNN need it. Layout: q/k/v/o are [T, H, D] token-major, i.e. cuDNN's BSHD with B = 1:
// dims {1, H, T, D}, strides {0-ish, stride_head, stride_token, 1}. Inference mode (no softmax stats), causal
// (top-left diagonal, equal query and key lengths), GQA through Hkv < Hq.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <cudnn_frontend.h>

#include "kernels/cuda/attention_cudnn.h"
#include "sdk/cuda_check.h"

namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;  // the frontend's dynamic-loading hook: set once below
}  // namespace cudnn_frontend

namespace volt::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kQ = 1, kK = 2, kV = 3, kO = 4;

struct Entry {
    std::shared_ptr<fe::graph::Graph> graph;
    void* workspace = nullptr;
    int64_t workspace_bytes = 0;
};

struct Device {
    cudnnHandle_t handle = nullptr;
    std::map<std::tuple<int64_t, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                        float>,
             Entry>
        graphs;
};

std::mutex g_mu;
std::map<int, Device>* g_devices = new std::map<int, Device>();  // never destroyed (process-exit order)

bool load_library() {
    static const bool ok = [] {
        const char* name = std::getenv("VOLT_CUDNN_LIBRARY");
        void* h = dlopen(name && *name ? name : "libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
        if (!h) return false;
        fe::cudnn_dlhandle = h;
        try {
            return fe::detail::get_backend_version() >= 90000;  // SDPA inference on Hopper: cuDNN 9
        } catch (const std::exception&) {
            return false;
        }
    }();
    return ok;
}

Status fe_status(fe::error_t e, const char* what) {
    if (e.is_good()) return Status::ok();
    return internal_error("attention (cuDNN): ", what, ": ", e.get_message());
}

Expected<Entry*> get_graph(Device& dev, const AttentionParams& p) {
    const auto key = std::make_tuple(p.num_tokens, p.num_heads, p.num_kv_heads, p.q_stride_token, p.q_stride_head,
                                     p.k_stride_token, p.k_stride_head, p.v_stride_token, p.v_stride_head,
                                     p.o_stride_token, p.o_stride_head, p.scale);
    auto it = dev.graphs.find(key);
    if (it != dev.graphs.end()) return &it->second;
    const int64_t T = p.num_tokens, D = p.head_dim, Hq = p.num_heads, Hkv = p.num_kv_heads;
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto tensor = [&](const char* name, int64_t uid, int64_t H, int64_t st, int64_t sh) {
        return g->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim({1, H, T, D})
                             .set_stride({T * st, sh, st, 1}));
    };
    auto Q = tensor("Q", kQ, Hq, p.q_stride_token, p.q_stride_head);
    auto K = tensor("K", kK, Hkv, p.k_stride_token, p.k_stride_head);
    auto V = tensor("V", kV, Hkv, p.v_stride_token, p.v_stride_head);
    auto opts = fe::graph::SDPA_attributes()
                    .set_name("volt_prefill")
                    .set_generate_stats(false)
                    .set_causal_mask(true)
                    .set_attn_scale(p.scale);
    auto [O, stats] = g->sdpa(Q, K, V, opts);
    (void)stats;
    O->set_output(true).set_uid(kO).set_dim({1, Hq, T, D}).set_stride({T * p.o_stride_token, p.o_stride_head,
                                                                       p.o_stride_token, 1});
    VOLT_RETURN_IF_ERROR(fe_status(g->build(dev.handle, {fe::HeurMode_t::A}), "graph build"));
    Entry e;
    e.graph = g;
    VOLT_RETURN_IF_ERROR(fe_status(g->get_workspace_size(e.workspace_bytes), "workspace size"));
    if (e.workspace_bytes > 0) VOLT_CUDA_RETURN_IF_ERROR(cudaMalloc(&e.workspace, e.workspace_bytes));
    return &dev.graphs.emplace(key, std::move(e)).first->second;
}

}  // namespace

bool cudnn_sdpa_available() { return load_library(); }

Status cudnn_sdpa_prefill(const AttentionParams& p, cudaStream_t stream) {
    if (!load_library()) return unimplemented("attention (cuDNN): libcudnn.so.9 could not be loaded");
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        Device& dev = (*g_devices)[device];
        if (!dev.handle && fe::detail::create_handle(&dev.handle) != CUDNN_STATUS_SUCCESS)
            return internal_error("attention (cuDNN): cudnnCreate failed");
        if (fe::detail::set_stream(dev.handle, stream) != CUDNN_STATUS_SUCCESS)
            return internal_error("attention (cuDNN): cudnnSetStream failed");
        VOLT_ASSIGN_OR_RETURN(Entry * e, get_graph(dev, p));
        std::unordered_map<int64_t, void*> pack = {{kQ, const_cast<void*>(p.q)},
                                                   {kK, const_cast<void*>(p.k)},
                                                   {kV, const_cast<void*>(p.v)},
                                                   {kO, p.o}};
        return fe_status(e->graph->execute(dev.handle, pack, e->workspace), "execute");
    } catch (const std::exception& ex) {
        return internal_error("attention (cuDNN): ", ex.what());
    }
}

}  // namespace volt::cuda
