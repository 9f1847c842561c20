#!/usr/bin/env python3
"""Trains Volt's bundled demo model (models/volt-demo-vl): a tiny model of MiniMax-VL-01's architecture on
synthetic maps and documents, and exports it in the original VL-01 checkpoint layout.

The model is made of Hugging Face transformers classes (tools/vl01_reference.py): CLIPVisionModel (336^2 crops,
patch 14, exact GELU), VL-01's projector (Linear+bias, GELU, Linear+bias), image_newline, and MiniMaxForCausalLM
(lightning and softmax attention layers, top-2 MoE) patched to MiniMax's partial RoPE and decay slopes. Volt's CPU
backend was verified against exactly these classes, so it runs the exported model as trained.

Data (tools/train_demo/data.py) is generated on the fly by worker processes (multiprocessing, all but two cores),
deterministically from the batch index: batch b holds either maps (one size per batch, so little padding) or
documents + small talk, each as a multi-turn chat rendered with the VL-01 chat template. Generating on the fly
instead of in advance keeps every map unseen (a pre-generated pool of ~100k maps would need ~100 GB of crops)
while the workers stay ahead of the GPU. The loss is on the assistant answers (+ <end_of_sentence>) plus 0.01 x the
MoE load-balancing loss. bf16 autocast, AdamW, linear warm-up then a cosine decay over the time budget (--minutes),
so the schedule ends when the time does. After training: a quick greedy evaluation on the held-out set (bf16 on
the training device; tools/train_demo/evaluate.py gives the reference numbers on the CPU), then the export:
config.json, model.safetensors (bf16), tokenizer.json, tokenizer_config.json (VL-01 chat template),
preprocessor_config.json and README.md (model card).

Usage (GPU machine; from the repository root):
    python3 tools/train_demo/train.py --out $OUT/volt-demo-vl --minutes 7
A further stage from an exported model, on the batches after the ones it saw (the bundled model was trained in two
stages; tools/train_demo/runs/README.md has the exact commands):
    python3 tools/train_demo/train.py --out $OUT/volt-demo-vl --init models/volt-demo-vl --start-batch 1643 ...
A CPU smoke run of the whole pipeline:
    python3 tools/train_demo/train.py --out /tmp/demo --device cpu --steps 20 --batch 2 --eval-items 6
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import data  # noqa: E402
import vl01_reference as vlr  # noqa: E402

# The model: MiniMax-VL-01's architecture at a size that ships in the repository (~15 MB in bf16) and runs well
# under a second per token on two CPU cores. Head counts are powers of two (the slope rule, see vl01_reference).
VISION = dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4, image_size=336,
              patch_size=14, num_channels=3, hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=256)
N_LAYERS = 4
TEXT = dict(hidden_size=256, num_hidden_layers=N_LAYERS, num_attention_heads=8, num_key_value_heads=4, head_dim=32,
            rotary_dim=16, intermediate_size=224, num_local_experts=4, num_experts_per_tok=2,
            attn_type_list=[0, 1, 0, 1], rope_theta=10000.0,
            # DeepNorm post-norm residuals as Text-01 (alpha = (2 x layers)^(1/4): 3.5566 for its 80 layers).
            alphas=dict(full=(2 * N_LAYERS) ** 0.25, linear=(2 * N_LAYERS) ** 0.25, mlp=(2 * N_LAYERS) ** 0.25),
            betas=dict(full=1.0, linear=1.0, mlp=1.0), postnorm=True, tie_word_embeddings=False,
            max_position_embeddings=4096)
AUX_LOSS_COEF = 0.01
MAP_SEEDS_PER_BATCH = 12  # seed range per map batch, in batch sizes: enough for B maps of the batch's size


# ---------------------------------------------------------------------------------------------------------------------
# Data workers
_ENC = None


def _worker_init(tokenizer_dir: str) -> None:
    global _ENC
    torch.set_num_threads(1)
    _ENC = data.Encoder(tokenizer_dir)


def batch_kind(b: int) -> str:
    return "doc" if b % 5 == 4 else "map"  # 80% of the steps see maps


def make_batch(b: int, batch: int, doc_mult: int, extra: bool = False) -> dict:
    """Batch `b` (deterministic in b): token ids [B, T] (right-padded), answer mask, uint8 crops and image geometry."""
    enc = _ENC
    convs = []
    if batch_kind(b) == "map":
        size = data.DEMO_SIZES[(b // 5 * 4 + b % 5) % len(data.DEMO_SIZES)]
        lo = b * batch * MAP_SEEDS_PER_BATCH
        for seed in range(lo, lo + batch * MAP_SEEDS_PER_BATCH):
            # make_map's first draw is the size: skip other sizes without drawing the map.
            if random.Random(seed).choice(data.DEMO_SIZES) != size:
                continue
            c = data.map_conversation(seed, extra=extra)
            if c is not None:
                convs.append(c)
            if len(convs) == batch:
                break
    else:
        n = batch * doc_mult
        for i in range(n):
            seed = b * n + i
            convs.append(data.smalltalk_conversation(seed) if seed % 16 == 0 else
                         data.doc_conversation(seed, extra=extra))
    ids, targets, crops, images = [], [], [], []
    for c in convs:
        counts = []
        if c["source"] == "map":
            u8, geom = vlr.crops_u8(c["image"])
            w, h = c["image"].size
            crops.append(u8)
            images.append(dict(width=w, height=h, rows=geom["rows"], cols=geom["cols"]))
            counts.append(vlr.num_tokens(w, h)["tokens"])
        i, t = enc.encode(c["messages"], counts)
        ids.append(i)
        targets.append(t)
    T = max(len(i) for i in ids)
    ids_arr = np.full((len(ids), T), enc.eos_id, dtype=np.int64)
    tgt_arr = np.zeros((len(ids), T), dtype=bool)
    for k, (i, t) in enumerate(zip(ids, targets)):
        ids_arr[k, :len(i)] = i
        tgt_arr[k, :len(t)] = t
    return dict(b=b, ids=ids_arr, target=tgt_arr, crops=np.concatenate(crops) if crops else None, images=images,
                kind=batch_kind(b), n=len(convs), tokens=int(sum(len(i) for i in ids)))


class Prefetcher:
    """Batches b = start, start+1, ... from a process pool, in order, at most `depth` in flight (Pool.imap would
    read an endless index stream ahead without bound)."""

    def __init__(self, pool, batch: int, doc_mult: int, depth: int, start: int = 0, extra: bool = False):
        self.pool, self.batch, self.doc_mult, self.depth, self.extra = pool, batch, doc_mult, depth, extra
        self.next_b = start
        self.pending = collections.deque()
        for _ in range(depth):
            self._submit()

    def _submit(self):
        self.pending.append(self.pool.apply_async(make_batch, (self.next_b, self.batch, self.doc_mult, self.extra)))
        self.next_b += 1

    def get(self) -> dict:
        r = self.pending.popleft().get()
        self._submit()
        return r


# ---------------------------------------------------------------------------------------------------------------------
# Model
def build_config(vocab_size: int, image_token: int, eos: int) -> dict:
    spec = dict(TEXT, vocab_size=vocab_size)
    return vlr.vl01_config(spec, VISION, image_token_index=image_token, eos_token_id=eos)


def forward_loss(model, batch: dict, device: str, autocast: bool):
    from transformers.models.minimax.modeling_minimax import load_balancing_loss_func

    ids = torch.from_numpy(batch["ids"]).to(device, non_blocking=True)
    target = torch.from_numpy(batch["target"]).to(device, non_blocking=True)
    with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                        enabled=autocast):
        feats = None
        if batch["crops"] is not None:
            pix = vlr.normalise_u8(torch.from_numpy(batch["crops"]).to(device, non_blocking=True))
            feats = model.image_features(pix, batch["images"])
        emb = model.embed(ids, feats)
        out = model.language_model.model(inputs_embeds=emb, output_router_logits=True, use_cache=False)
        hidden = out.last_hidden_state[:, :-1][target[:, 1:]]   # positions whose next token is an answer token
        logits = model.language_model.lm_head(hidden).float()
        loss = torch.nn.functional.cross_entropy(logits, ids[:, 1:][target[:, 1:]])
        aux = load_balancing_loss_func(out.router_logits, model.text_spec["num_local_experts"],
                                       model.text_spec["num_experts_per_tok"])
    return loss, aux, int(target.sum())


@torch.no_grad()
def greedy_answers(model, enc, items: list[dict], device: str, autocast: bool, max_new: int = 48,
                   batch: int = 16, deadline: float = float("inf")) -> list[str]:
    """Greedy answers by full forwards (no cache), batched with right padding: each step appends the argmax after
    each sequence's own last token. Stops starting new batches after `deadline` (time.time())."""
    answers = []
    for k in range(0, len(items), batch):
        if time.time() > deadline:
            break
        chunk = items[k:k + batch]
        seqs, crops, images = [], [], []
        for it in chunk:
            counts = []
            if it["source"] == "map":
                img = data.demo_map(it["seed"]).image
                u8, geom = vlr.crops_u8(img)
                crops.append(u8)
                images.append(dict(width=img.size[0], height=img.size[1], rows=geom["rows"], cols=geom["cols"]))
                counts.append(vlr.num_tokens(*img.size)["tokens"])
            ids, _ = enc.encode(data.eval_messages(it), counts, add_generation_prompt=True)
            seqs.append(ids)
        with torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                            enabled=autocast):
            feats = None
            if crops:
                pix = vlr.normalise_u8(torch.from_numpy(np.concatenate(crops)).to(device))
                feats = model.image_features(pix, images)
            lens = [len(s) for s in seqs]
            T = max(lens) + max_new
            ids = torch.full((len(seqs), T), enc.eos_id, dtype=torch.long, device=device)
            for i, s in enumerate(seqs):
                ids[i, :len(s)] = torch.tensor(s, device=device)
            base = model.embed(ids[:, :max(lens)], feats)
            emb = torch.cat([base, base.new_zeros(len(seqs), max_new, base.shape[-1])], 1)
            done = [False] * len(seqs)
            new = [[] for _ in seqs]
            for step in range(max_new):
                cur = max(lens)
                h = model.language_model.model(inputs_embeds=emb[:, :cur], use_cache=False).last_hidden_state
                last = h[torch.arange(len(seqs)), torch.tensor(lens, device=device) - 1]
                nxt = model.language_model.lm_head(last).float().argmax(-1).tolist()
                for i, t in enumerate(nxt):
                    if done[i]:
                        continue
                    if t == enc.eos_id:
                        done[i] = True
                        continue
                    new[i].append(t)
                    emb[i, lens[i]] = model.language_model.model.embed_tokens.weight[t].to(emb.dtype)
                    lens[i] += 1
                if all(done):
                    break
        answers += [enc.tok.decode(n, skip_special_tokens=True) for n in new]
    return answers


def accuracy_table(items: list[dict], answers: list[str]) -> dict:
    per = collections.defaultdict(lambda: [0, 0])
    for it, a in zip(items, answers):
        key = f"{it['source']}:{it['kind']}"
        per[key][0] += data.answer_correct(a, it["answer"])
        per[key][1] += 1
    correct = sum(v[0] for v in per.values())
    return dict(overall=[correct, len(items)], per_kind={k: v for k, v in sorted(per.items())})


# ---------------------------------------------------------------------------------------------------------------------
def model_card(config: dict, stats: dict, n_params: int) -> str:
    t, v = config["text_config"], config["vision_config"]
    ev = stats.get("train_device_eval")
    lines = [
        "# volt-demo-vl: a tiny MiniMax-VL-01-architecture model trained on synthetic maps and documents",
        "",
        "**What it is.** A demonstration of Volt's pipeline, not a useful assistant: a model with exactly the",
        "architecture of [MiniMax-VL-01](https://huggingface.co/MiniMaxAI/MiniMax-VL-01) (CLIP ViT at 336x336 crops",
        "with VL-01's any-resolution tiling, the 2-layer MLP projector with `image_newline`, and the MiniMax-Text-01",
        "backbone with lightning and softmax attention layers and top-2 mixture-of-experts), shrunk to",
        f"{n_params / 1e6:.1f} M parameters and trained for "
        f"{sum(st['train_seconds'] for st in stats.get('stages', [stats])) / 60:.1f} minutes on one GPU on procedurally",
        "generated data only. It answers a fixed set of questions about simple synthetic maps (which city is north",
        "of the river, how many bridges, the highway's colour, ...) and about short tables and price lists given as",
        "documents. It knows nothing else. The checkpoint is in the original VL-01 layout, so Volt loads it exactly",
        "as it loads the real model.",
        "",
        "**The real model.** MiniMax-VL-01's weights (about 900 GB) are at",
        "https://huggingface.co/MiniMaxAI/MiniMax-VL-01; download them and run e.g.",
        "`volt run --model /path/to/MiniMax-VL-01 --image map.png --prompt \"...\"` (MiniMax-Text-01 likewise).",
        "",
        "## Using it",
        "",
        "```sh",
        "volt run --model models/volt-demo-vl --image models/volt-demo-vl/samples/map.png --prompt \"Describe the map.\"",
        "volt run --model models/volt-demo-vl --doc models/volt-demo-vl/samples/towns.md \\",
        "         --prompt \"Which town has the largest population?\"",
        "volt-desktop      # opens this model when no other was used before",
        "```",
        "",
        "`samples/map.png` is a held-out map (not seen in training), chosen by `tools/train_demo/evaluate.py` as the",
        "first held-out map whose description the model gets right: most descriptions are wrong somewhere (see the",
        "accuracy below). `samples/towns.md` is a held-out document.",
        "",
        "Questions it was trained on (and paraphrases of them): about a map, " + "; ".join(
            f"\"{forms[0].format(a='Belmont', b='Corvo')}\"" for forms in data.MAP_QUESTIONS.values()) +
        f"; \"{data.LIST_QUESTIONS[0]}\". About a town table or a price list: " + "; ".join(
            f"\"{forms[0].format(x='Belmont' if k in ('population', 'founded') else 'apples')}\""
            for k, forms in data.DOC_QUESTIONS.items()) + ". Anything else (other pictures, other documents, other "
        "questions, general knowledge) gets confident nonsense: it has never seen anything else.",
        "",
        "## Architecture",
        "",
        f"- Vision: CLIP ViT, {v['num_hidden_layers']} layers, hidden {v['hidden_size']}, {v['num_attention_heads']} "
        f"heads, MLP {v['intermediate_size']}, patch 14 at 336x336, exact GELU; features of the last layer without "
        "CLS (576 per crop).",
        f"- Projector: Linear {v['hidden_size']}->{t['hidden_size']} (+bias), GELU, Linear "
        f"{t['hidden_size']}->{t['hidden_size']} (+bias); `image_newline` after each row of the tile feature map.",
        f"- Backbone: {t['num_hidden_layers']} layers with attn_type_list {t['attn_type_list']} (0 lightning, "
        f"1 softmax), hidden {t['hidden_size']}, {t['num_attention_heads']} heads x {t['head_dim']} "
        f"({t['num_key_value_heads']} KV heads in softmax layers, RoPE on {t['rotary_dim']} dims), "
        f"{t['num_local_experts']} experts top-{t['num_experts_per_tok']} with FFN {t['intermediate_size']}, "
        f"post-norm (DeepNorm alpha {t['layernorm_mlp_alpha']:.4f}), vocabulary {t['vocab_size']}.",
        f"- Tokenizer: byte-level BPE ({stats['tokenizer_vocab']} tokens) trained on the generators' text, with "
        "MiniMax's special tokens (`<image>` is "
        f"{config['image_token_index']}, `<end_of_sentence>` {t['eos_token_id']}) and VL-01's chat template.",
        "- Images cost VL-01's token counts: 336x336 -> 1176 tokens, 672x336 -> 1752, 336x672 -> 1776.",
        "",
        "## Training",
        "",
        "`tools/train_demo/train.py` (data: `tools/train_demo/data.py`, `maps.py`, `documents.py`). Every sample is a",
        "function of its seed. Maps (336x336, 672x336, 336x672) have a river, a lake, 3-5 labelled cities, roads with",
        "bridges, one coloured highway, a compass and a scale bar; the answers are computed from the geometry that",
        "drew the map, and maps a reader could not answer from (overlapping labels or bridges) are skipped. Documents",
        "are town tables and price lists, given as Volt gives an attached document. Each training conversation asks",
        "all of a map's or document's questions in random order (VL-01 chat template; image before the text in the",
        "first user message); the loss is on the answers. Commands and logs of the runs: `tools/train_demo/runs/`.",
        "",
    ]
    stages = stats.get("stages", [stats])
    for i, st in enumerate(stages):
        how = "from a random initialisation" if i == 0 else f"continuing from stage {i}'s bf16 weights"
        lines += [
            f"- Stage {i + 1} ({how}): {st['steps']} steps in {st['train_seconds']:.0f} s on {st['device_name']}, "
            f"data batches {st.get('start_batch', 0)}-{st.get('start_batch', 0) + st['steps'] - 1}: "
            f"{st['map_conversations']} map conversations and {st['doc_conversations']} document/chat "
            f"conversations ({st['answer_tokens']} answer tokens, {st['tokens'] / 1e6:.1f} M tokens in all)"
            + ("; with the training-only questions (every city of a map, every row of a document)"
               if st.get("extra_questions") else "") + ".",
            f"  AdamW (peak lr {st['lr']}, betas 0.9/0.95, weight decay 0.05), {st['warmup']} warm-up steps then "
            f"cosine decay to 10% over the stage's time budget, gradient clipping 1.0, bf16 autocast, batch "
            f"{st['batch']} maps or {st['batch'] * st['doc_mult']} documents; MoE load-balancing loss x "
            f"{AUX_LOSS_COEF}. Final {st.get('final_loss_of', 'map-answer')} loss {st['final_loss']:.3f}."]
    lines += [
        f"- Software: torch {torch.__version__}, transformers {stats['transformers']}, Pillow {stats['pillow']}.",
        "",
        "## Held-out accuracy",
        "",
        "<!-- eval:begin -->",
    ]
    if ev:
        c, n = ev["overall"]
        lines += [f"Quick check at the end of training (bf16 on the training GPU, {n} held-out questions): "
                  f"{c}/{n} = {100 * c / n:.1f}% exact answers. `tools/train_demo/evaluate.py` replaces this section "
                  "with the CPU evaluation (PyTorch fp32 and Volt)."]
    lines += ["<!-- eval:end -->", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="Train the bundled demo model (tiny MiniMax-VL-01) on synthetic data.")
    ap.add_argument("--out", required=True, help="model directory to write (config, weights, tokenizer, card)")
    ap.add_argument("--minutes", type=float, default=7.0, help="training time budget (the schedule spans it)")
    ap.add_argument("--steps", type=int, default=0, help="train exactly this many steps instead (smoke tests)")
    ap.add_argument("--batch", type=int, default=32, help="map conversations per step")
    ap.add_argument("--doc-mult", type=int, default=4, help="document batches hold batch x this conversations")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eval-items", type=int, default=200, help="held-out questions for the quick final check")
    ap.add_argument("--init", help="continue from this model directory's weights (same architecture) instead of a "
                    "random initialisation")
    ap.add_argument("--init-summary", help="the --init model's training summary (JSON), kept in the model card")
    ap.add_argument("--start-batch", type=int, default=0,
                    help="first data batch index (a continued run starts after the batches it has seen)")
    ap.add_argument("--extra-questions", action="store_true",
                    help="also ask the training-only questions (every city on a map, every row of a document)")
    ap.add_argument("--eval-seconds", type=float, default=90.0, help="time limit of the quick check")
    ap.add_argument("--seed", type=int, default=0, help="initialisation seed (data is fixed by the batch index)")
    ap.add_argument("--log", help="also append the log to this file")
    ap.add_argument("--summary", help="write the training statistics (JSON) to this file")
    args = ap.parse_args()
    if args.batch < 1 or args.doc_mult < 1 or args.minutes <= 0 or args.steps < 0:
        ap.error("--batch, --doc-mult and --minutes must be positive, --steps non-negative")
    if args.init and not all(os.path.isfile(os.path.join(args.init, f)) for f in ("config.json", "model.safetensors")):
        ap.error(f"--init {args.init}: not a model directory (config.json and model.safetensors needed)")
    if args.init_summary and not os.path.isfile(args.init_summary):
        ap.error(f"--init-summary {args.init_summary}: no such file")

    import multiprocessing as mp

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the workers fork after the parent tokenized

    import PIL
    import transformers

    log_file = open(args.log, "a") if args.log else None

    def log(*a):
        s = " ".join(str(x) for x in a)
        print(s, flush=True)
        if log_file:
            log_file.write(s + "\n")
            log_file.flush()

    if PIL.__version__ != "13.0.0":
        log(f"note: Pillow {PIL.__version__}; the evaluation machine uses 13.0.0 (resampling bytes may differ)")
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    data.build_tokenizer(args.out)
    enc = data.Encoder(args.out)
    vocab = len(enc.tok)
    config = build_config(vocab_size=(vocab + 63) // 64 * 64, image_token=enc.image_id, eos=enc.eos_id)
    log(f"tokenizer: {vocab} tokens ({time.time() - t0:.1f} s); <image>={enc.image_id} eos={enc.eos_id}")

    # The data workers fork before anything touches CUDA (a forked CUDA context is unusable, and unsafe to share).
    ctx = mp.get_context("fork")
    pool = ctx.Pool(args.workers, initializer=_worker_init, initargs=(args.out,))
    pre = Prefetcher(pool, args.batch, args.doc_mult, depth=max(4, 2 * args.workers), start=args.start_batch,
                     extra=args.extra_questions)

    torch.manual_seed(args.seed)
    device = args.device
    autocast = device.startswith("cuda")
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = vlr.VL01(config, attn_implementation="sdpa")
    previous = []
    if args.init:
        from safetensors.torch import load_file

        with open(os.path.join(args.init, "config.json")) as f:
            if json.load(f) != json.loads(json.dumps(config)):
                sys.exit(f"--init {args.init}: its config.json differs from the model this script builds")
        model.load_original(load_file(os.path.join(args.init, "model.safetensors")))
        if args.init_summary:
            with open(args.init_summary) as f:
                prev = json.load(f)
            previous = prev.get("stages", [prev])
        log(f"initialised from {args.init} ({len(previous)} earlier stage(s) recorded)")
    model = model.to(device)
    model.train()
    n_params = sum(p.numel() for n, p in model.named_parameters() if "post_layernorm" not in n)
    log(f"model: {n_params / 1e6:.2f} M parameters (checkpoint {2 * n_params / 1e6:.1f} MB in bf16)")

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n or "embedding" in n or n == "image_newline" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), fused=device.startswith("cuda"))

    budget = args.minutes * 60.0
    stats = collections.Counter()
    step, wait, losses = 0, 0.0, collections.deque(maxlen=50)
    kind_loss, kind_n = {}, collections.Counter()  # mean loss per batch kind since the last log line
    t_start = time.time()
    log(f"training: {'%d steps' % args.steps if args.steps else '%.1f minutes' % args.minutes}, batch {args.batch} "
        f"maps / {args.batch * args.doc_mult} documents, {args.workers} data workers, device {device}")
    while True:
        elapsed = time.time() - t_start
        frac = step / args.steps if args.steps else elapsed / budget
        if frac >= 1.0:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        tw = time.time()
        batch = pre.get()
        wait += time.time() - tw
        loss, aux, n_tgt = forward_loss(model, batch, device, autocast)
        opt.zero_grad(set_to_none=True)
        (loss + AUX_LOSS_COEF * aux).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        stats[f"{batch['kind']}_conversations"] += batch["n"]
        kind_loss[batch["kind"]] = kind_loss.get(batch["kind"], 0.0) + loss.detach()
        kind_n[batch["kind"]] += 1
        stats["tokens"] += batch["tokens"]
        stats["answer_tokens"] += n_tgt
        if step % 25 == 0 or step <= 5 or (args.steps and step == args.steps):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            means = {k: float(v) / kind_n[k] for k, v in kind_loss.items()}
            losses.append(means.get("map", float(loss.detach())))
            el = time.time() - t_start
            log(f"step {step:5d} {el:6.1f}s loss map {means.get('map', float('nan')):.4f} doc "
                f"{means.get('doc', float('nan')):.4f} aux {float(aux.detach()):.3f} lr {lr:.2e} "
                f"{stats['tokens'] / el / 1e3:.0f}k tok/s data-wait {wait:.1f}s")
            kind_loss, kind_n = {}, collections.Counter()
    train_seconds = time.time() - t_start
    pool.terminate()
    final_loss = float(np.mean(list(losses)[-4:])) if losses else float("nan")
    log(f"trained {step} steps in {train_seconds:.1f} s")

    model.eval()
    stats_out = dict(steps=step, train_seconds=train_seconds, minutes=train_seconds / 60, lr=args.lr,
                     warmup=args.warmup, batch=args.batch, doc_mult=args.doc_mult, final_loss=final_loss,
                     tokens=stats["tokens"], answer_tokens=stats["answer_tokens"],
                     map_conversations=stats["map_conversations"], doc_conversations=stats["doc_conversations"],
                     tokenizer_vocab=vocab, transformers=transformers.__version__, pillow=PIL.__version__,
                     device_name=torch.cuda.get_device_name() if device.startswith("cuda") else "CPU",
                     n_params=n_params, init=args.init, start_batch=args.start_batch, batches=step,
                     extra_questions=args.extra_questions)
    stats_out["stages"] = previous + [{k: v for k, v in stats_out.items() if k != "train_device_eval"}]
    # Export first, so that a slow check cannot cost the model; the card is rewritten with the check's numbers.
    model.float()
    model.save_original(args.out)
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(model_card(config, stats_out, n_params))
    if args.eval_items:
        te = time.time()
        items = data.eval_items()[:: max(1, 200 // args.eval_items)][:args.eval_items]
        answers = greedy_answers(model, enc, items, device, autocast, deadline=te + args.eval_seconds)
        items = items[:len(answers)]
        acc = accuracy_table(items, answers)
        stats_out["train_device_eval"] = acc
        stats_out["stages"][-1]["train_device_eval"] = acc
        c, n = acc["overall"]
        log(f"held-out quick check ({time.time() - te:.0f} s): {c}/{n} = {100 * c / max(n, 1):.1f}%")
        for k, (ck, nk) in acc["per_kind"].items():
            log(f"  {k:22s} {ck:3d}/{nk:3d}")
        shown = set()
        for it, a in zip(items, answers):  # one example per question type
            if it["kind"] not in shown:
                shown.add(it["kind"])
                log(f"  {it['id']}: {it['question']!r} -> {a!r} (expected {it['answer']!r})")
    with open(os.path.join(args.out, "README.md"), "w") as f:
        f.write(model_card(config, stats_out, n_params))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(stats_out, f, indent=1)
    size = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    log(f"exported {args.out}: {size / 1e6:.2f} MB; total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
