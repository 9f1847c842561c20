// What a model expects in its checkpoint: one row per tensor (name, shape from the config, the component it
// belongs to). Each model's table lives with the model (text/minimax_text_weights.cpp, vision/minimax_vl_weights.cpp);
// binding checks a checkpoint against it and reports every problem at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sdk/checkpoint.h"
#include "sdk/tensor.h"

namespace volt {

enum class WeightComponent : uint8_t {
    kEmbedding, kLightningAttention, kSoftmaxAttention, kNorm, kRouter, kExperts, kLmHead, kVisionTower, kProjector,
};
inline constexpr int kWeightComponentCount = 9;
std::string_view weight_component_name(WeightComponent c);

struct WeightSpec {
    std::string name;
    Shape shape;
    WeightComponent component;
    int layer = -1;         // decoder / encoder layer, -1 when not per-layer
    bool optional = false;  // may be absent (e.g. lm_head when embeddings are tied)
};

struct BindingReport {
    struct Mismatch {
        std::string name;
        Shape expected, actual;
    };
    std::vector<std::string> missing;      // expected, not in the checkpoint
    std::vector<std::string> unexpected;   // in the checkpoint, not expected
    std::vector<Mismatch> mis_shaped;
    std::vector<std::string> bad_dtype;    // present but not a floating-point type ("name: I32")
    size_t present = 0;                    // expected and found with the right shape

    bool ok() const { return missing.empty() && unexpected.empty() && mis_shaped.empty() && bad_dtype.empty(); }
    // INVALID_ARGUMENT listing every problem (up to `max_listed` per kind, then a count), or OK.
    Status to_status(const std::string& checkpoint_label, size_t max_listed = 10) const;
};

BindingReport bind_checkpoint(const Checkpoint& checkpoint, const std::vector<WeightSpec>& specs);

// A weight load's progress: the bytes of the tensors loaded so far over `total_bytes`, reported to `callback` at
// most once per percent (and at 1.0 by finish()). A callback that returns an error stops the load with it (e.g.
// CANCELLED from a Cancel button): the caller returns what add() returns. No callback: nothing is reported.
class LoadCounter {
public:
    using Callback = std::function<Status(float fraction)>;
    LoadCounter(Callback callback, uint64_t total_bytes) : callback_(std::move(callback)), total_(total_bytes) {}
    Status add(uint64_t bytes);
    Status finish();

private:
    Callback callback_;
    uint64_t total_ = 0, done_ = 0;
    int reported_percent_ = -1;
};
// The same report for tensors held in memory (benchmarks and tests build models this way): they must be
// floating-point host tensors; unexpected names are listed sorted.
BindingReport bind_tensors(const std::unordered_map<std::string, Tensor>& tensors, const std::vector<WeightSpec>& specs);

}  // namespace volt
