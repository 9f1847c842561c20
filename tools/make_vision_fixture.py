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

  Comparison with transformers' LlavaNextImageProcessorPil (same pinpoints, 336): it is run on every image and
  the differences are written to reference/manifest.json and printed. Known differences: (1) it sizes the
  aspect-preserving resize with ceil(side * scale) (get_patch_output_size), the VL-01 processor with
  int(W*h/w) (floor), so the resized image and the padding differ by one pixel on some images; (2) it rescales and
  normalises in float64 numpy (then casts), torchvision in float32: values differ by ~1e-7; (3) it converts to RGB
  before resizing, so RGBA/LA are resized without premultiplication and palette images with BICUBIC instead of
  NEAREST.

Part 2 - tiny VL model (tests/data/vision/tiny-vl): see build_model() below.

Run from the repository root (CPU; needs torch, transformers, numpy, pillow):
    python3 tools/make_vision_fixture.py [--out tests/data/vision]
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

PILLOW_VERSION = "13.0.0"  # see the docstring: the resampling order is version-dependent

CROP = 336
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
    save("cmyk_160x120.jpg", photo(160, 120, 18).convert("CMYK"), "CMYK JPEG (converted by OpenCV's rule: "
         "compared with a tolerance)", quality=95)
    return specs


# ---------------------------------------------------------------------------------------------------------------------
# The VL-01 processor rules (anyres), on PIL images
def select_best_resolution(w0: int, h0: int, pinpoints) -> tuple[int, int]:
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


def normalise(crops) -> np.ndarray:
    """torchvision ToTensor + Normalize, float32 throughout."""
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=torch.float32)[:, None, None]
    out = []
    for c in crops:
        t = torch.from_numpy(np.array(c, dtype=np.uint8)).permute(2, 0, 1).float().div(255)
        out.append(((t - mean) / std).numpy())
    return np.stack(out).astype(np.float32)


def num_tokens(w0: int, h0: int, patch: int = 14) -> dict:
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


def llava_next_compare(img: Image.Image, ours: np.ndarray) -> dict:
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
    proc = LlavaNextImageProcessorPil(image_grid_pinpoints=PINPOINTS, size={"shortest_edge": CROP},
                                      crop_size={"height": CROP, "width": CROP})
    pv = np.asarray(proc(img, return_tensors="np")["pixel_values"][0], dtype=np.float32)
    res = dict(llava_next_crops=int(pv.shape[0]))
    if pv.shape == ours.shape:
        d = np.abs(pv - ours)
        res.update(llava_next_max_abs_diff=float(d.max()), llava_next_crops_differing=int((d.reshape(len(d), -1).max(1) > 1e-5).sum()))
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
        e["exact"] = not name.startswith("cmyk")
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/vision")
    args = ap.parse_args()
    if PIL.__version__ != PILLOW_VERSION:
        sys.exit(f"Pillow {PILLOW_VERSION} is required (found {PIL.__version__}): pip install pillow=={PILLOW_VERSION}")
    image_dir = os.path.join(args.out, "images")
    ref_dir = os.path.join(args.out, "reference")
    specs = make_images(image_dir)
    entries = make_pixel_references(image_dir, ref_dir, specs)
    resizes = make_resize_references(image_dir, ref_dir)
    manifest = dict(pillow_version=PIL.__version__, crop_size=CROP, pinpoints=PINPOINTS, mean=CLIP_MEAN, std=CLIP_STD, images=entries,
                    resizes=resizes)
    with open(os.path.join(ref_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
