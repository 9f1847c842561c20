#!/usr/bin/env python3
"""Vision fixtures for Volt's MiniMax-VL-01 image path (tests/data/vision/).

Part 1 - images and preprocessing references (tests/data/vision/images, tests/data/vision/reference):
  Images are generated here (procedural "photographs" and PIL drawings; nothing is downloaded) in every format and
  PIL mode the decoder must handle: RGB/grey/CMYK JPEG, EXIF-rotated JPEG/PNG/WebP, RGB/RGBA/LA/palette PNG, GIF,
  BMP, lossless WebP, LZW TIFF; sizes from 5x7 to 2100x2100, very wide and very tall.
  The reference preprocessing is MiniMax-VL-01's own processor rules (its remote-code image_processor.py, anyres
  mode), written out below on PIL images:
    img = ImageOps.exif_transpose(Image.open(f))        # transformers.image_utils.load_image does this
    (W, H) = select_best_resolution((w, h), pinpoints)   # max effective resolution, ties -> least waste
    keepratio_resize: if w/h > W/H: resize to (W, int(W*h/w)) else (int(H*w/h), H) with Image.BICUBIC,
                      paste centred ((H-new_h)//2 or (W-new_w)//2) on a black RGB canvas, cut 336x336 tiles
                      row-major; thumbnail = img.resize((336, 336), BICUBIC)
    every crop: convert("RGB"), torchvision ToTensor (u8/255 in float32), Normalize(CLIP mean, std) in float32
  PIL resizes in the image's own mode: "P"/"1" with NEAREST whatever filter is asked, "RGBA"/"LA" premultiplied.
  The BICUBIC bytes depend on the Pillow release (Pillow 13 runs the vertical pass first when the height shrinks by
  more than twice as many pixels as the width; older releases always went horizontal first): the manifest records
  the version and the script refuses any other, so regenerated fixtures stay comparable.
  The 8-bit crops are stored losslessly as one PNG strip per image (336 wide, 336*crops high), plus float32
  pixel values for the tiny image, so the C++ test checks both the bytes and the normalisation.
  Token counts come from the processor's get_num_token formula (576 + (w'+1)*h').

  Comparison with transformers' LlavaNextImageProcessorPil (same pinpoints, 336): it is run on every image and the
  largest difference is written to reference/manifest.json (llava_next_max_abs_diff) and printed. Measured with
  transformers 5.17 / Pillow 13.0: identical (0.0) for photo, tiny, big, drawing, EXIF-rotated and WebP images;
  up to 3.75 (normalised units) elsewhere, for two reasons: (1) it sizes the aspect-preserving resize with
  ceil(side * scale) (get_patch_output_size) where the VL-01 processor uses int(W*h/w) (floor), so the resized image and the padding
  differ by one pixel when the product is not an integer (wide, tall, grey, BMP, TIFF); (2) it converts to RGB
  before resizing, so RGBA/LA are resized without premultiplication and palette images (PNG "P", GIF) with BICUBIC
  instead of PIL's NEAREST. Its rescale/normalise arithmetic gave bit-identical values wherever the 8-bit crops
  agreed. CMYK differs by 0.03 through (2) as well.

Part 2 - tiny VL model (tests/data/vision/tiny-vl), in the ORIGINAL MiniMax-VL-01 layout:
  config.json             model_type "minimax_vl_01": text_config = tests/data/tiny-text's MiniMax-Text-01 config,
                          vision_config = a tiny CLIP (hidden 32, 4 heads, MLP 80, 3 layers, 336/14, exact "gelu"),
                          the 28 VL-01 grids, image_token_index 500, vision_feature_layer -1
  preprocessor_config.json  the processor's anyres settings (CLIP mean/std)
  model.safetensors       bf16: `language_model.` + tiny-text's tensors, `vision_tower.vision_model.*` (no
                          post_layernorm, as VL-01), `multi_modal_projector.linear_{1,2}` (32 -> 64 -> 64, biases),
                          `image_newline` [64]. Every LayerNorm weight/bias and Linear bias is randomised (CLIP's
                          init would leave them at 1/0 and hide mix-ups).
  reference/              fp32 computed from the bf16-rounded weights:
    <image>.vit.npy       transformers CLIPVisionModel hidden_states[-1] without CLS, [crops, 576, 32] (photo only)
    tiny_5x7.vit_layer-2.npy  hidden_states[-2] without CLS (vision_feature_layer other than -1)
    <image>.packed.npy    projector (torch Linear-GELU-Linear) + packing written below after HF's
                          pack_image_features/unpad_image (view, permute, unpad, newline per row), [tokens, 64]
    manifest.json         per image: crops, tokens (processor formula) and the packed row count, which must agree
  The packing uses the processor's integer unpadding; transformers' unpad_image (float scale) is evaluated too and
  any disagreement is printed and recorded.

Run from the repository root (CPU; needs torch, transformers, numpy, pillow):
    python3 tools/make_vision_fixture.py [--out tests/data/vision]
Cross-check beyond the fixtures (writes nothing under tests/): random sizes, aspect ratios and PIL modes through
`volt embed-image --pixels-out`, compared with the reference preprocessing; exits non-zero on any difference:
    python3 tools/make_vision_fixture.py --sweep 40 --volt build/bin/volt
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys

import numpy as np
import PIL
import torch
from PIL import Image, ImageDraw, ImageOps

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vl01_reference import (CLIP_MEAN, CLIP_STD, CROP, PINPOINTS, normalise, num_tokens, pack,  # noqa: E402
                            preprocessor_config, unpad_integer, vl01_crops)

PILLOW_VERSION = "13.0.0"  # see the docstring: the resampling order is version-dependent



# ---------------------------------------------------------------------------------------------------------------------
# Image generation
def photo(w: int, h: int, seed: int) -> Image.Image:
    """A smooth, photograph-like RGB field: random low-frequency waves, soft blobs, fine grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(4):
            fx, fy = rng.uniform(0.5, 6, 2) / max(w, h)
            ph = rng.uniform(0, 2 * math.pi)
            img[..., c] += rng.uniform(20, 50) * np.sin(2 * math.pi * (fx * x + fy * y) + ph)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.3) * max(w, h)
        col = rng.uniform(-80, 80, 3)
        img += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None] * col
    img += 128 + rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def drawing(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    """A flat-colour drawing: rectangles, ellipses, lines and text (hard edges exercise the filter's lobes)."""
    rng = np.random.default_rng(seed)
    bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    for i in range(12):
        x0, x1 = sorted(rng.integers(0, w, 2))
        y0, y1 = sorted(rng.integers(0, h, 2))
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        [d.rectangle, d.ellipse][i % 2]([x0, y0, x1, y1], fill=col, outline=(0, 0, 0))
    for _ in range(8):
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(2)]
        d.line(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    d.text((2, 2), "Volt", fill=(255, 255, 255))
    return im.convert(mode) if mode != "RGB" else im


def with_alpha(im: Image.Image, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = im.size
    y, x = np.mgrid[0:h, 0:w]
    a = (255 * (x / max(1, w - 1)) * (0.5 + 0.5 * np.cos(y / 7.0))).astype(np.float64)
    a[rng.random(a.shape) < 0.05] = 0  # some fully transparent pixels
    a[: h // 4] = 255                  # and an opaque band
    out = im.convert("RGBA")
    out.putalpha(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L"))
    return out


def exif_bytes(orientation: int) -> bytes:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex.tobytes()


def make_images(out_dir: str) -> list[dict]:
    os.makedirs(out_dir, exist_ok=True)
    specs = []

    def save(name, im, note, **kw):
        path = os.path.join(out_dir, name)
        im.save(path, **kw)
        specs.append(dict(name=name, note=note))

    save("photo_640x480.jpg", photo(640, 480, 1), "RGB JPEG 4:2:0 photograph", quality=90)
    save("tiny_5x7.png", photo(5, 7, 2), "tiny RGB PNG (upscaled 48x)")
    save("wide_1500x60.png", drawing(1500, 60, 3), "very wide drawing")
    save("tall_70x1300.png", drawing(70, 1300, 4), "very tall drawing")
    save("big_2100x2100.jpg", photo(2100, 2100, 5), "2016^2+ photograph", quality=75)
    save("drawing_1000x1000.png", drawing(1000, 1000, 6), "1000^2 drawing (3x3 grid, 5832 tokens)")
    save("gray_400x300.jpg", photo(400, 300, 7).convert("L"), "greyscale JPEG (PIL mode L)", quality=90)
    save("alpha_300x200.png", with_alpha(photo(300, 200, 8), 8), "RGBA PNG, varying alpha (premultiplied resize)")
    save("gray_alpha_90x60.png", with_alpha(photo(90, 60, 9), 9).convert("LA"), "LA PNG (grey + alpha)")
    save("palette_200x150.png", drawing(200, 150, 10).quantize(64), "palette PNG (PIL P: NEAREST resize)")
    save("exif_rot6_320x240.jpg", photo(320, 240, 11), "JPEG, EXIF orientation 6 (stored 320x240, shown 240x320)",
         quality=92, exif=exif_bytes(6))
    save("exif_rot8_160x90.png", drawing(160, 90, 12), "PNG with an eXIf chunk, orientation 8", exif=exif_bytes(8))
    save("exif_rot3_120x80.webp", drawing(120, 80, 13), "lossless WebP with EXIF orientation 3", lossless=True,
         exif=exif_bytes(3))
    save("frame_120x90.gif", drawing(120, 90, 14).quantize(32), "GIF (first frame, palette)")
    save("bmp24_123x77.bmp", photo(123, 77, 15), "24-bit BMP")
    save("webp_210x140.webp", photo(210, 140, 16), "lossless WebP", lossless=True)
    save("tiff_150x100.tif", photo(150, 100, 17), "LZW TIFF", compression="tiff_lzw")
    save("cmyk_160x120.jpg", photo(160, 120, 18).convert("CMYK"), "CMYK JPEG (exact with libjpeg; OpenCV's "
         "or stb_image's own CMYK->RGB rule otherwise)", quality=95)
    return specs


# ---------------------------------------------------------------------------------------------------------------------
# The VL-01 processor rules (anyres) live in vl01_reference.py (shared with tools/train_demo).


def llava_next_compare(img: Image.Image, ours: np.ndarray) -> dict:
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
    proc = LlavaNextImageProcessorPil(image_grid_pinpoints=PINPOINTS, size={"shortest_edge": CROP},
                                      crop_size={"height": CROP, "width": CROP})
    pv = np.asarray(proc(img, return_tensors="np")["pixel_values"][0], dtype=np.float32)
    res = dict(llava_next_crops=int(pv.shape[0]))
    if pv.shape == ours.shape:
        d = np.abs(pv - ours)
        differing = int((d.reshape(len(d), -1).max(1) > 1e-5).sum())
        res.update(llava_next_max_abs_diff=float(d.max()), llava_next_crops_differing=differing)
    return res


def to_strip(crops) -> Image.Image:
    strip = Image.new("RGB", (CROP, CROP * len(crops)))
    for i, c in enumerate(crops):
        strip.paste(c, (0, CROP * i))
    return strip


def make_pixel_references(image_dir: str, ref_dir: str, specs: list[dict]) -> list[dict]:
    os.makedirs(ref_dir, exist_ok=True)
    entries = []
    for spec in specs:
        name = spec["name"]
        with Image.open(os.path.join(image_dir, name)) as f:
            stored_size = f.size
            mode = f.mode
            img = ImageOps.exif_transpose(f)
            img.load()
        crops, geom = vl01_crops(img)
        pv = normalise(crops)
        base = os.path.splitext(name)[0]
        to_strip(crops).save(os.path.join(ref_dir, base + ".crops.png"))
        e = dict(spec, pil_mode=mode, stored_w=stored_size[0], stored_h=stored_size[1], width=img.size[0],
                 height=img.size[1], crops=len(crops), strip=base + ".crops.png", **geom, **num_tokens(*img.size))
        if name == "tiny_5x7.png":
            np.save(os.path.join(ref_dir, base + ".pixel_values.npy"), pv)
            e["pixel_values"] = base + ".pixel_values.npy"
        e.update(llava_next_compare(img, pv))
        entries.append(e)
        print(f"{name:28s} {mode:5s} {img.size[0]:5d}x{img.size[1]:<5d} grid {geom['rows']}x{geom['cols']} "
              f"crops {len(crops):2d} tokens {e['tokens']:5d}  llava-next max|diff| "
              f"{e.get('llava_next_max_abs_diff', 'shape differs')}")
    return entries


def make_resize_references(image_dir: str, ref_dir: str) -> list[dict]:
    """Plain PIL BICUBIC resizes of one drawing and one RGBA image: shrink by large and small factors, enlarge,
    one axis only, to prove the separable filter (and the premultiplied path) byte for byte."""
    out = []
    for src, sizes in (("drawing_1000x1000.png", [(336, 336), (997, 13), (1000, 333), (1501, 1499), (41, 1000)]),
                       ("alpha_300x200.png", [(336, 336), (299, 201)]),
                       ("palette_200x150.png", [(336, 336), (71, 29)])):
        with Image.open(os.path.join(image_dir, src)) as im:
            im.load()
            for (w, h) in sizes:
                r = im.resize((w, h), Image.BICUBIC).convert("RGB")
                name = f"resize_{os.path.splitext(src)[0]}_{w}x{h}.png"
                r.save(os.path.join(ref_dir, name))
                out.append(dict(source=src, width=w, height=h, file=name))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Part 2: tiny VL model and ViT / packed-feature references
VISION = dict(hidden_size=32, intermediate_size=80, num_hidden_layers=3, num_attention_heads=4, image_size=CROP,
              patch_size=14, num_channels=3, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=64)
IMAGE_TOKEN = 500
FEATURE_IMAGES = ["photo_640x480.jpg", "wide_1500x60.png", "tall_70x1300.png", "tiny_5x7.png", "exif_rot8_160x90.png"]
# Prompts for the VL logits references: each IMAGE_TOKEN stands for the next image (volt logits --image rule).
VL_PROMPTS = [
    dict(name="1img", ids=[3, 17, IMAGE_TOKEN, 42, 99], images=["tiny_5x7.png"]),
    dict(name="2img", ids=[5, IMAGE_TOKEN, 7, 8, IMAGE_TOKEN, 11], images=["tiny_5x7.png", "exif_rot8_160x90.png"]),
]


def bf16_round(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(torch.float32)


def build_model(data_dir: str, out_dir: str):
    from safetensors.torch import load_file, save_file
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(2026)
    text_dir = os.path.join(os.path.dirname(data_dir.rstrip("/")), "tiny-text")
    with open(os.path.join(text_dir, "config.json")) as f:
        text_cfg = json.load(f)
    text_hidden = text_cfg["hidden_size"]

    vcfg = CLIPVisionConfig(**VISION)
    vcfg._attn_implementation = "eager"
    vit = CLIPVisionModel(vcfg).eval()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in vit.named_parameters():
            if "layer_norm" in name or "layrnorm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif "class_embedding" in name or "position_embedding" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            p.copy_(bf16_round(p))
    proj = torch.nn.Sequential(torch.nn.Linear(VISION["hidden_size"], text_hidden), torch.nn.GELU(),
                               torch.nn.Linear(text_hidden, text_hidden)).eval()
    with torch.no_grad():
        for p in proj.parameters():
            p.copy_(bf16_round(0.3 * torch.randn(p.shape, generator=g)))
    newline = bf16_round(torch.randn(text_hidden, generator=g))

    tensors = {}
    for name, t in vit.state_dict().items():
        if "post_layernorm" in name or "position_ids" in name:
            continue  # VL-01's checkpoint has no post_layernorm
        # transformers 5 names CLIPVisionModel's tensors without the `vision_model.` level; VL-01 has it.
        tensors["vision_tower.vision_model." + name.removeprefix("vision_model.")] = t
    tensors["multi_modal_projector.linear_1.weight"] = proj[0].weight.data
    tensors["multi_modal_projector.linear_1.bias"] = proj[0].bias.data
    tensors["multi_modal_projector.linear_2.weight"] = proj[2].weight.data
    tensors["multi_modal_projector.linear_2.bias"] = proj[2].bias.data
    tensors["image_newline"] = newline
    for name, t in load_file(os.path.join(text_dir, "model.safetensors")).items():
        tensors["language_model." + name] = t
    os.makedirs(out_dir, exist_ok=True)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()},
              os.path.join(out_dir, "model.safetensors"))
    config = dict(architectures=["MiniMaxVL01ForConditionalGeneration"], model_type="minimax_vl_01",
                  text_config=text_cfg, vision_config=dict(model_type="clip_vision_model", **VISION),
                  image_token_index=IMAGE_TOKEN, vision_feature_layer=-1, vision_feature_select_strategy="default",
                  image_grid_pinpoints=PINPOINTS, projector_hidden_act="gelu", image_seq_length=576,
                  torch_dtype="bfloat16")
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(preprocessor_config(), f, indent=1)
    return vit, proj, newline


def make_feature_references(image_dir: str, out_dir: str, vit, proj, newline, entries: dict) -> list[dict]:
    from transformers.models.llava_next.modeling_llava_next import unpad_image

    ref_dir = os.path.join(out_dir, "reference")
    os.makedirs(ref_dir, exist_ok=True)
    out = []
    packed_by_image = {}
    for name in FEATURE_IMAGES:
        with Image.open(os.path.join(image_dir, name)) as f:
            img = ImageOps.exif_transpose(f)
            img.load()
        crops, geom = vl01_crops(img)
        pv = torch.from_numpy(normalise(crops))
        with torch.no_grad():
            hs = vit(pixel_values=pv, output_hidden_states=True).hidden_states
            feats = hs[-1][:, 1:]
            packed = pack(proj(feats), newline, img.size[0], img.size[1], geom["rows"], geom["cols"], unpad_integer)
            packed_hf = pack(proj(feats), newline, img.size[0], img.size[1], geom["rows"], geom["cols"],
                             lambda t, w0, h0: unpad_image(t, (h0, w0)))
        base = os.path.splitext(name)[0]
        packed_by_image[name] = packed
        np.save(os.path.join(ref_dir, base + ".packed.npy"), packed.numpy().astype(np.float32))
        e = dict(image=name, crops=len(crops), tokens=num_tokens(*img.size)["tokens"], packed_rows=int(packed.shape[0]),
                 packed="reference/" + base + ".packed.npy",
                 hf_unpad_same=bool(packed_hf.shape == packed.shape and torch.equal(packed_hf, packed)))
        assert e["tokens"] == e["packed_rows"], (name, e)
        if name == "photo_640x480.jpg":
            np.save(os.path.join(ref_dir, base + ".vit.npy"), feats.numpy().astype(np.float32))
            e["vit"] = "reference/" + base + ".vit.npy"
        if name == "tiny_5x7.png":
            np.save(os.path.join(ref_dir, base + ".vit_layer-2.npy"), hs[-2][:, 1:].numpy().astype(np.float32))
            e["vit_layer-2"] = "reference/" + base + ".vit_layer-2.npy"
        print(f"features {name:24s} crops {len(crops):2d} tokens {e['tokens']:5d} "
              f"hf unpad_image agrees: {e['hf_unpad_same']}")
        out.append(e)
    return out, packed_by_image


def make_logits_references(data_dir: str, out_dir: str, packed_by_image: dict) -> list[dict]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_text_fixture as mtf

    mtf.patch_transformers()
    spec = next(f for f in mtf.FIXTURES if f["name"] == "tiny-text")
    weights = mtf.read_checkpoint(os.path.join(os.path.dirname(data_dir.rstrip("/")), "tiny-text"))
    model = mtf.native_model(spec, weights)
    ref_dir = os.path.join(out_dir, "reference")
    out = []
    for prompt in VL_PROMPTS:
        feats = [packed_by_image[name] for name in prompt["images"]]
        expanded, rows = [], []
        k = 0
        for t in prompt["ids"]:
            if t == IMAGE_TOKEN:
                expanded += [IMAGE_TOKEN] * feats[k].shape[0]
                k += 1
            else:
                expanded.append(t)
        assert k == len(feats)
        ids = torch.tensor([expanded])
        with torch.no_grad():
            emb = model.model.embed_tokens(ids)[0].clone()
            pos = (ids[0] == IMAGE_TOKEN).nonzero()[:, 0]
            emb[pos] = torch.cat(feats, 0).to(emb.dtype)
            logits = model(inputs_embeds=emb[None], use_cache=False).logits[0].float()
        with open(os.path.join(ref_dir, f"ids_{prompt['name']}.json"), "w") as f:
            json.dump(prompt["ids"], f)
        np.save(os.path.join(ref_dir, f"logits_{prompt['name']}.npy"), logits.numpy().astype(np.float32))
        top2 = torch.topk(logits, 2, dim=-1).values
        e = dict(name=prompt["name"], ids=f"reference/ids_{prompt['name']}.json", images=prompt["images"],
                 expanded_tokens=len(expanded), logits=f"reference/logits_{prompt['name']}.npy",
                 min_top2_gap=float((top2[:, 0] - top2[:, 1]).min()))
        print(f"VL logits {prompt['name']}: {len(prompt['images'])} image(s), {len(expanded)} expanded tokens")
        out.append(e)
    return out


def sweep(count: int, volt: str, model_dir: str) -> int:
    import subprocess
    import tempfile

    rng = np.random.default_rng(123)
    worst, checked = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp:
        path, feats, pix = (os.path.join(tmp, n) for n in ("sweep.png", "f.npy", "p.npy"))
        for i in range(count):
            w, h = (int(v) for v in rng.integers(1, 2600, 2))
            if rng.random() < 0.3:
                h = max(1, int(w * rng.uniform(0.02, 0.2)))
            mode = ["RGB", "RGBA", "L", "P"][i % 4]
            im = drawing(w, h, i) if i % 2 else photo(w, h, i)
            im = {"RGBA": lambda x: with_alpha(x, i), "L": lambda x: x.convert("L"),
                  "P": lambda x: x.quantize(50)}.get(mode, lambda x: x)(im)
            im.save(path)
            crops, _ = vl01_crops(im)
            r = subprocess.run([volt, "embed-image", "--model", model_dir, "--image", path, "--out", feats,
                                "--pixels-out", pix], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{w}x{h} {mode}: volt failed: {r.stderr.strip()}")
                return 1
            d = float(np.abs(np.load(pix) - normalise(crops)).max())
            worst, checked = max(worst, d), checked + 1
            if d > 0:
                print(f"{w}x{h} {mode}: max |diff| {d}")
    print(f"sweep: {checked} images, max |pixel value diff| {worst}")
    return 0 if worst == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/vision")
    ap.add_argument("--sweep", type=int, default=0, help="cross-check N random images against `volt embed-image`")
    ap.add_argument("--volt", default="build/bin/volt")
    args = ap.parse_args()
    if PIL.__version__ != PILLOW_VERSION:
        sys.exit(f"Pillow {PILLOW_VERSION} is required (found {PIL.__version__}): pip install pillow=={PILLOW_VERSION}")
    if args.sweep:
        return sweep(args.sweep, args.volt, os.path.join(args.out, "tiny-vl"))
    image_dir = os.path.join(args.out, "images")
    ref_dir = os.path.join(args.out, "reference")
    specs = make_images(image_dir)
    entries = make_pixel_references(image_dir, ref_dir, specs)
    resizes = make_resize_references(image_dir, ref_dir)
    manifest = dict(pillow_version=PIL.__version__, crop_size=CROP, pinpoints=PINPOINTS, mean=CLIP_MEAN,
                    std=CLIP_STD, images=entries, resizes=resizes)
    with open(os.path.join(ref_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    model_dir = os.path.join(args.out, "tiny-vl")
    vit, proj, newline = build_model(args.out, model_dir)
    features, packed = make_feature_references(image_dir, model_dir, vit, proj, newline,
                                               {e["name"]: e for e in entries})
    prompts = make_logits_references(args.out, model_dir, packed)
    with open(os.path.join(model_dir, "reference", "manifest.json"), "w") as f:
        json.dump(dict(images=features, prompts=prompts, vision_feature_layers=[-1, -2],
                       image_token_index=IMAGE_TOKEN), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
