#include "vision/vl_projector.h"

#include "kernels/gelu.h"
#include "vision/dense.h"

namespace volt::vision {
namespace {

Expected<Tensor> fetch(const VLProjector::Lookup& lookup, const std::string& name, const Shape& shape) {
    VOLT_ASSIGN_OR_RETURN(Tensor t, lookup(name));
    if (!(t.shape() == shape))
        return invalid_argument("tensor '", name, "' has shape ", t.shape().to_string(), ", expected ", shape.to_string());
    return t.to(DType::kF32);
}

}  // namespace

Expected<VLProjector> VLProjector::load(int64_t vision_hidden, int64_t text_hidden, const Lookup& lookup) {
    VLProjector p;
    p.vision_hidden_ = vision_hidden;
    p.text_hidden_ = text_hidden;
    VOLT_ASSIGN_OR_RETURN(p.w1_, fetch(lookup, "multi_modal_projector.linear_1.weight", {text_hidden, vision_hidden}));
    VOLT_ASSIGN_OR_RETURN(p.b1_, fetch(lookup, "multi_modal_projector.linear_1.bias", {text_hidden}));
    VOLT_ASSIGN_OR_RETURN(p.w2_, fetch(lookup, "multi_modal_projector.linear_2.weight", {text_hidden, text_hidden}));
    VOLT_ASSIGN_OR_RETURN(p.b2_, fetch(lookup, "multi_modal_projector.linear_2.bias", {text_hidden}));
    VOLT_ASSIGN_OR_RETURN(p.newline_, fetch(lookup, "image_newline", {text_hidden}));
    return p;
}

Expected<Tensor> VLProjector::project(const Tensor& features) const {
    if (features.dtype() != DType::kF32 || features.rank() != 2 || features.dim(1) != vision_hidden_)
        return invalid_argument("projector: features must be f32 [rows, ", vision_hidden_, "], got ", features.to_string());
    VOLT_ASSIGN_OR_RETURN(const Tensor x, features.contiguous());
    const int64_t rows = x.dim(0), Ht = text_hidden_;
    VOLT_ASSIGN_OR_RETURN(Tensor mid, Tensor::empty({rows, Ht}, DType::kF32));
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({rows, Ht}, DType::kF32));
    VOLT_RETURN_IF_ERROR(dense(x.data_as<float>(), rows, vision_hidden_, w1_, nullptr, mid.data_as<float>(), Ht));
    GeluParams g;
    g.rows = rows;
    g.width = Ht;
    g.x = mid.data_as<float>();
    g.bias = b1_.data_as<float>();
    g.out = mid.data_as<float>();
    VOLT_RETURN_IF_ERROR(cpu::gelu(g));
    VOLT_RETURN_IF_ERROR(dense(mid.data_as<float>(), rows, Ht, w2_, &b2_, out.data_as<float>(), Ht));
    return out;
}

}  // namespace volt::vision
