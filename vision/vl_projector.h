// MiniMax-VL-01's multi-modal projector: linear_1 (vision hidden -> text hidden, bias), exact GELU, linear_2 (text
// hidden -> text hidden, bias), applied to every crop feature; plus the learned `image_newline` vector [text hidden]
// that packing appends after every feature row.
#pragma once

#include <functional>
#include <string>

#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt::vision {

class VLProjector {
public:
    using Lookup = std::function<Expected<Tensor>(const std::string& name)>;
    static Expected<VLProjector> load(int64_t vision_hidden, int64_t text_hidden, const Lookup& lookup);

    // f32 [rows, vision_hidden] -> f32 [rows, text_hidden]
    Expected<Tensor> project(const Tensor& features) const;

    const Tensor& image_newline() const { return newline_; }  // f32 [text_hidden]
    int64_t text_hidden() const { return text_hidden_; }

private:
    int64_t vision_hidden_ = 0, text_hidden_ = 0;
    Tensor w1_, b1_, w2_, b2_, newline_;
};

}  // namespace volt::vision
