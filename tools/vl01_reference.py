"""MiniMax-VL-01 in Python, from Hugging Face classes: the processor's any-resolution preprocessing and packing, and a
small VL model (CLIPVisionModel + the VL-01 projector + image_newline + MiniMaxForCausalLM) that reads and writes
the ORIGINAL VL-01 checkpoint layout. Shared by tools/make_vision_fixture.py (fixtures) and tools/train_demo/ (the
bundled demo model), so that both describe the same model Volt implements.

Preprocessing (minimax01-architecture.md §5, the remote-code image_processor.py in anyres mode), on PIL images:
    (W, H) = select_best_resolution((w, h), pinpoints)   # max effective resolution, ties -> least waste
    keepratio_resize: if w/h > W/H: resize to (W, int(W*h/w)) else (int(H*w/h), H) with Image.BICUBIC,
                      paste centred ((H-new_h)//2 or (W-new_w)//2) on a black RGB canvas, cut 336x336 tiles
                      row-major; thumbnail = img.resize((336, 336), BICUBIC)
    every crop: convert("RGB"), torchvision ToTensor (u8/255 in float32), Normalize(CLIP mean, std) in float32
Packing (HF pack_image_features with the processor's integer unpadding): thumbnail's 576 features, then the tile
feature map unpadded to the image's aspect, with image_newline after every row: 576 + h'*w' + h' tokens.

Model caveats (the same as the text fixtures', see make_text_fixture.py): transformers' native `minimax` is patched
to rotate only `rotary_dim` dims and to use MiniMax's decay-slope rule; the slope rules agree for power-of-two head
counts only, so models built here use power-of-two heads. `patch_transformers()` must run before a model is built
(the RoPE frequencies and the decay buffers are computed at construction); `build_model` does it.
"""
from __future__ import annotations

import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

CROP = 336
PATCH = 14
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# MiniMax-VL-01's 28 grids, (height, width), in its config order.
PINPOINTS = ([[336, w] for w in (336, 672, 1008, 1344, 1680, 2016)] +
             [[672, w] for w in (336, 672, 1008, 1344, 1680, 2016)] +
             [[1008, w] for w in (336, 672, 1008, 1344, 1680, 2016)] +
             [[1344, w] for w in (336, 672, 1008, 1344)] +
             [[1680, w] for w in (336, 672, 1008)] +
             [[2016, w] for w in (336, 672, 1008)])
assert len(PINPOINTS) == 28


# ---------------------------------------------------------------------------------------------------------------------
# The VL-01 processor rules (anyres), on PIL images
def select_best_resolution(w0: int, h0: int, pinpoints=PINPOINTS) -> tuple[int, int]:
    """Returns (width, height); `pinpoints` are (height, width) as in config.json."""
    best, max_eff, min_waste = None, 0, float("inf")
    for hh, ww in pinpoints:
        scale = min(ww / w0, hh / h0)
        eff = min(int(w0 * scale) * int(h0 * scale), w0 * h0)
        waste = ww * hh - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            best, max_eff, min_waste = (ww, hh), eff, waste
    return best


def keepratio_geometry(w: int, h: int, W: int, H: int):
    if w / h > W / H:
        new_w, new_h = W, int(W * h / w)
        return new_w, new_h, 0, (H - new_h) // 2
    new_w, new_h = int(H * w / h), H
    return new_w, new_h, (W - new_w) // 2, 0


def vl01_crops(img: Image.Image):
    """[thumbnail, tile_0, ...] as RGB PIL images, and the grid geometry."""
    w, h = img.size
    W, H = select_best_resolution(w, h, PINPOINTS)
    new_w, new_h, px, py = keepratio_geometry(w, h, W, H)
    resized = img.resize((new_w, new_h), Image.BICUBIC)
    canvas = Image.new("RGB", (W, H), (0, 0, 0))
    canvas.paste(resized, (px, py))
    tiles = [canvas.crop((x, y, x + CROP, y + CROP)) for y in range(0, H, CROP) for x in range(0, W, CROP)]
    thumb = img.resize((CROP, CROP), Image.BICUBIC)
    crops = [c.convert("RGB") for c in [thumb] + tiles]
    geom = dict(canvas_w=W, canvas_h=H, resized_w=new_w, resized_h=new_h, pad_left=px, pad_top=py,
                rows=H // CROP, cols=W // CROP)
    return crops, geom


def crops_u8(img: Image.Image) -> tuple[np.ndarray, dict]:
    """vl01_crops as one uint8 array [crops, 336, 336, 3] (compact for data pipelines; normalise_u8 finishes it)."""
    crops, geom = vl01_crops(img)
    return np.stack([np.asarray(c, dtype=np.uint8) for c in crops]), geom


def normalise(crops) -> np.ndarray:
    """torchvision ToTensor + Normalize, float32 throughout."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32)[:, None, None]
    out = []
    for c in crops:
        t = torch.from_numpy(np.array(c, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
        out.append(((t - mean) / std).numpy())
    return np.stack(out).astype(np.float32)


def normalise_u8(u8: torch.Tensor) -> torch.Tensor:
    """The same arithmetic as normalise() on a uint8 tensor [N, 336, 336, 3] (any device) -> float32 [N, 3, 336, 336]."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32, device=u8.device)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32, device=u8.device)[:, None, None]
    return (u8.permute(0, 3, 1, 2).float().div(255) - mean) / std


def num_tokens(w0: int, h0: int, patch: int = PATCH) -> dict:
    """The processor's get_num_token / get_w_h_num (integer unpadding in feature units)."""
    W, H = select_best_resolution(w0, h0, PINPOINTS)
    cw, ch = W // patch, H // patch
    if w0 / h0 > cw / ch:
        new_h = (h0 * cw) // w0
        pad = (ch - new_h) // 2
        wn, hn, top, left = cw, ch - 2 * pad, pad, 0
    else:
        new_w = (w0 * ch) // h0
        pad = (cw - new_w) // 2
        wn, hn, top, left = cw - 2 * pad, ch, 0, pad
    return dict(tokens=(wn + 1) * hn + (CROP // patch) ** 2, unpadded_h=hn, unpadded_w=wn, unpad_top=top,
                unpad_left=left)


def unpad_integer(feat: torch.Tensor, w0: int, h0: int) -> torch.Tensor:
    """feat [C, Hf, Wf]; the processor's get_w_h_num rule (integer), dropping pad rows/cols on both sides."""
    _, Hf, Wf = feat.shape
    if w0 / h0 > Wf / Hf:
        pad = (Hf - (h0 * Wf) // w0) // 2
        return feat[:, pad:Hf - pad, :]
    pad = (Wf - (w0 * Hf) // h0) // 2
    return feat[:, :, pad:Wf - pad]


def pack(proj_feats: torch.Tensor, newline: torch.Tensor, w0: int, h0: int, rows: int, cols: int,
         unpad=unpad_integer):
    """HF LLaVA-NeXT pack_image_features for one image: proj_feats [crops, 576, H] -> [tokens, H]."""
    p = CROP // PATCH
    base, tiles = proj_feats[0], proj_feats[1:]
    f = tiles.view(rows, cols, p, p, -1).permute(4, 0, 2, 1, 3).contiguous()
    f = f.flatten(1, 2).flatten(2, 3)                       # [H, rows*p, cols*p]
    f = unpad(f, w0, h0)
    f = torch.cat((f, newline[:, None, None].expand(*f.shape[:-1], 1).to(f.dtype)), dim=-1)
    f = f.flatten(1, 2).transpose(0, 1)
    return torch.cat((base, f), dim=0)


# ---------------------------------------------------------------------------------------------------------------------
# The model: HF classes, original VL-01 checkpoint layout.
def vl01_config(text_spec: dict, vision: dict, image_token_index: int, eos_token_id: int | None = None) -> dict:
    """config.json of a VL-01 model (model_type minimax_vl_01). `text_spec` is a make_text_fixture-style spec,
    `vision` CLIPVisionConfig keyword arguments."""
    import make_text_fixture as mtf

    text_cfg = mtf.original_config(text_spec)
    text_cfg["max_position_embeddings"] = text_spec.get("max_position_embeddings", 4096)
    if eos_token_id is not None:
        text_cfg["eos_token_id"] = eos_token_id
    cfg = dict(architectures=["MiniMaxVL01ForConditionalGeneration"], model_type="minimax_vl_01",
               text_config=text_cfg, vision_config=dict(model_type="clip_vision_model", **vision),
               image_token_index=image_token_index, vision_feature_layer=-1,
               vision_feature_select_strategy="default", image_grid_pinpoints=PINPOINTS, projector_hidden_act="gelu",
               image_seq_length=576, torch_dtype="bfloat16")
    if eos_token_id is not None:
        cfg["eos_token_id"] = eos_token_id
    return cfg


def preprocessor_config() -> dict:
    return dict(image_processor_type="ImageProcessor", process_image_mode="anyres", size=[CROP, CROP],
                patch_size=PATCH, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD),
                image_grid_pinpoints=[[w, h] for h, w in PINPOINTS])


def text_spec_from_config(text_cfg: dict) -> dict:
    """The make_text_fixture spec dict back from an original-layout text config."""
    return dict(vocab_size=text_cfg["vocab_size"], hidden_size=text_cfg["hidden_size"],
                num_hidden_layers=text_cfg["num_hidden_layers"], num_attention_heads=text_cfg["num_attention_heads"],
                num_key_value_heads=text_cfg["num_key_value_heads"], head_dim=text_cfg["head_dim"],
                rotary_dim=text_cfg["rotary_dim"], intermediate_size=text_cfg["intermediate_size"],
                num_local_experts=text_cfg["num_local_experts"], num_experts_per_tok=text_cfg["num_experts_per_tok"],
                attn_type_list=text_cfg["attn_type_list"], rope_theta=text_cfg["rope_theta"],
                alphas=dict(full=text_cfg["layernorm_full_attention_alpha"],
                            linear=text_cfg["layernorm_linear_attention_alpha"], mlp=text_cfg["layernorm_mlp_alpha"]),
                betas=dict(full=text_cfg["layernorm_full_attention_beta"],
                           linear=text_cfg["layernorm_linear_attention_beta"], mlp=text_cfg["layernorm_mlp_beta"]),
                postnorm=text_cfg.get("postnorm", True), tie_word_embeddings=text_cfg.get("tie_word_embeddings", False),
                max_position_embeddings=text_cfg.get("max_position_embeddings", 4096))


class Projector(torch.nn.Module):
    """VL-01's multi_modal_projector: linear_1 (+bias), GELU (exact), linear_2 (+bias)."""

    def __init__(self, vision_hidden: int, text_hidden: int):
        super().__init__()
        self.linear_1 = torch.nn.Linear(vision_hidden, text_hidden)
        self.act = torch.nn.GELU()
        self.linear_2 = torch.nn.Linear(text_hidden, text_hidden)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class VL01(torch.nn.Module):
    """CLIPVisionModel + Projector + image_newline + MiniMaxForCausalLM, composed as MiniMax-VL-01 does."""

    def __init__(self, config: dict, attn_implementation: str = "eager"):
        super().__init__()
        import make_text_fixture as mtf
        from transformers import CLIPVisionConfig, CLIPVisionModel, MiniMaxForCausalLM

        mtf.patch_transformers()
        self.config = config
        self.text_spec = text_spec_from_config(config["text_config"])
        vision = {k: v for k, v in config["vision_config"].items() if k != "model_type"}
        if config.get("vision_feature_layer", -1) != -1 or config.get("vision_feature_select_strategy",
                                                                       "default") != "default":
            raise ValueError("only vision_feature_layer -1 with the 'default' strategy (VL-01's) is implemented here")
        vcfg = CLIPVisionConfig(**vision)
        vcfg._attn_implementation = attn_implementation
        self.vision_tower = CLIPVisionModel(vcfg)
        text_hidden = self.text_spec["hidden_size"]
        self.multi_modal_projector = Projector(vision["hidden_size"], text_hidden)
        self.image_newline = torch.nn.Parameter(torch.randn(text_hidden) / math.sqrt(text_hidden))
        tcfg = mtf.native_config(self.text_spec)
        tcfg._attn_implementation = attn_implementation
        self.language_model = MiniMaxForCausalLM(tcfg)
        for layer in self.language_model.model.layers:
            layer.postnorm = self.text_spec.get("postnorm", True)  # read by the patched decoder layer forward
        if self.language_model.model.rotary_emb.inv_freq.numel() != self.text_spec["rotary_dim"] // 2:
            raise RuntimeError("the partial-RoPE patch did not take (expected rotary_dim/2 frequencies)")
        self.image_token_index = config["image_token_index"]

    # -- image features ------------------------------------------------------------------------------------------
    def crop_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[crops, 3, 336, 336] -> projected features [crops, 576, text_hidden] (last layer, CLS dropped)."""
        hs = self.vision_tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1]
        return self.multi_modal_projector(hs[:, 1:])

    def image_features(self, pixel_values: torch.Tensor, images: list[dict]) -> list[torch.Tensor]:
        """pixel_values: every image's crops concatenated in order; images: per image dict(width, height, rows, cols).
        Returns each image's packed features [tokens, text_hidden]."""
        feats = self.crop_features(pixel_values)
        out, k = [], 0
        for im in images:
            n = 1 + im["rows"] * im["cols"]
            out.append(pack(feats[k:k + n], self.image_newline, im["width"], im["height"], im["rows"], im["cols"]))
            k += n
        if k != feats.shape[0]:
            raise ValueError(f"{feats.shape[0]} crops given, the images need {k}")
        return out

    def embed(self, input_ids: torch.Tensor, image_feats: list[torch.Tensor] | None) -> torch.Tensor:
        """Token embeddings with every run of image tokens replaced, in order, by the packed image features. Each
        image occupies exactly its token count of consecutive `image_token_index` ids (the processor's expansion)."""
        emb = self.language_model.model.embed_tokens(input_ids)
        mask = input_ids == self.image_token_index
        n = int(mask.sum())
        if n or image_feats:
            feats = torch.cat(image_feats, 0) if image_feats else emb.new_zeros(0, emb.shape[-1])
            if feats.shape[0] != n:
                raise ValueError(f"{n} image tokens in the ids, {feats.shape[0]} image feature rows")
            emb = emb.masked_scatter(mask[..., None], feats.to(emb.dtype))
        return emb

    # -- checkpoint ------------------------------------------------------------------------------------------------
    def original_state_dict(self) -> dict[str, torch.Tensor]:
        import make_text_fixture as mtf

        out = {}
        for name, t in self.vision_tower.state_dict().items():
            if "post_layernorm" in name or "position_ids" in name:
                continue  # VL-01's checkpoint has no post_layernorm (its features are taken before it)
            # transformers 5 names CLIPVisionModel's tensors without the `vision_model.` level; VL-01 has it.
            out["vision_tower.vision_model." + name.removeprefix("vision_model.")] = t
        for name in ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias"):
            out["multi_modal_projector." + name] = self.multi_modal_projector.state_dict()[name]
        out["image_newline"] = self.image_newline.data
        for name, t in mtf.original_state_dict(self.text_spec, self.language_model.state_dict()).items():
            out["language_model." + name] = t
        return out

    def save_original(self, out_dir: str, dtype=torch.bfloat16) -> None:
        from safetensors.torch import save_file

        os.makedirs(out_dir, exist_ok=True)
        tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.original_state_dict().items()}
        save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
            f.write("\n")
        with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
            json.dump(preprocessor_config(), f, indent=1)
            f.write("\n")

    def load_original(self, tensors: dict[str, torch.Tensor]) -> None:
        """Loads original-layout tensors (upcast to this model's dtype); every parameter must be covered."""
        import make_text_fixture as mtf

        vt = {}
        text = {}
        for name, t in tensors.items():
            if name.startswith("vision_tower.vision_model."):
                vt["vision_model." + name.removeprefix("vision_tower.vision_model.")] = t
            elif name.startswith("language_model."):
                text[name.removeprefix("language_model.")] = t
        own = self.vision_tower.state_dict()
        if not any(k.startswith("vision_model.") for k in own):  # see original_state_dict
            vt = {k.removeprefix("vision_model."): v for k, v in vt.items()}
        missing, unexpected = self.vision_tower.load_state_dict({k: v.float() for k, v in vt.items()}, strict=False)
        missing = [m for m in missing if "post_layernorm" not in m and "position_ids" not in m]
        if missing or unexpected:
            raise ValueError(f"vision tower: missing {missing}, unexpected {unexpected}")
        self.multi_modal_projector.load_state_dict(
            {k.removeprefix("multi_modal_projector."): v.float() for k, v in tensors.items()
             if k.startswith("multi_modal_projector.")})
        with torch.no_grad():
            self.image_newline.copy_(tensors["image_newline"].float())
        missing, unexpected = self.language_model.load_state_dict(mtf.native_state_dict(self.text_spec, text),
                                                                  strict=False)
        missing = [m for m in missing if not m.endswith(("slope_rate", "query_decay", "key_decay", "diagonal_decay"))]
        if self.text_spec.get("tie_word_embeddings", False):
            missing = [m for m in missing if m != "lm_head.weight"]
        if missing or unexpected:
            raise ValueError(f"language model: missing {missing}, unexpected {unexpected}")


def load_vl01(model_dir: str, attn_implementation: str = "eager") -> VL01:
    """A VL-01 model directory (config.json + model.safetensors) as an fp32 VL01 in eval mode."""
    from safetensors.torch import load_file

    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    if config.get("model_type") != "minimax_vl_01":
        raise ValueError(f"{model_dir}/config.json: model_type {config.get('model_type')!r}, expected 'minimax_vl_01'")
    model = VL01(config, attn_implementation)
    model.load_original(load_file(os.path.join(model_dir, "model.safetensors")))
    return model.float().eval()
