// The CLIP ViT of MiniMax-VL-01 on the CPU (minimax01-architecture.md §5), composed from kernels/ ops:
//   patch conv (no bias) -> [CLS | patches] + learned positions -> pre_layrnorm -> pre-LN encoder layers
//   (x += out_proj(attn(LN1(x))); x += fc2(act(fc1(LN2(x))))) with biased q/k/v/out projections.
// Features are hidden_states[vision_feature_layer] in Hugging Face's indexing (0 = the pre-LN embeddings, i = the
// output of layer i, negative from the end; VL-01 uses -1), with CLS dropped for strategy "default"; only the layers
// up to that one run. fp32 compute; bf16/f16 weights are widened at load.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sdk/config.h"
#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt::vision {

class ClipVisionTower {
public:
    // Looks tensors up by their checkpoint name (prefix `vision_tower.vision_model.` included).
    using Lookup = std::function<Expected<Tensor>(const std::string& name)>;
    static Expected<ClipVisionTower> load(const VLConfig& vl, const Lookup& lookup);
    // The checks load makes on the config (activation, channels, heads, feature layer); the number of encoder layers
    // that run (the CUDA twin shares them).
    static Expected<int> layers_to_run(const VLConfig& vl);

    // pixel_values f32 [B, 3, S, S] -> f32 [B, N, D] (N = 576 for "default", 577 for "full"). `cancelled` (may be
    // empty) is asked before every layer: true stops with CANCELLED (a ViT-L layer is ~0.3 s per crop on 2 cores).
    Expected<Tensor> encode(const Tensor& pixel_values, const std::function<bool()>& cancelled = {}) const;

    int64_t tokens_per_crop() const;      // N
    int64_t hidden_size() const { return cfg_.hidden_size; }
    int layers_run() const { return layers_run_; }

private:
    struct Layer {
        Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // [D]
        Tensor qkv_w, qkv_b;                // [3D, D], [3D]: q_proj | k_proj | v_proj stacked
        Tensor out_w, out_b;                // [D, D], [D]
        Tensor fc1_w, fc1_b;                // [F, D], [F]
        Tensor fc2_w, fc2_b;                // [D, F], [D]
    };
    VisionConfig cfg_;
    bool keep_cls_ = false;
    int layers_run_ = 0;
    Tensor patch_w_;   // [D, 3*P*P]
    Tensor class_emb_; // [D]
    Tensor pos_emb_;   // [N+1, D]
    Tensor pre_ln_w_, pre_ln_b_;
    std::vector<Layer> layers_;
};

}  // namespace volt::vision
