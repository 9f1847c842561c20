#include "vision/image_prompt.h"

#include <cstring>

namespace volt::vision {

Expected<ExpandedPrompt> expand_image_tokens(std::span<const int32_t> ids, int32_t image_token_id,
                                             std::span<const int64_t> tokens_per_image) {
    int64_t markers = 0;
    for (int32_t t : ids) markers += t == image_token_id;
    if (markers != static_cast<int64_t>(tokens_per_image.size()))
        return invalid_argument("the prompt has ", markers, " image token(s) (id ", image_token_id, ") but ",
                                tokens_per_image.size(), " image(s) were given; each image token stands for one image");
    ExpandedPrompt out;
    int64_t total = static_cast<int64_t>(ids.size()) - markers;
    for (int64_t n : tokens_per_image) {
        if (n <= 0) return invalid_argument("image token count ", n, ": must be positive");
        total += n;
    }
    out.ids.reserve(static_cast<size_t>(total));
    int64_t k = 0;
    for (int32_t t : ids) {
        if (t != image_token_id) {
            out.ids.push_back(t);
            continue;
        }
        out.spans.push_back({k, static_cast<int64_t>(out.ids.size()), tokens_per_image[k]});
        out.ids.insert(out.ids.end(), static_cast<size_t>(tokens_per_image[k]), image_token_id);
        ++k;
    }
    return out;
}

Status splice_image_features(Tensor& emb, const ExpandedPrompt& prompt, std::span<const Tensor> features) {
    if (emb.dtype() != DType::kF32 || emb.rank() != 2 || !emb.is_contiguous() ||
        emb.dim(0) != static_cast<int64_t>(prompt.ids.size()))
        return invalid_argument("splice_image_features: embeddings must be contiguous f32 [", prompt.ids.size(),
                                ", hidden], got ", emb.to_string());
    if (features.size() != prompt.spans.size())
        return invalid_argument("splice_image_features: ", features.size(), " feature tensors for ", prompt.spans.size(),
                                " images");
    const int64_t H = emb.dim(1);
    for (const ImageSpan& s : prompt.spans) {
        const Tensor& f = features[s.image];
        if (f.dtype() != DType::kF32 || f.rank() != 2 || f.dim(0) != s.length || f.dim(1) != H || !f.is_contiguous())
            return invalid_argument("splice_image_features: image ", s.image, " features must be contiguous f32 [",
                                    s.length, ", ", H, "], got ", f.to_string());
        std::memcpy(emb.data_as<float>() + s.begin * H, f.data(), f.nbytes());
    }
    return Status::ok();
}

}  // namespace volt::vision
