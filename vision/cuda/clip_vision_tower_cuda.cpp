#include "vision/cuda/clip_vision_tower_cuda.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

#include "kernels/gemm_cuda.h"
#include "kernels/random_fill_cuda.h"
#include "sdk/cuda_check.h"
#include "sdk/cuda_graph_cache.h"
#include "sdk/cuda_memory.h"
#include "sdk/cuda_upload.h"
#include "sdk/log.h"
#include "vision/clip_vision_tower.h"
#include "vision/cuda/vit_kernels.h"

namespace volt::vision {
namespace {

const std::string kPrefix = "vision_tower.vision_model.";

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// A device bf16 copy of host checkpoint tensor `name`, which must have exactly `shape`, through the load's pinned
// staging (complete once staging.finish() returns).
Expected<Tensor> upload(const ClipVisionTowerCuda::Lookup& lookup, const std::string& name, const Shape& shape,
                        int device, CudaUploader& staging) {
    VOLT_ASSIGN_OR_RETURN(const Tensor t, lookup(name));
    if (!(t.shape() == shape))
        return invalid_argument("tensor '", name, "' has shape ", t.shape().to_string(), ", expected ", shape.to_string());
    if (!t.device().is_cpu()) return invalid_argument("tensor '", name, "': expected a host tensor, got ", t.to_string());
    return staging.upload(t, DType::kBF16, device, name);
}

// Random bf16 weights by role (see ClipVisionTowerCuda::synthetic), generated on the GPU.
Expected<Tensor> random_weight(const std::string& name, const Shape& shape, int device, uint64_t seed) {
    VOLT_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(shape, DType::kBF16, Device::cuda(device)));
    const bool norm_weight = name.find("norm") != std::string::npos && name.ends_with(".weight");
    const bool vector = shape.rank() == 1;
    float scale = 0.02f, offset = 0.0f;
    if (norm_weight) scale = 0.1f, offset = 1.0f;
    else if (!vector && name.find("position_embedding") == std::string::npos)
        scale = 1.0f / std::sqrt(float(shape.numel() / shape[0]));  // fan_in of a [out, in...] weight
    uint64_t h = seed;
    for (char c : name) h = h * 1099511628211ull ^ uint64_t(uint8_t(c));
    VOLT_RETURN_IF_ERROR(volt::cuda::run(
        volt::cuda::RandomFillParams{.out = t.data(), .n = t.numel(), .scale = scale, .offset = offset, .seed = h},
        nullptr));
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(nullptr));
    return t;
}

// The CPU tower's config checks, plus the widths the GELU pass and the vectorised LayerNorm need.
Status check_config(const VLConfig& vl, int* layers_run) {
    VOLT_ASSIGN_OR_RETURN(*layers_run, ClipVisionTower::layers_to_run(vl));
    const VisionConfig& v = vl.vision;
    if (v.patch_size <= 0 || v.image_size % v.patch_size != 0)
        return invalid_argument("vision_config: image_size ", v.image_size, " is not a multiple of patch_size ",
                                v.patch_size);
    if (v.hidden_size % 8 != 0 || v.intermediate_size % 8 != 0)
        return unimplemented("vision tower (CUDA): hidden_size ", v.hidden_size, " and intermediate_size ",
                             v.intermediate_size, " must be multiples of 8");
    return Status::ok();
}

// Every public entry runs on the tower's device.
using DeviceScope = CudaDeviceScope;

}  // namespace

VLConfig vit_l_14_336_config() {
    VLConfig vl;
    vl.vision = {.hidden_size = 1024, .intermediate_size = 4096, .num_layers = 24, .num_heads = 16, .image_size = 336,
                 .patch_size = 14, .num_channels = 3, .hidden_act = "gelu", .layer_norm_eps = 1e-5};
    vl.vision_feature_layer = -1;
    vl.vision_feature_select_strategy = "default";
    return vl;
}

struct ClipVisionTowerCuda::Impl {
    struct Layer {
        Tensor ln1_w, ln1_b, ln2_w, ln2_b, qkv_w, qkv_b, out_w, out_b, fc1_w, fc1_b, fc2_w, fc2_b;
    };
    cudaStream_t stream = nullptr;
    // A batch of >= kSplitCrops crops runs as two parts, the second on stream2, so that one part's memory-bound
    // kernels (LayerNorms) and GEMM tails run beside the other's GEMMs (VOLT_VIT_STREAMS=1: one stream).
    static constexpr int64_t kSplitCrops = 8;
    cudaStream_t stream2 = nullptr;
    cudaEvent_t fork = nullptr, join = nullptr;
    bool split = true;
    int64_t cols_width = 0;  // 3*P*P rounded up to 8
    Tensor patch_w, class_emb, pos_emb, pre_ln_w, pre_ln_b;  // bf16 device; patch_w [D, cols_width]
    std::vector<Layer> layers;

    // Activations for `capacity` crops, allocated on `stream`.
    int64_t capacity = 0;
    std::shared_ptr<void> px, cols, x, h, qkv, mlp, feats;
    struct Graphs {
        std::vector<cudaGraphExec_t> layers;  // embeddings, then one per layer
        cudaGraphExec_t whole = nullptr;      // the whole forward (no `cancelled`)
    };
    std::map<std::pair<int64_t, int>, Graphs> graphs;  // per (crop count, part): each part's on its own stream
    std::set<int64_t> warmed;          // crop counts that ran eagerly once
    bool use_graphs = true;
    bool graphs_off = false;    // VOLT_VIT_GRAPHS=0
    bool layer_graphs = false;  // VOLT_VIT_GRAPHS=layers
    bool graphs_any_size = false;  // VOLT_VIT_GRAPHS=all: also above kGraphMaxCrops
    bool replays(int64_t crops) const { return use_graphs && (crops <= kGraphMaxCrops || graphs_any_size); }
    VitGelu gelu = VitGelu::kTanhEpilogue;
    bool tune_residual = true;  // VOLT_VIT_TUNE_RESIDUAL=0: out and fc2 keep the heuristic's configuration (A/B)

    void drop_graphs() {
        for (auto& [key, g] : graphs) {
            for (cudaGraphExec_t e : g.layers) cudaGraphExecDestroy(e);
            if (g.whole) cudaGraphExecDestroy(g.whole);
        }
        graphs.clear();
    }
    ~Impl() {
        if (stream) cudaStreamSynchronize(stream);
        if (stream2) cudaStreamSynchronize(stream2);
        drop_graphs();
        px.reset(), cols.reset(), x.reset(), h.reset(), qkv.reset(), mlp.reset(), feats.reset();
        for (cudaEvent_t e : {fork, join})
            if (e) cudaEventDestroy(e);
        for (cudaStream_t st : {stream, stream2}) {
            if (!st) continue;
            cudaStreamSynchronize(st);
            volt::cuda::release_stream_plans(st);  // the GEMM plans' workspaces
            cudaStreamDestroy(st);
        }
    }
};

ClipVisionTowerCuda::~ClipVisionTowerCuda() {
    if (impl_) {
        DeviceScope scope(device_);
        impl_.reset();
    }
}

int64_t ClipVisionTowerCuda::tokens_per_crop() const { return cfg_.num_patches() + (keep_cls_ ? 1 : 0); }
void* ClipVisionTowerCuda::stream() const { return impl_->stream; }

double ClipVisionTowerCuda::flops_per_crop() const {
    const double T = double(cfg_.num_patches() + 1), D = double(cfg_.hidden_size), F = double(cfg_.intermediate_size);
    const double patch = 2.0 * double(cfg_.num_patches()) * double(3 * cfg_.patch_size * cfg_.patch_size) * D;
    const double layer = 2.0 * T * D * (3 * D + D + 2 * F) + 4.0 * T * T * D;
    return patch + layer * layers_run_;
}

const char* ClipVisionTowerCuda::attention_backend() const {
    cuda::VitAttentionParams a;
    const int64_t T = cfg_.num_patches() + 1, D = cfg_.hidden_size;
    a.batch = 1, a.tokens = T, a.heads = int(cfg_.num_heads), a.head_dim = int(cfg_.head_dim());
    a.scale = 1.0f / std::sqrt(float(cfg_.head_dim()));
    a.token_stride = 3 * D, a.batch_stride = T * 3 * D, a.k_offset = D, a.v_offset = 2 * D;  // as the forward runs it
    a.o_token_stride = D, a.o_batch_stride = T * D;
    return cuda::vit_attention_backend_name(a);
}

void ClipVisionTowerCuda::set_use_graphs(bool on) const {
    std::lock_guard<std::mutex> lock(mu_);
    impl_->use_graphs = on && !impl_->graphs_off;
}

bool ClipVisionTowerCuda::replays_graphs(int64_t crops) const {
    std::lock_guard<std::mutex> lock(mu_);
    return impl_->replays(crops);
}

Status ClipVisionTowerCuda::set_gelu(VitGelu mode) const {
    if (mode != VitGelu::kTanhEpilogue && mode != VitGelu::kErf)
        return invalid_argument("vision tower (CUDA): unknown GELU mode ", int(mode));
    std::lock_guard<std::mutex> lock(mu_);
    DeviceScope scope(device_);
    Impl& m = *impl_;
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
    m.drop_graphs();  // captured with the previous mode
    m.warmed.clear();
    m.gelu = mode;
    return Status::ok();
}

VitGelu ClipVisionTowerCuda::gelu() const {
    std::lock_guard<std::mutex> lock(mu_);
    return impl_->gelu;
}

Expected<std::unique_ptr<ClipVisionTowerCuda>> ClipVisionTowerCuda::load(const VLConfig& vl, const Lookup& lookup,
                                                                         int device) {
    CudaUploader staging;
    VOLT_ASSIGN_OR_RETURN(
        auto tower,
        build(vl, [&](const std::string& name, const Shape& shape) { return upload(lookup, name, shape, device, staging); },
              device));
    VOLT_RETURN_IF_ERROR(staging.finish());
    return tower;
}

Expected<std::unique_ptr<ClipVisionTowerCuda>> ClipVisionTowerCuda::synthetic(const VLConfig& vl, int device,
                                                                              uint64_t seed) {
    return build(vl, [&](const std::string& name, const Shape& shape) { return random_weight(name, shape, device, seed); },
                 device);
}

Expected<std::unique_ptr<ClipVisionTowerCuda>> ClipVisionTowerCuda::build(const VLConfig& vl, const DeviceLookup& get,
                                                                          int device) {
    std::unique_ptr<ClipVisionTowerCuda> t(new ClipVisionTowerCuda());
    VOLT_RETURN_IF_ERROR(check_config(vl, &t->layers_run_));
    if (device < 0 || device >= cuda_device_count())
        return invalid_argument("CUDA device ", device, " does not exist (", cuda_device_count(), " found)");
    DeviceScope scope(device);
    t->cfg_ = vl.vision;
    t->keep_cls_ = vl.vision_feature_select_strategy == "full";
    t->device_ = device;
    t->impl_ = std::make_unique<Impl>();
    Impl& m = *t->impl_;
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking));
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&m.stream2, cudaStreamNonBlocking));
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&m.fork, cudaEventDisableTiming));
    VOLT_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&m.join, cudaEventDisableTiming));
    if (const char* e = std::getenv("VOLT_VIT_STREAMS"); e && *e) {
        if (std::strcmp(e, "1") == 0) m.split = false;
        else if (std::strcmp(e, "2") != 0) return invalid_argument("VOLT_VIT_STREAMS='", e, "': expected 1 or 2");
    }
    if (const char* e = std::getenv("VOLT_VIT_GRAPHS"); e && *e) {
        if (std::strcmp(e, "0") == 0) m.graphs_off = true, m.use_graphs = false;
        else if (std::strcmp(e, "layers") == 0) m.layer_graphs = true;
        else if (std::strcmp(e, "all") == 0) m.graphs_any_size = true;
        else if (std::strcmp(e, "1") != 0)
            return invalid_argument("VOLT_VIT_GRAPHS='", e, "': expected 0, 1, layers or all");
    }
    if (const char* e = std::getenv("VOLT_VIT_TUNE_RESIDUAL"); e && *e) {
        if (std::strcmp(e, "0") == 0) m.tune_residual = false;
        else if (std::strcmp(e, "1") != 0) return invalid_argument("VOLT_VIT_TUNE_RESIDUAL='", e, "': expected 0 or 1");
    }
    if (const char* e = std::getenv("VOLT_VIT_GELU"); e && *e) {
        if (std::strcmp(e, "tanh") == 0) m.gelu = VitGelu::kTanhEpilogue;
        else if (std::strcmp(e, "erf") == 0) m.gelu = VitGelu::kErf;
        else return invalid_argument("VOLT_VIT_GELU='", e, "': expected tanh or erf");
    }
    const VisionConfig& v = t->cfg_;
    const int64_t D = v.hidden_size, F = v.intermediate_size, P = v.patch_size, K = 3 * P * P;
    m.cols_width = (K + 7) / 8 * 8;
    {
        VOLT_ASSIGN_OR_RETURN(const Tensor w, get(kPrefix + "embeddings.patch_embedding.weight", {D, 3, P, P}));
        VOLT_ASSIGN_OR_RETURN(m.patch_w, Tensor::zeros({D, m.cols_width}, DType::kBF16, Device::cuda(device)));
        VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpy2D(m.patch_w.data(), size_t(m.cols_width) * 2, w.data(), size_t(K) * 2,
                                               size_t(K) * 2, size_t(D), cudaMemcpyDeviceToDevice));
    }
    VOLT_ASSIGN_OR_RETURN(m.class_emb, get(kPrefix + "embeddings.class_embedding", {D}));
    VOLT_ASSIGN_OR_RETURN(m.pos_emb, get(kPrefix + "embeddings.position_embedding.weight", {v.num_patches() + 1, D}));
    VOLT_ASSIGN_OR_RETURN(m.pre_ln_w, get(kPrefix + "pre_layrnorm.weight", {D}));
    VOLT_ASSIGN_OR_RETURN(m.pre_ln_b, get(kPrefix + "pre_layrnorm.bias", {D}));
    for (int l = 0; l < t->layers_run_; ++l) {
        const std::string p = kPrefix + "encoder.layers." + std::to_string(l) + ".";
        Impl::Layer ly;
        VOLT_ASSIGN_OR_RETURN(ly.ln1_w, get(p + "layer_norm1.weight", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln1_b, get(p + "layer_norm1.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln2_w, get(p + "layer_norm2.weight", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.ln2_b, get(p + "layer_norm2.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.qkv_w, Tensor::empty({3 * D, D}, DType::kBF16, Device::cuda(device)));
        VOLT_ASSIGN_OR_RETURN(ly.qkv_b, Tensor::empty({3 * D}, DType::kBF16, Device::cuda(device)));
        int64_t i = 0;
        for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
            VOLT_ASSIGN_OR_RETURN(const Tensor w, get(p + "self_attn." + proj + ".weight", {D, D}));
            VOLT_ASSIGN_OR_RETURN(const Tensor b, get(p + "self_attn." + proj + ".bias", {D}));
            VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpy(ly.qkv_w.data_as<uint16_t>() + i * D * D, w.data(), size_t(D * D) * 2,
                                                 cudaMemcpyDeviceToDevice));
            VOLT_CUDA_RETURN_IF_ERROR(
                cudaMemcpy(ly.qkv_b.data_as<uint16_t>() + i * D, b.data(), size_t(D) * 2, cudaMemcpyDeviceToDevice));
            ++i;
        }
        VOLT_ASSIGN_OR_RETURN(ly.out_w, get(p + "self_attn.out_proj.weight", {D, D}));
        VOLT_ASSIGN_OR_RETURN(ly.out_b, get(p + "self_attn.out_proj.bias", {D}));
        VOLT_ASSIGN_OR_RETURN(ly.fc1_w, get(p + "mlp.fc1.weight", {F, D}));
        VOLT_ASSIGN_OR_RETURN(ly.fc1_b, get(p + "mlp.fc1.bias", {F}));
        VOLT_ASSIGN_OR_RETURN(ly.fc2_w, get(p + "mlp.fc2.weight", {D, F}));
        VOLT_ASSIGN_OR_RETURN(ly.fc2_b, get(p + "mlp.fc2.bias", {D}));
        m.layers.push_back(std::move(ly));
    }
    VOLT_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    return t;
}

namespace {

// The forward's launches for crops [c0, c0 + B) of the batch on `stream`, in segments: 0 = embeddings (+ gather when
// no layer runs), 1 + l = encoder layer l (the last one + gather). Every pointer is the tower's (its rows of the
// crops): replaying a captured segment is exact.
struct Enqueuer {
    const VisionConfig& v;
    const ClipVisionTowerCuda::Impl& m;
    int layers_run;
    bool keep_cls;
    int64_t B;
    int64_t c0 = 0;
    cudaStream_t stream = nullptr;

    // The part's first row of a buffer of `per_crop` elements of `bytes` each per crop.
    template <typename Ptr>
    char* rows_of(const Ptr& buf, int64_t per_crop, int64_t bytes) const {
        return static_cast<char*>(buf.get()) + c0 * per_crop * bytes;
    }
    int64_t tokens() const { return v.num_patches() + 1; }
    void* px() const { return rows_of(m.px, 3 * v.image_size * v.image_size, 4); }
    void* cols() const { return rows_of(m.cols, v.num_patches() * m.cols_width, 2); }
    void* x() const { return rows_of(m.x, tokens() * v.hidden_size, 2); }
    void* h() const { return rows_of(m.h, tokens() * v.hidden_size, 2); }
    void* qkv() const { return rows_of(m.qkv, tokens() * 3 * v.hidden_size, 2); }
    void* mlp() const { return rows_of(m.mlp, tokens() * v.intermediate_size, 2); }
    void* feats() const { return rows_of(m.feats, (v.num_patches() + (keep_cls ? 1 : 0)) * v.hidden_size, 2); }

    // c = a w^T + bias (+ beta c). A large product's first run times faster cuBLASLt configurations (gemm_cuda.h):
    // qkv and fc1 7-13%, the out projection 15-25% (bench/vision_notes.md); products into the residual stream
    // (beta 1) need `scratch`, a free buffer of [rows, n] for the timing runs.
    Status gemm(const void* a, int64_t rows, int64_t k, const Tensor& w, const Tensor& bias, void* c, int64_t n,
                float beta, volt::cuda::GemmEpilogue epilogue = volt::cuda::GemmEpilogue::kBias,
                void* scratch = nullptr) const {
        volt::cuda::GemmParams g;
        g.m = rows, g.n = n, g.k = k;
        g.a = a, g.lda = k, g.b = w.data(), g.ldb = k, g.c = c, g.ldc = n;
        g.bias = bias.data();
        g.epilogue = epilogue;
        g.beta = beta;
        g.tune_configs = true;
        g.tune_scratch = m.tune_residual ? scratch : nullptr;
        return volt::cuda::run(g, stream);
    }
    // mlp = GELU(h fc1^T + b) as m.gelu says.
    Status fc1(const ClipVisionTowerCuda::Impl::Layer& ly, int64_t rows) const {
        const int64_t D = v.hidden_size, F = v.intermediate_size;
        const void* h = this->h();
        void* mlp = this->mlp();
        using E = volt::cuda::GemmEpilogue;
        return gemm(h, rows, D, ly.fc1_w, ly.fc1_b, mlp, F, 0.0f,
                    m.gelu == VitGelu::kTanhEpilogue ? E::kBiasGeluTanh : E::kBiasGelu);
    }
    Status layer_norm(const void* in, const Tensor& w, const Tensor& b, void* out, int64_t rows) const {
        cuda::VitLayerNormParams ln;
        ln.rows = rows, ln.width = v.hidden_size, ln.x = in, ln.weight = w.data(), ln.bias = b.data();
        ln.eps = float(v.layer_norm_eps), ln.out = out;
        return cuda::run(ln, stream);
    }
    Status gather() const {
        const int64_t N = v.num_patches() + (keep_cls ? 1 : 0), T = v.num_patches() + 1, D = v.hidden_size;
        const auto* src = static_cast<const uint16_t*>(x()) + (keep_cls ? 0 : D);
        VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpy2DAsync(feats(), size_t(N * D) * 2, src, size_t(T * D) * 2,
                                                    size_t(N * D) * 2, size_t(B), cudaMemcpyDeviceToDevice, stream));
        return Status::ok();
    }
    Status segment(int s) const {
        const int64_t D = v.hidden_size, F = v.intermediate_size, Np = v.num_patches(), T = Np + 1, rows = B * T;
        if (s == 0) {
            cuda::PatchIm2colParams ic;
            ic.batch = B, ic.channels = 3, ic.image_size = v.image_size, ic.patch = v.patch_size;
            ic.pixels = static_cast<const float*>(px()), ic.cols = cols(), ic.cols_width = m.cols_width;
            VOLT_RETURN_IF_ERROR(cuda::run(ic, stream));
            volt::cuda::GemmParams g;  // patches -> h rows [B * Np, D]
            g.m = B * Np, g.n = D, g.k = m.cols_width;
            g.a = cols(), g.lda = m.cols_width, g.b = m.patch_w.data(), g.ldb = m.cols_width;
            g.c = h(), g.ldc = D;
            VOLT_RETURN_IF_ERROR(volt::cuda::run(g, stream));
            cuda::VitLayerNormParams ln;  // [CLS | patches] + positions, pre_layrnorm -> x
            ln.rows = rows, ln.width = D, ln.weight = m.pre_ln_w.data(), ln.bias = m.pre_ln_b.data();
            ln.eps = float(v.layer_norm_eps), ln.out = x();
            ln.patches = h(), ln.class_emb = m.class_emb.data(), ln.pos_emb = m.pos_emb.data(), ln.tokens = T;
            VOLT_RETURN_IF_ERROR(cuda::run(ln, stream));
            return layers_run == 0 ? gather() : Status::ok();
        }
        const auto& ly = m.layers[size_t(s - 1)];
        void* x = this->x();
        void* h = this->h();
        VOLT_RETURN_IF_ERROR(layer_norm(x, ly.ln1_w, ly.ln1_b, h, rows));
        VOLT_RETURN_IF_ERROR(gemm(h, rows, D, ly.qkv_w, ly.qkv_b, qkv(), 3 * D, 0.0f));
        cuda::VitAttentionParams at;
        at.batch = B, at.tokens = T, at.heads = int(v.num_heads), at.head_dim = int(v.head_dim());
        at.scale = 1.0f / std::sqrt(float(v.head_dim()));
        at.qkv = qkv(), at.token_stride = 3 * D, at.batch_stride = T * 3 * D, at.k_offset = D, at.v_offset = 2 * D;
        at.o = h, at.o_token_stride = D, at.o_batch_stride = T * D;
        VOLT_RETURN_IF_ERROR(cuda::run(at, stream));
        using E = volt::cuda::GemmEpilogue;
        // x += out_proj(attn); the MLP buffer is free until fc1 (the timing runs' scratch)
        VOLT_RETURN_IF_ERROR(gemm(h, rows, D, ly.out_w, ly.out_b, x, D, 1.0f, E::kBias, mlp()));
        VOLT_RETURN_IF_ERROR(layer_norm(x, ly.ln2_w, ly.ln2_b, h, rows));
        VOLT_RETURN_IF_ERROR(fc1(ly, rows));
        // x += fc2(...); h is free once fc1 read it
        VOLT_RETURN_IF_ERROR(gemm(mlp(), rows, F, ly.fc2_w, ly.fc2_b, x, D, 1.0f, E::kBias, h));
        return s == layers_run ? gather() : Status::ok();
    }
};

}  // namespace

Status ClipVisionTowerCuda::reserve(int64_t B) const {
    Impl& m = *impl_;
    if (B <= m.capacity) return Status::ok();
    const VisionConfig& v = cfg_;
    const int64_t S = v.image_size, D = v.hidden_size, F = v.intermediate_size, Np = v.num_patches(), T = Np + 1;
    // Grow the buffers; the graphs hold the old pointers.
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
    m.drop_graphs();
    m.warmed.clear();
    m.capacity = 0;
    auto alloc = [&](std::shared_ptr<void>& slot, int64_t bytes) -> Status {
        slot.reset();
        VOLT_ASSIGN_OR_RETURN(slot, cuda_allocate(device_, size_t(bytes), m.stream));
        return Status::ok();
    };
    VOLT_RETURN_IF_ERROR(alloc(m.px, B * 3 * S * S * 4));
    VOLT_RETURN_IF_ERROR(alloc(m.cols, B * Np * m.cols_width * 2));
    VOLT_RETURN_IF_ERROR(alloc(m.x, B * T * D * 2));
    VOLT_RETURN_IF_ERROR(alloc(m.h, B * T * D * 2));
    VOLT_RETURN_IF_ERROR(alloc(m.qkv, B * T * 3 * D * 2));
    VOLT_RETURN_IF_ERROR(alloc(m.mlp, B * T * F * 2));
    VOLT_RETURN_IF_ERROR(alloc(m.feats, B * T * D * 2));
    m.capacity = B;
    return Status::ok();
}

Status ClipVisionTowerCuda::forward(const Tensor* host_px, int64_t B, const std::function<bool()>& cancelled) const {
    Impl& m = *impl_;
    const VisionConfig& v = cfg_;
    VOLT_RETURN_IF_ERROR(reserve(B));
    if (host_px)
        VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(m.px.get(), host_px->data(), host_px->nbytes(),
                                                  cudaMemcpyHostToDevice, m.stream));
    // Parts: all crops on the tower's stream, or (a large batch) the first half there and the rest on stream2; not
    // with cuDNN's attention, whose graphs of one shape share a workspace (two equal halves would run it at once).
    const int parts = m.split && B >= Impl::kSplitCrops && std::strcmp(attention_backend(), "cudnn") != 0 ? 2 : 1;
    const int64_t half = (B + 1) / 2;
    std::vector<Enqueuer> enq;
    for (int p = 0; p < parts; ++p)
        enq.push_back(Enqueuer{v, m, layers_run_, keep_cls_, parts == 1 ? B : (p == 0 ? half : B - half),
                               p == 0 ? 0 : half, p == 0 ? m.stream : m.stream2});
    const int segments = 1 + layers_run_;
    const bool whole = !m.layer_graphs && !cancelled;
    // A whole-forward graph of two parts is one graph: both streams captured together, each segment of part 0 then
    // of part 1 as eager enqueues them. Two graphs, one a stream, each launched whole, let the first part's kernels run
    // ahead of the second's, so that fewer of one's memory-bound kernels run beside the other's GEMMs: 37 crops ran
    // 0.3-1 ms slower with graphs than eagerly, over many processes and sessions (bench/vision_notes.md).
    const bool joint = whole && parts == 2;
    auto capture_joint = [&](cudaGraphExec_t* exec) -> Status {
        VOLT_ASSIGN_OR_RETURN(*exec, capture_graph(m.stream, [&]() -> Status {
            VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(m.fork, m.stream));  // stream2 joins the capture
            VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(m.stream2, m.fork, 0));
            for (int s = 0; s < segments; ++s)
                for (int p = 0; p < parts; ++p) VOLT_RETURN_IF_ERROR(enq[size_t(p)].segment(s));
            VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(m.join, m.stream2));  // and is joined back before the end
            VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(m.stream, m.join, 0));
            return Status::ok();
        }));
        return Status::ok();
    };
    // Segments [begin, end) of part p captured as one executable graph (on the part's stream).
    auto capture = [&](int p, int begin, int end, cudaGraphExec_t* exec) -> Status {
        VOLT_ASSIGN_OR_RETURN(*exec, capture_graph(enq[size_t(p)].stream, [&] {
            for (int s = begin; s < end; ++s) VOLT_RETURN_IF_ERROR(enq[size_t(p)].segment(s));
            return Status::ok();
        }));
        return Status::ok();
    };
    std::vector<Impl::Graphs*> graphs;  // per part, when replaying
    Status captured = Status::ok();
    if (m.replays(B) && m.warmed.count(B)) {
        // joint: both parts in part 0's whole graph
        for (int p = 0; p < (joint ? 1 : parts) && captured.is_ok(); ++p) {
            Impl::Graphs& gs = m.graphs[{B, p}];
            if (whole && !gs.whole) {
                captured = joint ? capture_joint(&gs.whole) : capture(p, 0, segments, &gs.whole);
            } else if (!whole && gs.layers.empty()) {
                for (int s = 0; s < segments && captured.is_ok(); ++s) {
                    cudaGraphExec_t e = nullptr;
                    captured = capture(p, s, s + 1, &e);
                    if (captured.is_ok()) gs.layers.push_back(e);
                }
                if (!captured.is_ok()) {
                    for (cudaGraphExec_t e : gs.layers) cudaGraphExecDestroy(e);
                    gs.layers.clear();
                }
            }
            graphs.push_back(&gs);
        }
    }
    if (!captured.is_ok()) {  // run eagerly from now on; the forward below still runs
        cudaGetLastError();
        m.use_graphs = false;
        graphs.clear();
        VOLT_LOG(kWarn, kVision, "vision tower (CUDA): graph capture failed, running eagerly: ", captured.to_string());
    }
    // The second part starts after the pixels are in; the tower's stream waits for it at the end (also on a stop).
    if (parts == 2) {
        VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(m.fork, m.stream));
        VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(m.stream2, m.fork, 0));
    }
    auto join = [&]() -> Status {
        if (parts == 2) {
            VOLT_CUDA_RETURN_IF_ERROR(cudaEventRecord(m.join, m.stream2));
            VOLT_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(m.stream, m.join, 0));
        }
        return Status::ok();
    };
    auto run = [&]() -> Status {
        if (!graphs.empty() && joint) {  // both parts in one graph, on the tower's stream
            VOLT_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graphs.front()->whole, m.stream));
            return Status::ok();
        }
        for (int s = 0; s < segments; ++s) {
            if (!graphs.empty() && whole && s > 0) break;
            if (s > 0 && cancelled && cancelled()) return volt::cancelled("image encoding cancelled");
            for (int p = 0; p < parts; ++p) {
                const cudaStream_t st = enq[size_t(p)].stream;
                if (graphs.empty()) {
                    VOLT_RETURN_IF_ERROR(enq[size_t(p)].segment(s));
                } else {
                    const Impl::Graphs& gs = *graphs[size_t(p)];
                    VOLT_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(whole ? gs.whole : gs.layers[size_t(s)], st));
                }
            }
        }
        return Status::ok();
    };
    // Joined on every way out, so that waiting for the tower's stream (reserve, the next call) covers both parts.
    const Status ran = run();
    VOLT_RETURN_IF_ERROR(join());
    if (ran.code() == StatusCode::kCancelled) VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(m.stream));
    VOLT_RETURN_IF_ERROR(ran);
    m.warmed.insert(B);
    return Status::ok();
}

namespace {
Status check_pixels(const Tensor& px, int64_t S) {
    if (px.dtype() != DType::kF32 || !px.device().is_cpu() || px.rank() != 4 || px.dim(1) != 3 || px.dim(2) != S ||
        px.dim(3) != S)
        return invalid_argument("vision tower (CUDA): pixel values must be f32 [crops, 3, ", S, ", ", S,
                                "] on the CPU, got ", px.to_string());
    return Status::ok();
}
}  // namespace

Expected<Tensor> ClipVisionTowerCuda::features_locked(const Tensor& px, const std::function<bool()>& cancelled) const {
    VOLT_RETURN_IF_ERROR(check_pixels(px, cfg_.image_size));
    VOLT_ASSIGN_OR_RETURN(const Tensor pixels, px.contiguous());
    const int64_t B = px.dim(0), N = tokens_per_crop(), D = cfg_.hidden_size;
    if (B == 0) return Tensor::empty({0, D}, DType::kBF16, Device::cuda(device_));
    VOLT_RETURN_IF_ERROR(forward(&pixels, B, cancelled));
    return Tensor::borrow(impl_->feats.get(), {B * N, D}, DType::kBF16, Device::cuda(device_), impl_->feats);
}

Expected<Tensor> ClipVisionTowerCuda::encode_device(const Tensor& px, const std::function<bool()>& cancelled) const {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceScope scope(device_);
    return features_locked(px, cancelled);
}

Expected<Tensor> ClipVisionTowerCuda::encode(const Tensor& px, const std::function<bool()>& cancelled) const {
    std::lock_guard<std::mutex> lock(mu_);
    DeviceScope scope(device_);
    VOLT_ASSIGN_OR_RETURN(const Tensor feats, features_locked(px, cancelled));
    const int64_t B = px.dim(0), N = tokens_per_crop(), D = cfg_.hidden_size;
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({B, N, D}, DType::kF32));
    if (B == 0) return out;
    const cudaStream_t st = impl_->stream;
    VOLT_ASSIGN_OR_RETURN(auto f32, cuda_allocate(device_, out.nbytes(), st));
    VOLT_RETURN_IF_ERROR(cuda::bf16_to_f32(feats.data(), static_cast<float*>(f32.get()), out.numel(), st));
    VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.data(), f32.get(), out.nbytes(), cudaMemcpyDeviceToHost, st));
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(st));
    return out;
}

Status ClipVisionTowerCuda::fill_random_pixels(int64_t crops, uint64_t seed) const {
    if (crops < 1) return invalid_argument("fill_random_pixels: crops must be >= 1");
    std::lock_guard<std::mutex> lock(mu_);
    DeviceScope scope(device_);
    VOLT_RETURN_IF_ERROR(reserve(crops));
    const int64_t n = crops * 3 * cfg_.image_size * cfg_.image_size;
    return volt::cuda::run(volt::cuda::RandomFillParams{.out = impl_->px.get(), .bf16 = false, .n = n, .scale = 0.9f,
                                                        .seed = seed},
                           impl_->stream);
}

Status ClipVisionTowerCuda::run_resident(int64_t crops) const {
    if (crops < 1 || crops > impl_->capacity)
        return invalid_argument("run_resident: ", crops, " crops; fill_random_pixels sized the input for ",
                                impl_->capacity);
    std::lock_guard<std::mutex> lock(mu_);
    DeviceScope scope(device_);
    return forward(nullptr, crops, {});
}

// ---- projector ------------------------------------------------------------------------------------------------------

Expected<std::unique_ptr<VLProjectorCuda>> VLProjectorCuda::load(int64_t vision_hidden, int64_t text_hidden,
                                                                 const Lookup& lookup, int device) {
    if (device < 0 || device >= cuda_device_count())
        return invalid_argument("CUDA device ", device, " does not exist (", cuda_device_count(), " found)");
    if (text_hidden % 8 != 0)
        return unimplemented("projector (CUDA): text hidden size ", text_hidden, " must be a multiple of 8");
    DeviceScope scope(device);
    auto p = std::make_unique<VLProjectorCuda>();
    p->vision_hidden_ = vision_hidden, p->text_hidden_ = text_hidden, p->device_ = device;
    CudaUploader staging;
    const std::string mp = "multi_modal_projector.";
    VOLT_ASSIGN_OR_RETURN(p->w1_, upload(lookup, mp + "linear_1.weight", {text_hidden, vision_hidden}, device, staging));
    VOLT_ASSIGN_OR_RETURN(p->b1_, upload(lookup, mp + "linear_1.bias", {text_hidden}, device, staging));
    VOLT_ASSIGN_OR_RETURN(p->w2_, upload(lookup, mp + "linear_2.weight", {text_hidden, text_hidden}, device, staging));
    VOLT_ASSIGN_OR_RETURN(p->b2_, upload(lookup, mp + "linear_2.bias", {text_hidden}, device, staging));
    VOLT_RETURN_IF_ERROR(staging.finish());
    return p;
}

Expected<std::unique_ptr<VLProjectorCuda>> VLProjectorCuda::synthetic(int64_t vision_hidden, int64_t text_hidden,
                                                                      int device, uint64_t seed) {
    if (device < 0 || device >= cuda_device_count())
        return invalid_argument("CUDA device ", device, " does not exist (", cuda_device_count(), " found)");
    DeviceScope scope(device);
    auto p = std::make_unique<VLProjectorCuda>();
    p->vision_hidden_ = vision_hidden, p->text_hidden_ = text_hidden, p->device_ = device;
    VOLT_ASSIGN_OR_RETURN(p->w1_, random_weight("linear_1.weight", {text_hidden, vision_hidden}, device, seed));
    VOLT_ASSIGN_OR_RETURN(p->b1_, random_weight("linear_1.bias", {text_hidden}, device, seed));
    VOLT_ASSIGN_OR_RETURN(p->w2_, random_weight("linear_2.weight", {text_hidden, text_hidden}, device, seed));
    VOLT_ASSIGN_OR_RETURN(p->b2_, random_weight("linear_2.bias", {text_hidden}, device, seed));
    return p;
}

Expected<Tensor> VLProjectorCuda::project(const Tensor& f, void* stream) const {
    if (f.dtype() != DType::kBF16 || !f.device().is_cuda() || f.device().index != device_ || f.rank() != 2 ||
        f.dim(1) != vision_hidden_ || !f.is_contiguous())
        return invalid_argument("projector (CUDA): features must be contiguous bf16 [rows, ", vision_hidden_, "] on cuda:",
                                device_, ", got ", f.to_string());
    const int64_t rows = f.dim(0), Ht = text_hidden_;
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({rows, Ht}, DType::kF32));
    if (rows == 0) return out;
    DeviceScope scope(device_);
    const cudaStream_t st = as_stream(stream);
    VOLT_ASSIGN_OR_RETURN(auto mid, cuda_allocate(device_, size_t(rows * Ht) * 2, st));
    VOLT_ASSIGN_OR_RETURN(auto res, cuda_allocate(device_, size_t(rows * Ht) * 2, st));
    volt::cuda::GemmParams g;
    g.m = rows, g.n = Ht, g.k = vision_hidden_;
    g.a = f.data(), g.lda = vision_hidden_, g.b = w1_.data(), g.ldb = vision_hidden_, g.c = mid.get(), g.ldc = Ht;
    g.bias = b1_.data(), g.epilogue = volt::cuda::GemmEpilogue::kBiasGelu;
    VOLT_RETURN_IF_ERROR(volt::cuda::run(g, st));
    g.k = Ht, g.a = mid.get(), g.lda = Ht, g.b = w2_.data(), g.ldb = Ht, g.c = res.get();
    g.bias = b2_.data(), g.epilogue = volt::cuda::GemmEpilogue::kBias;
    VOLT_RETURN_IF_ERROR(volt::cuda::run(g, st));
    mid.reset();  // freed in stream order
    VOLT_ASSIGN_OR_RETURN(auto f32, cuda_allocate(device_, out.nbytes(), st));
    VOLT_RETURN_IF_ERROR(cuda::bf16_to_f32(res.get(), static_cast<float*>(f32.get()), out.numel(), st));
    VOLT_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out.data(), f32.get(), out.nbytes(), cudaMemcpyDeviceToHost, st));
    VOLT_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(st));
    return out;
}

}  // namespace volt::vision
