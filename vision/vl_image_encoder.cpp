#include "vision/vl_image_encoder.h"

#include <algorithm>
#include <cstring>

#include "sdk/weight_spec.h"
#include "vision/image_packing.h"
#include "vision/minimax_vl_weights.h"
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
#include "vision/cuda/clip_vision_tower_cuda.h"
#endif

namespace volt::vision {

#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
struct VLImageEncoder::Gpu {
    std::unique_ptr<ClipVisionTowerCuda> tower;
    std::unique_ptr<VLProjectorCuda> projector;
};
#else
struct VLImageEncoder::Gpu {};
#endif

VLImageEncoder::VLImageEncoder() = default;
VLImageEncoder::~VLImageEncoder() = default;

const ClipVisionTowerCuda* VLImageEncoder::cuda_tower() const {
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    if (gpu_) return gpu_->tower.get();
#endif
    return nullptr;
}

Expected<std::unique_ptr<VLImageEncoder>> VLImageEncoder::load(const std::filesystem::path& dir, Device device) {
#if !(defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA)
    if (device.is_cuda())
        return unimplemented("the vision tower on ", device.to_string(), ": this build has no CUDA backend");
#endif
    VOLT_ASSIGN_OR_RETURN(const ModelConfig cfg, load_model_config(dir));
    if (!cfg.is_vl() || !cfg.vl)
        return invalid_argument((dir / "config.json").string(), ": model_type '", cfg.model_type,
                                "' has no vision tower (a MiniMax-VL-01 model directory is needed)");
    if (cfg.vl->vision_feature_select_strategy != "default")
        return unimplemented((dir / "config.json").string(), ": vision_feature_select_strategy '",
                             cfg.vl->vision_feature_select_strategy, "': anyres packing needs \"default\" (CLS dropped)");
    auto enc = std::make_unique<VLImageEncoder>();
    enc->vl_ = *cfg.vl;
    VOLT_ASSIGN_OR_RETURN(enc->norm_, load_normalize_params(dir));
    VOLT_ASSIGN_OR_RETURN(enc->checkpoint_, Checkpoint::open(dir));
    // Only the vision side is checked here: the language_model.* tensors are the text backbone's business.
    BindingReport report = bind_checkpoint(enc->checkpoint_, minimax_vl_vision_weight_specs(enc->vl_, cfg.text.hidden_size));
    report.unexpected.clear();
    VOLT_RETURN_IF_ERROR(report.to_status(enc->checkpoint_.description()));
    const Checkpoint& ck = enc->checkpoint_;
    auto lookup = [&ck](const std::string& name) { return ck.view(name); };
    enc->device_ = device;
    enc->text_hidden_ = cfg.text.hidden_size;
    if (device.is_cpu()) {
        VOLT_ASSIGN_OR_RETURN(enc->tower_, ClipVisionTower::load(enc->vl_, lookup));
        VOLT_ASSIGN_OR_RETURN(enc->projector_,
                              VLProjector::load(enc->vl_.vision.hidden_size, cfg.text.hidden_size, lookup));
        enc->newline_ = enc->projector_.image_newline();
        return enc;
    }
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    enc->gpu_ = std::make_unique<Gpu>();
    VOLT_ASSIGN_OR_RETURN(enc->gpu_->tower, ClipVisionTowerCuda::load(enc->vl_, lookup, device.index));
    VOLT_ASSIGN_OR_RETURN(enc->gpu_->projector, VLProjectorCuda::load(enc->vl_.vision.hidden_size, cfg.text.hidden_size,
                                                                      lookup, device.index));
    VOLT_ASSIGN_OR_RETURN(const Tensor newline, lookup("image_newline"));
    VOLT_ASSIGN_OR_RETURN(enc->newline_, newline.to(DType::kF32));
#endif
    return enc;
}

Expected<Tensor> VLImageEncoder::vit_features(const Tensor& px, int64_t crops_per_batch,
                                              const std::function<bool()>& cancelled) const {
    if (px.rank() != 4) return invalid_argument("vit_features: pixel values must be [crops, 3, S, S], got ", px.to_string());
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    if (gpu_) return gpu_->tower->encode(px, cancelled);
#endif
    const int64_t crops = px.dim(0), N = tower_.tokens_per_crop(), D = tower_.hidden_size();
    const int64_t step = std::max<int64_t>(1, crops_per_batch);
    VOLT_ASSIGN_OR_RETURN(Tensor out, Tensor::empty({crops, N, D}, DType::kF32));
    for (int64_t c0 = 0; c0 < crops; c0 += step) {
        const int64_t c1 = std::min(crops, c0 + step);
        VOLT_ASSIGN_OR_RETURN(const Tensor batch, px.slice(0, c0, c1));
        VOLT_ASSIGN_OR_RETURN(const Tensor f, tower_.encode(batch, cancelled));
        std::memcpy(out.data_as<float>() + c0 * N * D, f.data(), f.nbytes());
    }
    return out;
}

Expected<Tensor> VLImageEncoder::project(const Tensor& features) const {
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    if (gpu_) {
        if (features.dtype() != DType::kF32 || !features.device().is_cpu() || features.rank() != 2)
            return invalid_argument("projector: features must be host f32 [rows, ", vl_.vision.hidden_size, "], got ",
                                    features.to_string());
        VOLT_ASSIGN_OR_RETURN(const Tensor bf, features.to(DType::kBF16));
        VOLT_ASSIGN_OR_RETURN(const Tensor dev, bf.to(device_));
        return gpu_->projector->project(dev, gpu_->tower->stream());
    }
#endif
    return projector_.project(features);
}

Expected<Tensor> VLImageEncoder::crop_features(const Tensor& px, const ImageEncodeOptions& opt) const {
#if defined(VOLT_HAVE_CUDA) && VOLT_HAVE_CUDA
    if (gpu_) {  // ViT and projector on the GPU; only the projected features come back
        VOLT_ASSIGN_OR_RETURN(const Tensor vit, gpu_->tower->encode_device(px, opt.cancelled));
        VOLT_ASSIGN_OR_RETURN(const Tensor proj, gpu_->projector->project(vit, gpu_->tower->stream()));
        return proj.reshape({px.dim(0), gpu_->tower->tokens_per_crop(), proj.dim(1)});
    }
#endif
    VOLT_ASSIGN_OR_RETURN(const Tensor vit, vit_features(px, opt.crops_per_batch, opt.cancelled));
    VOLT_ASSIGN_OR_RETURN(const Tensor flat, vit.reshape({vit.dim(0) * vit.dim(1), vit.dim(2)}));
    VOLT_ASSIGN_OR_RETURN(const Tensor proj, projector_.project(flat));
    return proj.reshape({vit.dim(0), vit.dim(1), proj.dim(1)});
}

Expected<int64_t> VLImageEncoder::count_tokens_within(int64_t width, int64_t height, int64_t max_tokens) const {
    VOLT_ASSIGN_OR_RETURN(const int64_t tokens, count_tokens(width, height));
    if (max_tokens > 0 && tokens > max_tokens)
        return resource_exhausted("a ", width, "x", height, " image takes ", tokens,
                                  " tokens, more than the per-image budget of ", max_tokens,
                                  " (images are never downscaled silently: resize it or raise the budget)");
    return tokens;
}

Expected<EncodedImage> VLImageEncoder::encode(const Image& image, const ImageEncodeOptions& opt) const {
    VOLT_RETURN_IF_ERROR(count_tokens_within(image.width, image.height, opt.max_tokens_per_image).status());
    EncodedImage out;
    VOLT_ASSIGN_OR_RETURN(PreprocessedImage pre, preprocess_image(image, vl_, norm_));
    out.layout = pre.layout;
    out.pixel_values = std::move(pre.pixel_values);
    VOLT_ASSIGN_OR_RETURN(const Tensor per_crop, crop_features(out.pixel_values, opt));
    VOLT_ASSIGN_OR_RETURN(out.features, pack_image_features(per_crop, out.layout, newline_));
    return out;
}

Expected<EncodedImage> VLImageEncoder::encode_file(const std::filesystem::path& path, const ImageEncodeOptions& opt) const {
    VOLT_ASSIGN_OR_RETURN(const Image im, decode_image_file(path, opt.decode));
    auto r = encode(im, opt);
    if (!r) return r.status().with_context(path.string());
    return r;
}

}  // namespace volt::vision
