// volt embed-image --model DIR --image FILE --out FEATS.npy [--pixels-out PIX.npy] [--max-image-tokens N]
// FEATS: the packed projector output in prompt order (thumbnail, tiles unpadded, image_newline after every row),
// float32 [tokens, text hidden]; PIX: the preprocessed crops, float32 [crops, 3, 336, 336]. Prints one line
// describing the plan (size, grid, crops, tokens) to stdout.
#include <cstdio>
#include <memory>
#include <string>

#include "samples/volt/cli.h"
#include "text/backbone.h"
#include "sdk/npy.h"
#include "vision/vl_image_encoder.h"

namespace volt::cli {
namespace {

struct EmbedImageOptions {
    std::string model, image, out, pixels_out;
    int64_t max_image_tokens = 0;
    DeviceFlags where;  // --device, --gpus, --gpu-ids: one GPU
};

Status run_embed_image(const EmbedImageOptions& o) {
    VOLT_ASSIGN_OR_RETURN(const DeviceChoice dc, device_choice(o.where, "volt embed-image"));
    const Device device = dc.device;
    VOLT_ASSIGN_OR_RETURN(auto encoder, vision::VLImageEncoder::load(o.model, device));
    vision::ImageEncodeOptions opt;
    opt.max_tokens_per_image = o.max_image_tokens;
    VOLT_ASSIGN_OR_RETURN(const vision::EncodedImage enc, encoder->encode_file(o.image, opt));
    VOLT_RETURN_IF_ERROR(write_npy(o.out, enc.features));
    if (!o.pixels_out.empty()) VOLT_RETURN_IF_ERROR(write_npy(o.pixels_out, enc.pixel_values));
    const vision::AnyresLayout& L = enc.layout;
    std::printf("%s: %lldx%lld -> grid %lldx%lld (%lldx%lld px), %lld crops, %lld tokens\n", o.image.c_str(),
                static_cast<long long>(L.image_w), static_cast<long long>(L.image_h), static_cast<long long>(L.rows),
                static_cast<long long>(L.cols), static_cast<long long>(L.canvas_w), static_cast<long long>(L.canvas_h),
                static_cast<long long>(L.num_crops()), static_cast<long long>(L.num_tokens()));
    return Status::ok();
}

}  // namespace

CommandRunner add_embed_image_command(CLI::App& app) {
    auto o = std::make_shared<EmbedImageOptions>();
    CLI::App* cmd = app.add_subcommand("embed-image", "Write an image's packed projector features (and crops) to .npy");
    cmd->add_option("--model", o->model, "MiniMax-VL-01 model directory")->required();
    cmd->add_option("--image", o->image, "Image file (PNG, JPEG, GIF, BMP, WebP, TIFF)")->required();
    cmd->add_option("--out", o->out, "Output .npy: float32 [tokens, hidden] in prompt order")->required();
    cmd->add_option("--pixels-out", o->pixels_out, "Output .npy: float32 [crops, 3, 336, 336] preprocessed crops");
    cmd->add_option("--max-image-tokens", o->max_image_tokens,
                    "Refuse (exit 4) an image needing more tokens than this (0: no limit); never downscales")
        ->check(CLI::NonNegativeNumber);
    add_device_options(cmd, &o->where);
    return [o]() -> int {
        Status st = run_embed_image(*o);
        return st.is_ok() ? kExitOk : report_error(st);
    };
}

}  // namespace volt::cli
