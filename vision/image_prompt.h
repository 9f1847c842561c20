// Image tokens in a prompt (design.md, `volt logits --image`): every image-token id (config image_token_index) in
// the ids stands for the next image, in order, and is expanded to that image's token count; the embeddings of the
// expanded positions are then replaced, in order, by the image's packed features (VLImageEncoder output).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sdk/status.h"
#include "sdk/tensor.h"

namespace volt::vision {

struct ImageSpan {
    int64_t image = 0;   // index into the images, in prompt order
    int64_t begin = 0;   // first expanded position
    int64_t length = 0;  // tokens of that image
};

struct ExpandedPrompt {
    std::vector<int32_t> ids;     // image tokens repeated per image
    std::vector<ImageSpan> spans;  // one per image, increasing positions
};

// INVALID_ARGUMENT when the number of image tokens differs from the number of images (the reference processor
// would silently leave extra tokens unexpanded; here it is an error that names both counts).
Expected<ExpandedPrompt> expand_image_tokens(std::span<const int32_t> ids, int32_t image_token_id,
                                             std::span<const int64_t> tokens_per_image);

// embeddings: f32 [n, H] for the expanded ids; features[k]: f32 [spans[k].length, H]. Rows are overwritten.
Status splice_image_features(Tensor& embeddings, const ExpandedPrompt& prompt, std::span<const Tensor> features);

}  // namespace volt::vision
