// cuDNN SDPA behind kernels/cuda/attention_cudnn.h, through the header-only cudnn-frontend graph API with dynamic
// loading (NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING): libcudnn is dlopen'ed here at first use, so neither the build
// nor machines without cuDNN need it. Layout: cuDNN's dims {B, H, T, D} with the caller's strides (the backbone:
// token-major [T, H, D] with B = 1; the ViT: crops of packed q|k|v rows). Softmax statistics on request (a
// prefill in blocks of keys merges by them), causal (the diagonal bottom-right aligned: after a cached prefix of
// S - T keys) or not, GQA through Hkv < Hq.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <cudnn_frontend.h>

#include "kernels/cuda/attention_cudnn.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_timing.h"

namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;  // the frontend's dynamic-loading hook: set once below
}  // namespace cudnn_frontend

namespace volt::cuda {
namespace {

namespace fe = cudnn_frontend;

constexpr int64_t kQ = 1, kK = 2, kV = 3, kO = 4, kStats = 5, kSeqLenQ = 6, kSeqLenKv = 7, kQOffset = 8,
                  kKOffset = 9, kVOffset = 10, kOOffset = 11;

struct Entry {
    std::shared_ptr<fe::graph::Graph> graph;
    void* workspace = nullptr;
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, float, bool,
                       bool, bool>;

// A prompt's pieces use up to block_keys / T + 1 shapes (kernels/attention_cuda.h, PrefillBlocks: 10 at the
// backbone's defaults); twice that leaves room for a second prompt's offset without rebuilding every piece's graph.
constexpr size_t kMaxTransientGraphs = 32;

struct Device {
    cudnnHandle_t handle = nullptr;
    std::map<Key, Entry> graphs;
    std::list<Key> transient_lru;  // transient specs' graphs, most recently used first
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

Status fe_status(fe::error_t e, const char* who, const char* what) {
    if (e.is_good()) return Status::ok();
    return internal_error(who, " (cuDNN): ", what, ": ", e.get_message());
}

int64_t kv_tokens(const CudnnSdpaSpec& s) { return s.kv_tokens > 0 ? s.kv_tokens : s.tokens; }

Key key_of(const CudnnSdpaSpec& s) {
    return {s.batch,      s.tokens,     kv_tokens(s), s.heads,      s.kv_heads,   s.head_dim,   s.q_stride_b,
            s.q_stride_h, s.q_stride_t, s.k_stride_b,   s.k_stride_h, s.k_stride_t, s.v_stride_b, s.v_stride_h,
            s.v_stride_t, s.o_stride_b, s.o_stride_h,   s.o_stride_t, s.causal,     s.scale,      s.stats,
            s.seq_lens,   s.ragged};
}

// A transient spec's graph was used: first in the LRU list; beyond kMaxTransientGraphs the least recent one goes.
Status touch_transient_graph(Device& dev, const Key& key) {
    dev.transient_lru.remove(key);
    dev.transient_lru.push_front(key);
    while (dev.transient_lru.size() > kMaxTransientGraphs) {
        auto it = dev.graphs.find(dev.transient_lru.back());
        dev.transient_lru.pop_back();
        if (it == dev.graphs.end()) continue;
        // cudaFree waits for the work queued before it, so a pending execute of this graph is done with it.
        if (it->second.workspace) VOLT_CUDA_RETURN_IF_ERROR(cudaFree(it->second.workspace));
        dev.graphs.erase(it);
    }
    return Status::ok();
}

// The graph of `s` on `handle`, its plans built from heuristics `modes`: the heuristics' first choice that builds
// (HEURISTICS_CHOICE: the cache), or every plan they offer (ALL: cudnn_sdpa_time_plans).
Expected<std::shared_ptr<fe::graph::Graph>> build_graph(cudnnHandle_t handle, const CudnnSdpaSpec& s,
                                                        const std::vector<fe::HeurMode_t>& modes,
                                                        fe::BuildPlanPolicy_t policy, const char* who) {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    auto tensor = [&](const char* name, int64_t uid, int64_t H, int64_t T, int64_t sb, int64_t sh, int64_t st) {
        return g->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim({s.batch, H, T, s.head_dim})
                             .set_stride({sb, sh, st, 1}));
    };
    const int64_t S = kv_tokens(s);
    auto Q = tensor("Q", kQ, s.heads, s.tokens, s.q_stride_b, s.q_stride_h, s.q_stride_t);
    auto K = tensor("K", kK, s.kv_heads, S, s.k_stride_b, s.k_stride_h, s.k_stride_t);
    auto V = tensor("V", kV, s.kv_heads, S, s.v_stride_b, s.v_stride_h, s.v_stride_t);
    auto opts = fe::graph::SDPA_attributes().set_name("volt_sdpa").set_generate_stats(s.stats).set_attn_scale(s.scale);
    // Equal lengths: both alignments are the same diagonal (kept top-left, the form the ViT's graphs were built with).
    // With seq_lens the bottom-right diagonal would sit at the valid lengths' corner; volt's padded blocks are not
    // causal.
    if (s.causal && S == s.tokens && !s.seq_lens) opts.set_causal_mask(true);
    else if (s.causal) opts.set_causal_mask_bottom_right(true);
    if (s.seq_lens) {
        auto len = [&](const char* name, int64_t uid) {
            return g->tensor(fe::graph::Tensor_attributes()
                                 .set_name(name)
                                 .set_uid(uid)
                                 .set_dim({s.batch, 1, 1, 1})
                                 .set_stride({1, 1, 1, 1})
                                 .set_data_type(fe::DataType_t::INT32));
        };
        opts.set_padding_mask(true)
            .set_seq_len_q(len("seq_len_q", kSeqLenQ))
            .set_seq_len_kv(len("seq_len_kv", kSeqLenKv));
    }
    // Ragged: each tensor's batch entries at device offsets ([batch + 1] int64 elements), not stride_b apart.
    auto offsets = [&](const char* name, int64_t uid) {
        return g->tensor(fe::graph::Tensor_attributes()
                             .set_name(name)
                             .set_uid(uid)
                             .set_dim({s.batch + 1, 1, 1, 1})
                             .set_stride({1, 1, 1, 1})
                             .set_data_type(fe::DataType_t::INT64));
    };
    if (s.ragged) {
        Q->set_ragged_offset(offsets("q_offsets", kQOffset));
        K->set_ragged_offset(offsets("k_offsets", kKOffset));
        V->set_ragged_offset(offsets("v_offsets", kVOffset));
    }
    auto [O, stats] = g->sdpa(Q, K, V, opts);
    O->set_output(true)
        .set_uid(kO)
        .set_dim({s.batch, s.heads, s.tokens, s.head_dim})
        .set_stride({s.o_stride_b, s.o_stride_h, s.o_stride_t, 1});
    if (s.ragged) O->set_ragged_offset(offsets("o_offsets", kOOffset));
    if (s.stats)
        stats->set_output(true)
            .set_uid(kStats)
            .set_data_type(fe::DataType_t::FLOAT)
            .set_dim({s.batch, s.heads, s.tokens, 1})
            .set_stride({s.heads * s.tokens, s.tokens, 1, 1});
    VOLT_RETURN_IF_ERROR(fe_status(g->build(handle, modes, policy), who, "graph build"));
    return g;
}

// The largest workspace any built plan of `g` needs (plans that failed to build have none).
int64_t max_plan_workspace(const fe::graph::Graph& g) {
    int64_t most = 0;
    for (int64_t i = 0; i < g.get_execution_plan_count(); ++i) {
        int64_t ws = 0;
        if (g.get_workspace_size_plan_at_index(i, ws).is_good()) most = std::max(most, ws);
    }
    return most;
}

Expected<Entry*> get_graph(Device& dev, const CudnnSdpaSpec& s, const char* who) {
    const Key key = key_of(s);
    auto it = dev.graphs.find(key);
    if (it != dev.graphs.end()) return &it->second;
    VOLT_ASSIGN_OR_RETURN(auto g, build_graph(dev.handle, s, {fe::HeurMode_t::A},
                                              fe::BuildPlanPolicy_t::HEURISTICS_CHOICE, who));
    Entry e;
    e.graph = g;
    int64_t ws = 0;
    VOLT_RETURN_IF_ERROR(fe_status(g->get_workspace_size(ws), who, "workspace size"));
    if (ws > 0) VOLT_CUDA_RETURN_IF_ERROR(cudaMalloc(&e.workspace, size_t(ws)));
    return &dev.graphs.emplace(key, std::move(e)).first->second;
}

// The current device's entry, its cuDNN handle created on first use; under g_mu.
Expected<Device*> current_device(const char* who) {
    if (!load_library()) return unimplemented(who, " (cuDNN): libcudnn.so.9 could not be loaded");
    int device = 0;
    VOLT_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
    Device& dev = (*g_devices)[device];
    if (!dev.handle && fe::detail::create_handle(&dev.handle) != CUDNN_STATUS_SUCCESS)
        return internal_error(who, " (cuDNN): cudnnCreate failed");
    return &dev;
}

// The current device's entry with the graph of `spec` built; under g_mu.
Expected<Entry*> graph_on_device(const CudnnSdpaSpec& spec, cudnnHandle_t* handle, const char* who) {
    VOLT_ASSIGN_OR_RETURN(Device * devp, current_device(who));
    Device& dev = *devp;
    VOLT_ASSIGN_OR_RETURN(Entry * e, get_graph(dev, spec, who));
    // `e` stays valid: the entry just used is the most recent one, never the one dropped.
    if (spec.transient) VOLT_RETURN_IF_ERROR(touch_transient_graph(dev, key_of(spec)));
    *handle = dev.handle;
    return e;
}

// The tensors of one execution by their uids (the statistics only when the spec writes them).
std::unordered_map<int64_t, void*> variant_pack(const CudnnSdpaSpec& spec, const void* q, const void* k,
                                                const void* v, void* o, float* stats, const int32_t* seq_len_q,
                                                const int32_t* seq_len_kv, const CudnnRaggedOffsets* ragged) {
    std::unordered_map<int64_t, void*> pack = {
        {kQ, const_cast<void*>(q)}, {kK, const_cast<void*>(k)}, {kV, const_cast<void*>(v)}, {kO, o}};
    if (spec.stats) pack.emplace(kStats, stats);
    if (spec.seq_lens) {
        pack.emplace(kSeqLenQ, const_cast<int32_t*>(seq_len_q));
        pack.emplace(kSeqLenKv, const_cast<int32_t*>(seq_len_kv));
    }
    if (spec.ragged) {
        pack.emplace(kQOffset, const_cast<int64_t*>(ragged->q));
        pack.emplace(kKOffset, const_cast<int64_t*>(ragged->k));
        pack.emplace(kVOffset, const_cast<int64_t*>(ragged->v));
        pack.emplace(kOOffset, const_cast<int64_t*>(ragged->o));
    }
    return pack;
}

}  // namespace

bool cudnn_sdpa_available() { return load_library(); }

bool cudnn_sdpa_ragged_available() {
    static const bool ok = [] {
        if (!load_library()) return false;
        try {
            return fe::detail::get_backend_version() >= 90600;  // ragged with fewer KV heads than query heads
        } catch (const std::exception&) {
            return false;
        }
    }();
    return ok;
}

Status cudnn_sdpa_prepare(const CudnnSdpaSpec& spec, const char* who) {
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        cudnnHandle_t handle = nullptr;
        return graph_on_device(spec, &handle, who).status();
    } catch (const std::exception& ex) {
        return internal_error(who, " (cuDNN): ", ex.what());
    }
}

Status cudnn_sdpa(const CudnnSdpaSpec& spec, const void* q, const void* k, const void* v, void* o,
                  cudaStream_t stream, const char* who, float* stats, const int32_t* seq_len_q,
                  const int32_t* seq_len_kv, const CudnnRaggedOffsets* ragged) {
    if (spec.stats && !stats) return invalid_argument(who, " (cuDNN): the softmax statistics need a buffer");
    if (spec.seq_lens && (!seq_len_q || !seq_len_kv))
        return invalid_argument(who, " (cuDNN): the padding mask needs seq_len_q and seq_len_kv");
    if (spec.ragged && (!spec.seq_lens || !ragged || !ragged->q || !ragged->k || !ragged->v || !ragged->o))
        return invalid_argument(who, " (cuDNN): the ragged layout needs seq_lens and the q, k, v and o offsets");
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        cudnnHandle_t handle = nullptr;
        VOLT_ASSIGN_OR_RETURN(Entry * e, graph_on_device(spec, &handle, who));
        if (fe::detail::set_stream(handle, stream) != CUDNN_STATUS_SUCCESS)
            return internal_error(who, " (cuDNN): cudnnSetStream failed");
        std::unordered_map<int64_t, void*> pack =
            variant_pack(spec, q, k, v, o, stats, seq_len_q, seq_len_kv, ragged);
        return fe_status(e->graph->execute(handle, pack, e->workspace), who, "execute");
    } catch (const std::exception& ex) {
        return internal_error(who, " (cuDNN): ", ex.what());
    }
}

Expected<std::vector<CudnnPlanTiming>> cudnn_sdpa_time_plans(const CudnnSdpaSpec& spec, const void* q, const void* k,
                                                              const void* v, void* o, cudaStream_t stream,
                                                              const std::string& modes, int reps, float* stats) {
    const char* who = "cuDNN SDPA plans";
    if (spec.stats && !stats) return invalid_argument(who, ": the softmax statistics need a buffer");
    if (spec.seq_lens || spec.ragged) return invalid_argument(who, ": padding-mask specs are not timed here");
    if (reps < 1) return invalid_argument(who, ": reps ", reps, ", expected >= 1");
    std::vector<fe::HeurMode_t> heur;
    size_t at = 0;
    while (at <= modes.size()) {
        const size_t end = std::min(modes.find(',', at), modes.size());
        const std::string m = modes.substr(at, end - at);
        if (m == "A") heur.push_back(fe::HeurMode_t::A);
        else if (m == "B") heur.push_back(fe::HeurMode_t::B);
        else if (m == "fallback") heur.push_back(fe::HeurMode_t::FALLBACK);
        else return invalid_argument(who, ": heuristics mode '", m, "', expected A, B or fallback");
        at = end + 1;
    }
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        // The device's handle; the graph here is built apart from the cache.
        VOLT_ASSIGN_OR_RETURN(Device * dev, current_device(who));
        cudnnHandle_t handle = dev->handle;
        if (fe::detail::set_stream(handle, stream) != CUDNN_STATUS_SUCCESS)
            return internal_error(who, ": cudnnSetStream failed");
        VOLT_ASSIGN_OR_RETURN(auto g, build_graph(handle, spec, heur, fe::BuildPlanPolicy_t::ALL, who));
        void* ws = nullptr;
        const int64_t ws_bytes = max_plan_workspace(*g);
        if (ws_bytes > 0) VOLT_CUDA_RETURN_IF_ERROR(cudaMalloc(&ws, size_t(ws_bytes)));
        std::shared_ptr<void> ws_guard(ws, [](void* p) {
            if (p) cudaFree(p);
        });
        std::unordered_map<int64_t, void*> pack = variant_pack(spec, q, k, v, o, stats, nullptr, nullptr, nullptr);
        std::vector<CudnnPlanTiming> out;
        for (int64_t i = 0; i < g->get_execution_plan_count(); ++i) {
            CudnnPlanTiming t;
            if (g->get_plan_name_at_index(i, t.name).is_bad()) t.name = "plan " + std::to_string(i);
            if (g->get_workspace_size_plan_at_index(i, t.workspace_bytes).is_bad()) {
                t.error = "did not build";
            } else {
                auto ms = cuda_event_ms(
                    2, reps, [&] { return fe_status(g->execute_plan_at_index(handle, pack, ws, i), who, "execute"); },
                    stream);
                if (ms.has_value()) t.ms = median_of(*ms);
                else t.error = ms.status().to_string(), cudaGetLastError();
            }
            out.push_back(std::move(t));
        }
        return out;
    } catch (const std::exception& ex) {
        return internal_error(who, ": ", ex.what());
    }
}

Status cudnn_sdpa_prefill(const AttentionParams& p, cudaStream_t stream) {
    const int64_t keys = p.kv_lens ? p.kv_len_host : p.num_tokens;
    const CudnnSdpaSpec spec = prefill_sdpa_spec(p, keys, /*causal=*/true, /*stats=*/false,
                                                 /*transient=*/p.kv_lens != nullptr);
    return cudnn_sdpa(spec, p.q, p.k, p.v, p.o, stream, "attention");
}

}  // namespace volt::cuda
