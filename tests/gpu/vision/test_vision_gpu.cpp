// The CLIP ViT and the projector on the GPU (vision/cuda) against the CPU tower, which matches transformers
// (tests/unit/vision): the tiny VL fixture (every crop of an image, graphs replayed, cancellation), the projector,
// a whole image's packed features, the attention kernels alone (cuDNN and the own kernel vs the CPU op), the full
// ViT-L/14-336 geometry with random weights on one crop, `volt logits --image --device cuda` against --device cpu on
// a VL directory whose backbone has the CUDA kernels' head size, and bad input. bf16 tolerance: 2e-2 relative
// (Frobenius) on features and logits.
#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "kernels/encoder_attention.h"
#include "kernels/gemm_cuda.h"
#include "sdk/cuda_memory.h"
#include "sdk/npy.h"
#include "sdk/safetensors.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/integration/cli_runner.h"
#include "text/minimax_text_weights.h"
#include "vision/clip_vision_tower.h"
#include "vision/cuda/clip_vision_tower_cuda.h"
#include "vision/cuda/vit_kernels.h"
#include "vision/image_decode.h"
#include "vision/image_preprocess.h"
#include "vision/minimax_vl_weights.h"
#include "vision/vl_image_encoder.h"

namespace volt::vision {
namespace {

const std::filesystem::path kData = VOLT_TEST_DATA_DIR;
std::filesystem::path tiny_vl() { return kData / "vision" / "tiny-vl"; }
std::filesystem::path image(const std::string& name) { return kData / "vision" / "images" / name; }

double rel_fro(const float* a, const float* b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(a[i]) - b[i];
        num += d * d;
        den += double(b[i]) * b[i];
    }
    return std::sqrt(num / den);
}
double rel_fro(const Tensor& got, const Tensor& ref) {
    EXPECT_EQ(got.shape(), ref.shape());
    if (!(got.shape() == ref.shape())) return 1e9;
    return rel_fro(got.data_as<float>(), ref.data_as<float>(), ref.numel());
}
size_t nans(const Tensor& t) {
    size_t n = 0;
    for (int64_t i = 0; i < t.numel(); ++i) n += std::isnan(t.data_as<float>()[i]) ? 1 : 0;
    return n;
}

class VisionGpu : public test::GpuTest {};

struct Pair {
    std::unique_ptr<VLImageEncoder> cpu, gpu;
};
Pair load_pair(const std::filesystem::path& dir) {
    Pair p;
    auto c = VLImageEncoder::load(dir);
    auto g = VLImageEncoder::load(dir, Device::cuda(0));
    EXPECT_TRUE(c) << c.status().to_string();
    EXPECT_TRUE(g) << g.status().to_string();
    if (c) p.cpu = std::move(c).value();
    if (g) p.gpu = std::move(g).value();
    return p;
}

// Preprocessed crops of a fixture image (PNG: identical decoding with or without OpenCV).
Tensor crops_of(const VLImageEncoder& enc, const std::string& name) {
    auto im = decode_image_file(image(name));
    EXPECT_TRUE(im) << im.status().to_string();
    auto norm = load_normalize_params(tiny_vl());
    EXPECT_TRUE(norm);
    auto pre = preprocess_image(*im, enc.config(), *norm);
    EXPECT_TRUE(pre) << pre.status().to_string();
    return pre->pixel_values;
}

TEST_F(VisionGpu, TinyTowerFeaturesMatchTheCpuTowerAndGraphsReplayExactly) {  // whole-forward and per-layer graphs
    Pair p = load_pair(tiny_vl());
    ASSERT_TRUE(p.cpu && p.gpu);
    ASSERT_NE(p.gpu->cuda_tower(), nullptr);
    std::printf("[tiny] attention backend: %s\n", p.gpu->cuda_tower()->attention_backend());
    for (const char* name : {"wide_1500x60.png", "tall_70x1300.png"}) {
        SCOPED_TRACE(name);
        const Tensor px = crops_of(*p.cpu, name);
        auto ref = p.cpu->vit_features(px);
        auto first = p.gpu->vit_features(px);   // eager (first forward of this crop count)
        auto second = p.gpu->vit_features(px);  // captured, then replayed
        auto third = p.gpu->vit_features(px);   // replayed
        ASSERT_TRUE(ref && first && second && third) << (first ? second.status() : first.status()).to_string();
        EXPECT_EQ(nans(*first), 0u);
        const double rel = rel_fro(*first, *ref);
        std::printf("[tiny %s] %lld crops: ViT features rel %.3e\n", name, (long long)px.dim(0), rel);
        EXPECT_LE(rel, 2e-2);
        EXPECT_EQ(std::memcmp(first->data(), second->data(), first->nbytes()), 0) << "graph replay differs from eager";
        EXPECT_EQ(std::memcmp(first->data(), third->data(), first->nbytes()), 0);
        // With a `cancelled` callback the forward runs as per-layer graphs (captured, then replayed): same bytes.
        const auto never = [] { return false; };
        auto layered = p.gpu->vit_features(px, 8, never);
        auto layered2 = p.gpu->vit_features(px, 8, never);
        ASSERT_TRUE(layered && layered2) << (layered ? layered2.status() : layered.status()).to_string();
        EXPECT_EQ(std::memcmp(first->data(), layered->data(), first->nbytes()), 0) << "per-layer graphs differ";
        EXPECT_EQ(std::memcmp(first->data(), layered2->data(), first->nbytes()), 0);
    }
    // One crop at a time, after a larger batch (smaller crop count on the grown buffers).
    const Tensor px = crops_of(*p.cpu, "wide_1500x60.png");
    auto one = px.slice(0, 0, 1);
    ASSERT_TRUE(one);
    auto c1 = one->contiguous();
    ASSERT_TRUE(c1);
    auto ref = p.cpu->vit_features(*c1);
    auto got = p.gpu->vit_features(*c1);
    ASSERT_TRUE(ref && got);
    EXPECT_LE(rel_fro(*got, *ref), 2e-2);
}

TEST_F(VisionGpu, ProjectorAndWholeImageMatchTheCpu) {
    Pair p = load_pair(tiny_vl());
    ASSERT_TRUE(p.cpu && p.gpu);
    std::mt19937_64 rng(3);
    const int64_t rows = 700, D = p.cpu->config().vision.hidden_size;
    auto f = Tensor::empty({rows, D}, DType::kF32);
    ASSERT_TRUE(f);
    const auto v = test::random_normal(size_t(rows * D), rng);
    std::memcpy(f->data(), v.data(), f->nbytes());
    auto ref = p.cpu->project(*f);
    auto got = p.gpu->project(*f);
    ASSERT_TRUE(ref && got) << (ref ? got.status() : ref.status()).to_string();
    const double rel = rel_fro(*got, *ref);
    std::printf("[tiny] projector rel %.3e\n", rel);
    EXPECT_LE(rel, 2e-2);
    for (const char* name : {"wide_1500x60.png", "tiny_5x7.png"}) {
        SCOPED_TRACE(name);
        auto a = p.cpu->encode_file(image(name));
        auto b = p.gpu->encode_file(image(name));
        ASSERT_TRUE(a && b) << (a ? b.status() : a.status()).to_string();
        const double r = rel_fro(b->features, a->features);
        std::printf("[tiny %s] packed features rel %.3e (%lld tokens)\n", name, r, (long long)a->features.dim(0));
        EXPECT_LE(r, 2e-2);
    }
}

TEST_F(VisionGpu, CancellationBetweenLayersLeavesTheTowerUsable) {
    Pair p = load_pair(tiny_vl());
    ASSERT_TRUE(p.cpu && p.gpu);
    const Tensor px = crops_of(*p.cpu, "tall_70x1300.png");
    auto ref = p.cpu->vit_features(px);
    ASSERT_TRUE(ref);
    for (int round = 0; round < 3; ++round) {  // eager, capture, replay: each path stops when asked
        std::atomic<int> asked{0};
        auto stop_after_one = [&] { return ++asked > 1; };
        auto r = p.gpu->vit_features(px, 8, stop_after_one);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().to_string();
        EXPECT_EQ(asked.load(), 2);  // asked before layer 0 (no) and before layer 1 (yes)
        auto ok = p.gpu->vit_features(px);
        ASSERT_TRUE(ok) << ok.status().to_string();
        EXPECT_LE(rel_fro(*ok, *ref), 2e-2);
    }
    ImageEncodeOptions opt;
    opt.cancelled = [] { return true; };
    auto e = p.gpu->encode_file(image("tall_70x1300.png"), opt);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.status().code(), StatusCode::kCancelled);
}

TEST_F(VisionGpu, BadInputIsRefusedWithAClearError) {
    Pair p = load_pair(tiny_vl());
    ASSERT_TRUE(p.gpu);
    auto wrong = Tensor::zeros({1, 3, 224, 224}, DType::kF32);
    ASSERT_TRUE(wrong);
    auto r = p.gpu->vit_features(*wrong);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("[crops, 3, 336, 336]"), std::string::npos) << r.status().to_string();
    auto f16 = Tensor::zeros({1, 3, 336, 336}, DType::kF16);
    ASSERT_TRUE(f16);
    EXPECT_EQ(p.gpu->vit_features(*f16).status().code(), StatusCode::kInvalidArgument);
    auto on_gpu = Tensor::zeros({1, 3, 336, 336}, DType::kF32, Device::cuda(0));
    ASSERT_TRUE(on_gpu);
    EXPECT_EQ(p.gpu->vit_features(*on_gpu).status().code(), StatusCode::kInvalidArgument);
    auto feats = Tensor::zeros({4, 7}, DType::kF32);  // wrong width for the projector
    ASSERT_TRUE(feats);
    EXPECT_EQ(p.gpu->project(*feats).status().code(), StatusCode::kInvalidArgument);
    auto none = VLImageEncoder::load(tiny_vl(), Device::cuda(cuda_device_count()));
    ASSERT_FALSE(none);
    EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument) << none.status().to_string();
    // The tower is still fine after the refusals.
    const Tensor px = crops_of(*p.gpu, "tiny_5x7.png");
    EXPECT_TRUE(p.gpu->vit_features(px));
}

// One attention shape through each of `backends` against the CPU op (random inputs, poisoned outputs).
struct AttentionCase {
    int64_t B, T;
    int H, hd;
};
void check_attention(const AttentionCase c, std::initializer_list<cuda::VitAttentionBackend> backends) {
    SCOPED_TRACE(testing::Message() << "B=" << c.B << " T=" << c.T << " H=" << c.H << " hd=" << c.hd);
    const int64_t D = int64_t(c.H) * c.hd, n = c.B * c.T * 3 * D;
    std::mt19937_64 rng(c.T + c.hd);
    const auto qkv = test::bf16_round(test::random_normal(size_t(n), rng, 1.5f));
    std::vector<float> ref(size_t(c.B * c.T * D));
    EncoderAttentionParams at;
    at.batch = c.B, at.tokens = c.T, at.heads = c.H, at.head_dim = c.hd;
    at.scale = 1.0f / std::sqrt(float(c.hd));
    at.q = qkv.data(), at.k = at.q + D, at.v = at.q + 2 * D;
    at.qkv_token_stride = 3 * D, at.qkv_batch_stride = c.T * 3 * D;
    at.o = ref.data(), at.o_token_stride = D, at.o_batch_stride = c.T * D;
    ASSERT_TRUE(cpu::encoder_attention(at).is_ok());
    test::DevBuf<uint16_t> dq{size_t(n)}, dout{ref.size()};
    ASSERT_TRUE(dq.upload(test::to_bf16(qkv)));
    for (const auto backend : backends) {
        const char* name = cuda::vit_attention_backend_name(backend);
        if (backend == cuda::VitAttentionBackend::kWgmma && c.hd != 64) continue;  // the kernel's one head size
        cuda::VitAttentionParams g;
        g.backend = backend;
        g.batch = c.B, g.tokens = c.T, g.heads = c.H, g.head_dim = c.hd, g.scale = at.scale;
        g.qkv = dq.ptr, g.token_stride = 3 * D, g.batch_stride = c.T * 3 * D, g.k_offset = D, g.v_offset = 2 * D;
        g.o = dout.ptr, g.o_token_stride = D, g.o_batch_stride = c.T * D;
        ASSERT_TRUE(dout.fill_bytes(0xff));
        const Status s = cuda::run(g, nullptr);
        if (backend == cuda::VitAttentionBackend::kCudnn && s.code() == StatusCode::kUnimplemented) {
            std::printf("[attention] cuDNN unavailable here: %s\n", s.to_string().c_str());
            continue;
        }
        if (backend == cuda::VitAttentionBackend::kWgmma && s.code() == StatusCode::kUnimplemented &&
            s.to_string().find("sm_90") != std::string::npos) {
            std::printf("[attention] not a Hopper GPU: %s\n", s.to_string().c_str());
            continue;
        }
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const auto got = test::from_bf16(dout.download());
        EXPECT_EQ(test::count_nan(got), 0u);  // every row written
        const double rel = rel_fro(got.data(), ref.data(), int64_t(ref.size()));
        std::printf("[attention %s] B=%lld T=%lld H=%d hd=%d rel %.3e\n", name, (long long)c.B, (long long)c.T, c.H,
                    c.hd, rel);
        EXPECT_LE(rel, 1e-2);
    }
}

// The attention kernels alone against the CPU op: every backend at ViT-L's head size and the tiny one's; for the
// wgmma kernel (head_dim 64) every shape of the last key block (1, 16, 17, 48, 63, 64 keys: its narrow products and
// the mask, also right after the prologue's blocks at 65, 80 and 200 tokens) and of the last query rows (whole warps
// and a whole warpgroup past the sequence).
TEST_F(VisionGpu, AttentionBackendsMatchTheCpuOp) {
    for (const AttentionCase c :
         {AttentionCase{2, 577, 16, 64}, AttentionCase{3, 577, 4, 8}, AttentionCase{1, 50, 2, 32},
          AttentionCase{1, 1, 2, 64}, AttentionCase{2, 16, 3, 64}, AttentionCase{1, 64, 2, 64},
          AttentionCase{2, 81, 2, 64}, AttentionCase{1, 112, 2, 64}, AttentionCase{1, 127, 1, 64},
          AttentionCase{3, 128, 2, 64}, AttentionCase{1, 257, 2, 64}, AttentionCase{1, 1000, 2, 64},
          AttentionCase{1, 65, 2, 64}, AttentionCase{2, 80, 2, 64}, AttentionCase{1, 200, 3, 64}})
        check_attention(c, {cuda::VitAttentionBackend::kOwn, cuda::VitAttentionBackend::kCudnn,
                            cuda::VitAttentionBackend::kWgmma});
}

// What compute-sanitizer runs (scripts/device-test.sh): Volt's own attention kernels only (racecheck reports cuDNN's
// mbarrier-ordered shared-memory reuse as races), a crop and short sequences with narrow last blocks.
TEST_F(VisionGpu, AttentionShortSanitizerRun) {
    for (const AttentionCase c :
         {AttentionCase{1, 577, 2, 64}, AttentionCase{2, 81, 2, 64}, AttentionCase{1, 16, 1, 64},
          AttentionCase{1, 80, 1, 64}})
        check_attention(c, {cuda::VitAttentionBackend::kOwn, cuda::VitAttentionBackend::kWgmma});
}

// ---- full ViT-L/14-336 geometry, random weights --------------------------------------------------------------------
// Random bf16 weights for every spec (uniform, std `scale`): norms 1 +- 0.1, other vectors 0.05, matrices
// 1/sqrt(fan_in) (embedding tables 1).
std::unordered_map<std::string, Tensor> random_weights(const std::vector<WeightSpec>& specs, uint64_t seed) {
    std::unordered_map<std::string, Tensor> w;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    auto next = [&s] {  // xorshift64*: fast enough for 300M values
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        return float((s * 0x2545F4914F6CDD1Dull) >> 40) / float(1 << 24) * 2.0f - 1.0f;  // [-1, 1)
    };
    for (const WeightSpec& sp : specs) {
        if (sp.optional) continue;
        auto t = Tensor::empty(sp.shape, DType::kF32);
        EXPECT_TRUE(t);
        const bool norm = sp.shape.rank() == 1 && sp.name.find("norm") != std::string::npos &&
                          sp.name.ends_with("weight");
        const bool table = sp.name.find("embed_tokens") != std::string::npos;
        const float scale = norm ? 0.1f : sp.shape.rank() == 1 ? 0.05f
                                    : table ? 1.0f : 1.0f / std::sqrt(float(sp.shape.numel() / sp.shape[0]));
        const bool router = sp.name.find("block_sparse_moe.gate") != std::string::npos;
        float* p = t->data_as<float>();
        for (int64_t i = 0; i < t->numel(); ++i) p[i] = (norm ? 1.0f : 0.0f) + (router ? 8.0f : 1.0f) * 1.7320508f * scale * next();
        w.emplace(sp.name, *t->to(DType::kBF16));
    }
    return w;
}

TEST_F(VisionGpu, VitL336RandomWeightsOneCropMatchesTheCpuTower) {
    const VLConfig vl = vit_l_14_336_config();
    const auto w = random_weights(minimax_vl_vision_weight_specs(vl, 64), 5);
    auto lookup = [&w](const std::string& name) -> Expected<Tensor> {
        auto it = w.find(name);
        if (it == w.end()) return not_found(name);
        return it->second;
    };
    auto cpu = ClipVisionTower::load(vl, lookup);
    ASSERT_TRUE(cpu) << cpu.status().to_string();
    auto gpu = ClipVisionTowerCuda::load(vl, lookup, 0);
    ASSERT_TRUE(gpu) << gpu.status().to_string();
    auto px = Tensor::empty({1, 3, 336, 336}, DType::kF32);
    ASSERT_TRUE(px);
    std::mt19937_64 rng(8);
    const auto v = test::random_normal(size_t(px->numel()), rng, 0.9f);
    std::memcpy(px->data(), v.data(), px->nbytes());
    auto ref = cpu->encode(*px);
    ASSERT_TRUE(ref) << ref.status().to_string();
    // Both fc1 GELU forms of the GPU tower (the CPU tower's is the exact erf form).
    std::map<VitGelu, Tensor> last;
    for (const auto& [mode, name] : {std::pair{VitGelu::kTanhEpilogue, "tanh epilogue"}, std::pair{VitGelu::kErf, "erf"}}) {
        ASSERT_TRUE((*gpu)->set_gelu(mode).is_ok());
        for (int i = 0; i < 3; ++i) {  // eager, captured, replayed
            auto got = (*gpu)->encode(*px);
            ASSERT_TRUE(got) << got.status().to_string();
            EXPECT_EQ(nans(*got), 0u);
            const double rel = rel_fro(*got, *ref);
            std::printf("[ViT-L/14-336, random weights, 1 crop, GELU %s, run %d, attention %s] rel %.3e\n", name, i,
                        (*gpu)->attention_backend(), rel);
            EXPECT_LE(rel, 2e-2);
            last[mode] = *got;
        }
    }
    // The GELU forms against each other, at the file's bf16 tolerance (printed: bench/RESULTS.md quotes it).
    const double tanh_vs_erf = rel_fro(last[VitGelu::kTanhEpilogue], last[VitGelu::kErf]);
    std::printf("[ViT-L/14-336, 1 crop] GPU features, tanh epilogue vs erf rel %.3e\n", tanh_vs_erf);
    EXPECT_LE(tanh_vs_erf, 2e-2);
    EXPECT_EQ((*gpu)->set_gelu(VitGelu(7)).code(), StatusCode::kInvalidArgument);
}

// A batch of >= 8 crops runs as two halves on two streams (ClipVisionTowerCuda; not with cuDNN's attention): each
// crop's features as when it runs alone (one stream), eager, from the whole-forward graph (both halves in one) and
// from per-layer graphs (those bitwise equal to the eager batch), and a stop between layers leaves the tower giving
// the same bytes. Graphs replay up to kGraphMaxCrops crops (9 here); 17 crops run eagerly every time.
TEST_F(VisionGpu, LargeBatchesRunAsTwoHalvesLikeOneCropAtATime) {
    const VLConfig vl = vit_l_14_336_config();
    auto gpu = ClipVisionTowerCuda::synthetic(vl, 0, 3);
    ASSERT_TRUE(gpu) << gpu.status().to_string();
    const int64_t B = 17, N = (*gpu)->tokens_per_crop(), D = (*gpu)->hidden_size();
    auto px = Tensor::empty({B, 3, 336, 336}, DType::kF32);
    ASSERT_TRUE(px);
    std::mt19937_64 rng(12);
    const auto v = test::random_normal(size_t(px->numel()), rng, 0.9f);
    std::memcpy(px->data(), v.data(), px->nbytes());
    std::printf("[ViT-L/14-336, %lld crops] attention %s\n", (long long)B, (*gpu)->attention_backend());
    EXPECT_TRUE((*gpu)->replays_graphs(9));
    EXPECT_FALSE((*gpu)->replays_graphs(B));
    std::vector<Tensor> runs;
    const auto never = [] { return false; };
    auto nine = px->slice(0, 0, 9);
    ASSERT_TRUE(nine);
    const Tensor px9 = *nine->contiguous();
    for (const Tensor* batch : {&px9, static_cast<const Tensor*>(&*px)}) {
        runs.clear();
        for (int i = 0; i < 5; ++i) {  // eager, whole graph captured, replayed; per-layer graphs captured, replayed
            auto got = i < 3 ? (*gpu)->encode(*batch) : (*gpu)->encode(*batch, never);
            ASSERT_TRUE(got) << got.status().to_string();
            EXPECT_EQ(nans(*got), 0u);
            runs.push_back(std::move(got).value());
        }
        for (int i = 1; i < 5; ++i)
            EXPECT_EQ(std::memcmp(runs[0].data(), runs[size_t(i)].data(), runs[0].nbytes()), 0)
                << batch->dim(0) << " crops, run " << i;
    }
    for (int64_t c = 0; c < B; ++c) {
        auto one = px->slice(0, c, c + 1);
        ASSERT_TRUE(one);
        auto alone = (*gpu)->encode(*one->contiguous());
        ASSERT_TRUE(alone) << alone.status().to_string();
        const double rel = rel_fro(alone->data_as<float>(), runs[0].data_as<float>() + c * N * D, N * D);
        std::printf("[ViT-L/14-336] crop %lld of the %lld-crop batch vs alone: rel %.3e\n", (long long)c,
                    (long long)B, rel);
        EXPECT_LE(rel, 2e-2) << "crop " << c;
    }
    std::atomic<int> asked{0};
    auto stopped = (*gpu)->encode(*px, [&] { return ++asked > 3; });
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled) << stopped.status().to_string();
    auto after = (*gpu)->encode(*px);
    ASSERT_TRUE(after) << after.status().to_string();
    EXPECT_EQ(std::memcmp(runs[0].data(), after->data(), runs[0].nbytes()), 0) << "after a stop";
}

// fc1 of ViT-L (577 rows x 4096 x 1024, +bias) through cuBLASLt's fused tanh-GELU epilogue against the GEMM + exact
// erf pass: elementwise within 1.5e-3 (|GELU_tanh - GELU_erf| <= 4.7e-4, plus room for the epilogue's own tanh
// approximation) plus one bf16 step of the output; a lost bias (N(0, 0.5)) or activation would be far outside.
TEST_F(VisionGpu, TanhGeluEpilogueStaysWithinItsBoundOfTheErfForm) {
    const int64_t M = 577, N = 4096, K = 1024;
    std::mt19937_64 rng(12);
    const auto a = test::random_normal(size_t(M * K), rng, 1.0f);
    const auto w = test::random_normal(size_t(N * K), rng, 1.0f / 32.0f);  // pre-activations ~ N(bias, 1)
    const auto bias = test::random_normal(size_t(N), rng, 0.5f);
    test::DevBuf<uint16_t> da{a.size()}, dw{w.size()}, db{bias.size()}, dt{size_t(M * N)}, de{size_t(M * N)};
    ASSERT_TRUE(da.upload(test::to_bf16(a)) && dw.upload(test::to_bf16(w)) && db.upload(test::to_bf16(bias)));
    ASSERT_TRUE(dt.fill_bytes(0xff) && de.fill_bytes(0xff));
    volt::cuda::GemmParams g;
    g.m = M, g.n = N, g.k = K, g.a = da.ptr, g.lda = K, g.b = dw.ptr, g.ldb = K, g.ldc = N, g.bias = db.ptr;
    g.c = dt.ptr, g.epilogue = volt::cuda::GemmEpilogue::kBiasGeluTanh;
    ASSERT_TRUE(volt::cuda::run(g, nullptr).is_ok());
    g.c = de.ptr, g.epilogue = volt::cuda::GemmEpilogue::kBiasGelu;
    ASSERT_TRUE(volt::cuda::run(g, nullptr).is_ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto t = test::from_bf16(dt.download()), e = test::from_bf16(de.download());
    ASSERT_EQ(test::count_nan(t), 0u);
    ASSERT_EQ(test::count_nan(e), 0u);
    double max_diff = 0;
    size_t differ = 0, over = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        const double d = std::fabs(double(t[i]) - e[i]);
        max_diff = std::max(max_diff, d);
        differ += d > 0 ? 1 : 0;
        over += d > 1.5e-3 + std::ldexp(std::max(std::fabs(t[i]), std::fabs(e[i])), -7) ? 1 : 0;
    }
    std::printf("[GELU tanh epilogue vs erf, fc1 577x4096x1024] max |diff| %.3e, %.2f%% of elements differ\n",
                max_diff, 100.0 * double(differ) / double(t.size()));
    EXPECT_EQ(over, 0u);
}

// ---- end to end through the CLI -------------------------------------------------------------------------------------
// A VL-01 directory: the tiny fixture's vision config and preprocessing, random vision + projector weights, and a
// backbone with the CUDA kernels' head size (128) whose MoE uses every expert (no routing flips under bf16).
std::filesystem::path write_vl_dir() {
    const auto dir = std::filesystem::temp_directory_path() / ("volt-gpu-vl-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ifstream in(tiny_vl() / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    auto& t = j["text_config"];
    t["hidden_size"] = 256, t["num_hidden_layers"] = 2, t["num_attention_heads"] = 4, t["num_key_value_heads"] = 2;
    t["head_dim"] = 128, t["rotary_dim"] = 64, t["intermediate_size"] = 256, t["num_local_experts"] = 2;
    t["num_experts_per_tok"] = 2, t["attn_type_list"] = {0, 1};
    std::ofstream(dir / "config.json") << j.dump(1);
    std::filesystem::copy_file(tiny_vl() / "preprocessor_config.json", dir / "preprocessor_config.json",
                               std::filesystem::copy_options::overwrite_existing);
    auto cfg = load_model_config(dir);
    EXPECT_TRUE(cfg) << cfg.status().to_string();
    auto specs = minimax_vl_vision_weight_specs(*cfg->vl, cfg->text.hidden_size);
    for (auto& s : minimax_text_weight_specs(cfg->text, "language_model.")) specs.push_back(s);
    std::vector<NamedTensor> tensors;
    for (auto& [name, tensor] : random_weights(specs, 21)) tensors.push_back({name, tensor});
    EXPECT_TRUE(write_safetensors(dir / "model.safetensors", tensors).is_ok());
    return dir;
}

TEST_F(VisionGpu, VoltLogitsWithAnImageOnCudaMatchesCpu) {
    const auto dir = write_vl_dir();
    auto cfg = load_model_config(dir);
    ASSERT_TRUE(cfg) << cfg.status().to_string();
    const int32_t image_token = int32_t(cfg->vl->image_token_index);
    const std::vector<int32_t> ids = {1, 17, 42, image_token, 7, 99, 300, 12};
    std::ofstream(dir / "ids.json") << nlohmann::json(ids).dump();
    const std::string base = "logits --model " + test::shell_quote(dir.string()) + " --ids-file " +
                             test::shell_quote((dir / "ids.json").string()) + " --image " +
                             test::shell_quote(image("wide_1500x60.png").string()) + " --out ";
    auto g = test::run_volt(base + test::shell_quote((dir / "gpu.npy").string()) + " --device cuda");
    auto c = test::run_volt(base + test::shell_quote((dir / "cpu.npy").string()) + " --device cpu");
    ASSERT_EQ(g.exit_code, 0) << g.err;
    ASSERT_EQ(c.exit_code, 0) << c.err;
    auto a = read_npy(dir / "gpu.npy");
    auto b = read_npy(dir / "cpu.npy");
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->shape(), b->shape());
    EXPECT_GT(a->dim(0), int64_t(ids.size()));  // the image expanded to its tokens
    const double rel = rel_fro(*a, *b);
    // Argmax agreement on the rows whose top-2 margin is not a near tie (random weights make many near ties; a
    // bf16 rounding flips those, as in tests/gpu/model).
    int64_t same = 0, clear = 0;
    const int64_t V = b->dim(1);
    for (int64_t r = 0; r < b->dim(0); ++r) {
        const float* x = a->data_as<float>() + r * V;
        const float* y = b->data_as<float>() + r * V;
        std::vector<float> top(y, y + V);
        std::partial_sort(top.begin(), top.begin() + 2, top.end(), std::greater<float>());
        if (top[0] - top[1] <= 0.05f) continue;
        ++clear;
        same += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
    }
    const double agree = clear ? double(same) / double(clear) : 1.0;
    std::printf("[volt logits --image, cuda vs cpu] %lld rows: rel %.3e, argmax agreement %.4f over %lld clear rows\n",
                (long long)b->dim(0), rel, agree, (long long)clear);
    EXPECT_LE(rel, 2e-2);
    EXPECT_GE(agree, 0.99);
    // Bad input through the CLI: an image file that does not exist is exit 3 on cuda as on cpu.
    auto bad = test::run_volt("logits --model " + test::shell_quote(dir.string()) + " --ids-file " +
                              test::shell_quote((dir / "ids.json").string()) + " --image /nonexistent.png --out " +
                              test::shell_quote((dir / "x.npy").string()) + " --device cuda");
    EXPECT_EQ(bad.exit_code, 3) << bad.err;
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace volt::vision
