#include "sdk/weight_spec.h"

#include <algorithm>
#include <sstream>
#include <unordered_set>

namespace volt {

std::string_view weight_component_name(WeightComponent c) {
    switch (c) {
        case WeightComponent::kEmbedding: return "embedding";
        case WeightComponent::kLightningAttention: return "lightning attention";
        case WeightComponent::kSoftmaxAttention: return "softmax attention";
        case WeightComponent::kNorm: return "norms";
        case WeightComponent::kRouter: return "MoE router";
        case WeightComponent::kExperts: return "MoE experts";
        case WeightComponent::kLmHead: return "lm_head";
        case WeightComponent::kVisionTower: return "vision tower";
        case WeightComponent::kProjector: return "projector";
    }
    return "?";
}

BindingReport bind_checkpoint(const Checkpoint& checkpoint, const std::vector<WeightSpec>& specs) {
    BindingReport r;
    std::unordered_set<std::string> expected;
    for (const WeightSpec& s : specs) {
        expected.insert(s.name);
        const Checkpoint::Entry* e = checkpoint.find(s.name);
        if (!e) {
            if (!s.optional) r.missing.push_back(s.name);
            continue;
        }
        if (!(e->info->shape == s.shape)) {
            r.mis_shaped.push_back({s.name, s.shape, e->info->shape});
            continue;
        }
        if (!dtype_is_float(e->info->dtype)) {
            r.bad_dtype.push_back(str_cat(s.name, ": ", dtype_name(e->info->dtype)));
            continue;
        }
        ++r.present;
    }
    for (const std::string& name : checkpoint.names())
        if (!expected.count(name)) r.unexpected.push_back(name);
    return r;
}

BindingReport bind_tensors(const std::unordered_map<std::string, Tensor>& tensors, const std::vector<WeightSpec>& specs) {
    BindingReport r;
    std::unordered_set<std::string> expected;
    for (const WeightSpec& s : specs) {
        expected.insert(s.name);
        auto it = tensors.find(s.name);
        if (it == tensors.end()) {
            if (!s.optional) r.missing.push_back(s.name);
        } else if (!(it->second.shape() == s.shape)) {
            r.mis_shaped.push_back({s.name, s.shape, it->second.shape()});
        } else if (!dtype_is_float(it->second.dtype()) || !it->second.device().is_cpu()) {
            r.bad_dtype.push_back(str_cat(s.name, ": ", dtype_name(it->second.dtype()), " on ",
                                          it->second.device().to_string()));
        } else {
            ++r.present;
        }
    }
    for (const auto& [name, t] : tensors)
        if (!expected.count(name)) r.unexpected.push_back(name);
    std::sort(r.unexpected.begin(), r.unexpected.end());
    return r;
}

Status BindingReport::to_status(const std::string& label, size_t max_listed) const {
    if (ok()) return Status::ok();
    std::ostringstream os;
    os << label << ": checkpoint does not match the model config:";
    auto list = [&](const char* what, const std::vector<std::string>& items) {
        if (items.empty()) return;
        os << "\n  " << items.size() << " " << what << ":";
        for (size_t i = 0; i < items.size() && i < max_listed; ++i) os << "\n    " << items[i];
        if (items.size() > max_listed) os << "\n    ... and " << items.size() - max_listed << " more";
    };
    list("missing tensor(s)", missing);
    std::vector<std::string> shapes;
    for (const auto& m : mis_shaped)
        shapes.push_back(str_cat(m.name, ": expected ", m.expected.to_string(), ", found ", m.actual.to_string()));
    list("tensor(s) with the wrong shape", shapes);
    list("tensor(s) with a non-float dtype", bad_dtype);
    list("unexpected tensor(s)", unexpected);
    return invalid_argument(os.str());
}

Status LoadCounter::add(uint64_t bytes) {
    done_ += bytes;
    if (!callback_ || total_ == 0) return Status::ok();
    const int percent = static_cast<int>(std::min<uint64_t>(100, done_ * 100 / total_));
    if (percent <= reported_percent_) return Status::ok();
    reported_percent_ = percent;
    return callback_(static_cast<float>(std::min(1.0, double(done_) / double(total_))));
}

Status LoadCounter::finish() {
    if (!callback_) return Status::ok();
    reported_percent_ = 100;
    return callback_(1.0f);
}

}  // namespace volt
