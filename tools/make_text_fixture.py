#!/usr/bin/env python3
"""Tiny MiniMax-Text-01 checkpoints and reference logits for the backbone tests (tests/data/tiny-text*/).

Each fixture is a model directory in the ORIGINAL MiniMax-Text-01 layout (what `volt --model DIR` takes):
  config.json                 model_type "minimax_text_01", original field names (attn_type_list,
                              layernorm_{full_attention,linear_attention,mlp}_{alpha,beta}, postnorm, rotary_dim, ...)
  model.safetensors           bf16 weights, original tensor names (self_attn.qkv_proj with per-head interleaved
  (or an index + shards)      [q_h|k_h|v_h] rows, block_sparse_moe.gate, block_sparse_moe.experts.E.w1/w2/w3)
  reference/manifest.json     the cases below, with tolerances and the margins that make argmax checks meaningful
  reference/ids_<n>.json      prompt of n token ids (JSON array of ints, the `volt logits --ids-file` format)
  reference/logits_<n>.npy    float32 [n, vocab]: full forward in fp32 from the bf16-rounded weights
  reference/greedy_<n>.json   (some fixtures) the ids a greedy `volt generate` appends to ids_<n>.json; computed as
                              the argmax chain of FULL forwards (not transformers' cache path, see design.md)

Reference: transformers' native `MiniMaxForCausalLM` (fp32, eager attention, eager experts, no cache => its chunked
lightning prefill with block 256), patched where it differs from MiniMax's own code (minimax01-architecture.md):
  1. RoPE. Native `minimax` builds inv_freq over the full head_dim and rotates every dim. Patched: inv_freq over
     `rotary_dim` (theta^(-2i/rotary_dim)), and `apply_rotary_pos_emb` rotates only the first `rotary_dim` dims
     with half-split pairing (i, i + rotary_dim/2) inside them; the remaining dims pass through.
  2. Decay slope. Native uses factor 1 - l/(L-1+1e-5) + 1e-5; MiniMax (and design.md) use 1 - l/(L-1) + 1e-5,
     slope = 2^(-8(h+1)/H) * factor. Patched `get_slope_rate` to the MiniMax rule (H is a power of two in every
     fixture, where native's base**(h+1) rule equals the original ALiBi slopes).
  3. Decoder layer. Native hard-codes the post-norm residual; patched to the remote code's form, which takes the
     residual from the raw stream when config postnorm is false (used by the tiny-text-prenorm-tied fixture only;
     Text-01 is post-norm). For postnorm true the patched forward is the native one.
  Already as MiniMax: no 1/sqrt(d) scaling and no normaliser in lightning attention, SiLU on q, k and v, lightning
  RMSNorm over all heads jointly with eps 1e-6 (MiniMaxRMSNorm's default; decoder norms use rms_norm_eps), sigmoid
  output gate from the normalised layer input, postnorm DeepNorm residuals, fp32 router softmax + top-k + renormalise.

Verification (the script fails if any check fails): the patched transformers logits are compared with an independent
float64 implementation written from minimax01-architecture.md §1-§4 that reads the checkpoint back FROM THE WRITTEN
FILES (so tensor naming, the qkv interleave, the w1/w3 order and sharding are checked too) and runs lightning
attention as the pure token-by-token recurrence S_t = lambda*S_{t-1} + k_t^T v_t, o_t = q_t S_t. Prompts of 255, 256,
257 and >= 600 tokens cross the 256-token block boundary, so this also checks the chunked prefill. The script also
records, per prompt, the smallest top-1/top-2 logit gap and the smallest router gap between the k-th and (k+1)-th
expert logit, and rejects prompts whose gaps are so small that fp32 rounding could flip an argmax or an expert
choice (then the argmax / logits comparisons in the C++ tests would be ill-posed).

Run from the repository root (CPU is enough; about a minute):  python3 tools/make_text_fixture.py [--out tests/data]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import transformers
import transformers.models.minimax.modeling_minimax as mm
from transformers import MiniMaxConfig, MiniMaxForCausalLM

# ---------------------------------------------------------------------------------------------------------------------
# Fixture definitions. Softmax layers sit at different places (middle/last, first, last only) and alpha/beta differ per
# layer kind in one fixture so that mixing them up shows. Heads are powers of two (see the docstring).
FIXTURES = [
    dict(
        name="tiny-text",
        vocab_size=512, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
        head_dim=16, rotary_dim=8, intermediate_size=96, num_local_experts=4, num_experts_per_tok=2,
        attn_type_list=[0, 1, 0, 1], rope_theta=10000.0,
        alphas=dict(full=3.5565588200778455, linear=3.5565588200778455, mlp=3.5565588200778455),
        betas=dict(full=1.0, linear=1.0, mlp=1.0),
        prompts=[1, 255, 256, 257, 600], greedy=dict(prompts=[1, 257], new_tokens=12),
        shards=1, seed=1234,
    ),
    dict(
        name="tiny-text-sharded",
        vocab_size=384, hidden_size=64, num_hidden_layers=5, num_attention_heads=8, num_key_value_heads=1,
        head_dim=8, rotary_dim=4, intermediate_size=80, num_local_experts=3, num_experts_per_tok=2,
        attn_type_list=[1, 0, 0, 1, 0], rope_theta=10000000.0,
        alphas=dict(full=2.25, linear=3.5565588200778455, mlp=1.75),
        betas=dict(full=0.75, linear=1.0, mlp=1.25),
        prompts=[1, 257, 640], greedy=None,
        shards=3, seed=4321,
    ),
    dict(
        name="tiny-text-top1",
        vocab_size=320, hidden_size=48, num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=2,
        head_dim=32, rotary_dim=16, intermediate_size=64, num_local_experts=2, num_experts_per_tok=1,
        attn_type_list=[0, 0, 0, 1], rope_theta=500000.0,
        alphas=dict(full=3.5565588200778455, linear=3.5565588200778455, mlp=3.5565588200778455),
        betas=dict(full=1.0, linear=1.0, mlp=1.0),
        prompts=[2, 300], greedy=dict(prompts=[2], new_tokens=10),
        shards=1, seed=99,
    ),
    # Paths Text-01 itself does not take but the config format allows: pre-norm residuals (postnorm false: the
    # residual is the raw stream, as in the remote code's `if self.postnorm` branches), tied embeddings (no
    # lm_head tensor), and top-k equal to the number of experts.
    dict(
        name="tiny-text-prenorm-tied",
        vocab_size=256, hidden_size=32, num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, rotary_dim=8, intermediate_size=48, num_local_experts=2, num_experts_per_tok=2,
        attn_type_list=[0, 1, 0, 0], rope_theta=10000.0,
        alphas=dict(full=1.0, linear=1.0, mlp=1.0), betas=dict(full=1.0, linear=1.0, mlp=1.0),
        postnorm=False, tie_word_embeddings=True,
        prompts=[1, 300], greedy=None,
        shards=1, seed=2024,
    ),
]

RMS_NORM_EPS = 1e-5
LIGHTNING_NORM_EPS = 1e-6
LOGIT_GAP_MIN = 2e-4     # smallest allowed top-1/top-2 logit gap at any reference position
ROUTER_GAP_MIN = 1e-4    # smallest allowed gap between the k-th and (k+1)-th router logit (top-k is decided on
                         # the logits' order; probabilities of 1e-6 can sit close together without being a near-tie)
SELF_CHECK_RTOL = 2e-5   # patched transformers (fp32) vs the float64 spec implementation, relative Frobenius


# ---------------------------------------------------------------------------------------------------------------------
# Patches to transformers' native MiniMax (see the docstring).

def _partial_rotary_inv_freq(config, device=None, **kwargs):
    rd = config.rotary_dim
    base = config.rope_parameters["rope_theta"]
    inv_freq = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.int64).to(torch.float) / rd))
    return inv_freq.to(device), 1.0


def _partial_apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    rd = cos.shape[-1]  # the patched inv_freq makes cos/sin exactly rotary_dim wide
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)

    def rot(x):
        xr, xp = x[..., :rd], x[..., rd:]
        return torch.cat([xr * cos + mm.rotate_half(xr) * sin, xp], dim=-1)

    return rot(q), rot(k)


def _minimax_slope_rate(self):
    H, L, l = self.num_attention_heads, self.num_hidden_layers, self.layer_idx
    base = torch.tensor([2.0 ** (-8.0 * (h + 1) / H) for h in range(H)], dtype=torch.float64)
    factor = 1.0 - (l / (L - 1) if L > 1 else 0.0) + 1e-5
    return (base * factor).to(torch.float32)[:, None, None]


def _decoder_layer_forward(self, hidden_states, position_embeddings=None, attention_mask=None, position_ids=None,
                           past_key_values=None, use_cache=False, **kwargs):
    """MiniMax's decoder layer with both residual modes (remote code): postnorm takes the residual from the normalised
    tensor, pre-norm from the raw stream. Native transformers hard-codes the postnorm form."""
    residual = hidden_states
    hidden_states = self.input_layernorm(hidden_states)
    if self.postnorm:
        residual = hidden_states
    hidden_states, _ = self.self_attn(hidden_states=hidden_states, position_embeddings=position_embeddings,
                                      attention_mask=attention_mask, position_ids=position_ids,
                                      past_key_values=past_key_values, use_cache=use_cache, **kwargs)
    hidden_states = residual * self.attn_alpha_factor + hidden_states * self.attn_beta_factor
    residual = hidden_states
    hidden_states = self.post_attention_layernorm(hidden_states)
    if self.postnorm:
        residual = hidden_states
    hidden_states = self.mlp(hidden_states)
    return residual * self.mlp_alpha_factor + hidden_states * self.mlp_beta_factor


def patch_transformers():
    mm.MiniMaxDecoderLayer.forward = _decoder_layer_forward
    mm.MiniMaxRotaryEmbedding.compute_default_rope_parameters = staticmethod(_partial_rotary_inv_freq)
    mm.apply_rotary_pos_emb = _partial_apply_rotary_pos_emb
    mm.MiniMaxLightningAttention.get_slope_rate = _minimax_slope_rate


# ---------------------------------------------------------------------------------------------------------------------
# Original-layout config and weights.

def original_config(f):
    return {
        "architectures": ["MiniMaxText01ForCausalLM"],
        "model_type": "minimax_text_01",
        "vocab_size": f["vocab_size"],
        "hidden_size": f["hidden_size"],
        "num_hidden_layers": f["num_hidden_layers"],
        "num_attention_heads": f["num_attention_heads"],
        "num_key_value_heads": f["num_key_value_heads"],
        "head_dim": f["head_dim"],
        "rotary_dim": f["rotary_dim"],
        "rope_theta": f["rope_theta"],
        "intermediate_size": f["intermediate_size"],
        "num_local_experts": f["num_local_experts"],
        "num_experts_per_tok": f["num_experts_per_tok"],
        "shared_intermediate_size": 0,
        "shared_moe_mode": "sigmoid",
        "attn_type_list": f["attn_type_list"],
        "layernorm_full_attention_alpha": f["alphas"]["full"],
        "layernorm_full_attention_beta": f["betas"]["full"],
        "layernorm_linear_attention_alpha": f["alphas"]["linear"],
        "layernorm_linear_attention_beta": f["betas"]["linear"],
        "layernorm_mlp_alpha": f["alphas"]["mlp"],
        "layernorm_mlp_beta": f["betas"]["mlp"],
        "postnorm": f.get("postnorm", True),
        "rms_norm_eps": RMS_NORM_EPS,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "block_size": 256,
        "tie_word_embeddings": f.get("tie_word_embeddings", False),
        "bos_token_id": None,
        "eos_token_id": None,
        "torch_dtype": "bfloat16",
    }


def make_weights(f):
    """Random weights in original names, rounded to bf16. Scales keep every layer's activations O(1) and give the
    logits and router a spread (so argmax and expert choices are well separated)."""
    g = torch.Generator().manual_seed(f["seed"])
    H, V, I, E = f["hidden_size"], f["vocab_size"], f["intermediate_size"], f["num_local_experts"]
    q_dim, kv_dim = f["num_attention_heads"] * f["head_dim"], f["num_key_value_heads"] * f["head_dim"]

    def lin(out_f, in_f, gain=1.0):
        return torch.randn(out_f, in_f, generator=g) * (gain / math.sqrt(in_f))

    def norm(n):
        return 1.0 + 0.2 * torch.randn(n, generator=g)

    w = {"model.embed_tokens.weight": torch.randn(V, H, generator=g)}
    for l, kind in enumerate(f["attn_type_list"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = norm(H)
        w[p + "post_attention_layernorm.weight"] = norm(H)
        if kind == 0:
            w[p + "self_attn.qkv_proj.weight"] = lin(3 * q_dim, H)
            w[p + "self_attn.output_gate.weight"] = lin(q_dim, H, 2.0)
            w[p + "self_attn.norm.weight"] = norm(q_dim)
            w[p + "self_attn.out_proj.weight"] = lin(H, q_dim)
        else:
            w[p + "self_attn.q_proj.weight"] = lin(q_dim, H, 2.0)
            w[p + "self_attn.k_proj.weight"] = lin(kv_dim, H, 2.0)
            w[p + "self_attn.v_proj.weight"] = lin(kv_dim, H)
            w[p + "self_attn.o_proj.weight"] = lin(H, q_dim)
        w[p + "block_sparse_moe.gate.weight"] = lin(E, H, 3.0)
        for e in range(E):
            x = p + f"block_sparse_moe.experts.{e}."
            w[x + "w1.weight"] = lin(I, H)
            w[x + "w3.weight"] = lin(I, H)
            w[x + "w2.weight"] = lin(H, I)
    w["model.norm.weight"] = norm(H)
    if not f.get("tie_word_embeddings", False):
        w["lm_head.weight"] = lin(V, H, 2.5)
    return {k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}


def write_checkpoint(out_dir, weights, shards):
    names = list(weights)
    if shards == 1:
        save_file(weights, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    # Contiguous runs of tensors per shard, zero-based names like the -hf repository's.
    per = math.ceil(len(names) / shards)
    weight_map, total = {}, 0
    for s in range(shards):
        part = names[s * per:(s + 1) * per]
        fname = f"model-{s:05d}-of-{shards:05d}.safetensors"
        save_file({n: weights[n] for n in part}, os.path.join(out_dir, fname), metadata={"format": "pt"})
        for n in part:
            weight_map[n] = fname
            total += weights[n].numel() * weights[n].element_size()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh, indent=2)
        fh.write("\n")


def read_checkpoint(out_dir):
    idx = os.path.join(out_dir, "model.safetensors.index.json")
    files = (sorted(set(json.load(open(idx))["weight_map"].values())) if os.path.exists(idx) else ["model.safetensors"])
    w = {}
    for fn in files:
        w.update(load_file(os.path.join(out_dir, fn)))
    return w


# ---------------------------------------------------------------------------------------------------------------------
# The reference: patched native transformers model, loaded from the original-layout weights.

def native_config(f):
    """transformers' MiniMaxConfig for fixture/spec dict `f` (the patched RoPE reads `rotary_dim` from it)."""
    layer_types = ["full_attention" if k == 1 else "linear_attention" for k in f["attn_type_list"]]
    cfg = MiniMaxConfig(
        vocab_size=f["vocab_size"], hidden_size=f["hidden_size"], num_hidden_layers=f["num_hidden_layers"],
        num_attention_heads=f["num_attention_heads"], num_key_value_heads=f["num_key_value_heads"],
        head_dim=f["head_dim"], intermediate_size=f["intermediate_size"], num_local_experts=f["num_local_experts"],
        num_experts_per_tok=f["num_experts_per_tok"], layer_types=layer_types, block_size=256,
        rope_parameters={"rope_type": "default", "rope_theta": f["rope_theta"]}, rms_norm_eps=RMS_NORM_EPS,
        max_position_embeddings=f.get("max_position_embeddings", 4096),
        tie_word_embeddings=f.get("tie_word_embeddings", False), bos_token_id=None, eos_token_id=None,
        full_attn_alpha_factor=f["alphas"]["full"], full_attn_beta_factor=f["betas"]["full"],
        linear_attn_alpha_factor=f["alphas"]["linear"], linear_attn_beta_factor=f["betas"]["linear"],
        mlp_alpha_factor=f["alphas"]["mlp"], mlp_beta_factor=f["betas"]["mlp"],
    )
    cfg.rotary_dim = f["rotary_dim"]  # read by the patched inv_freq
    cfg._attn_implementation = "eager"
    try:
        cfg._experts_implementation = "eager"
    except Exception:  # older/newer configs without the switch: eager is the default then
        pass
    return cfg


def native_state_dict(f, weights):
    """Original names -> native names. qkv_proj: native reshapes the 3*H*D outputs as (H, 3*D) and splits each head
    into q|k|v, i.e. the same per-head interleave as the original, so rows are copied unchanged. Experts: native
    stacks gate_up_proj[e] = [w1; w3] (gate first, chunk(2) order) and down_proj[e] = w2."""
    sd = {}
    E = f["num_local_experts"]
    for name, t in weights.items():
        t = t.to(torch.float32)
        if ".block_sparse_moe.experts." in name:
            continue
        sd[name.replace(".block_sparse_moe.gate.", ".mlp.gate.")] = t
    for l in range(f["num_hidden_layers"]):
        p = f"model.layers.{l}.block_sparse_moe.experts."
        sd[f"model.layers.{l}.mlp.experts.gate_up_proj"] = torch.stack(
            [torch.cat([weights[f"{p}{e}.w1.weight"], weights[f"{p}{e}.w3.weight"]], 0).float() for e in range(E)])
        sd[f"model.layers.{l}.mlp.experts.down_proj"] = torch.stack(
            [weights[f"{p}{e}.w2.weight"].float() for e in range(E)])
    return sd


def original_state_dict(f, native):
    """The inverse of native_state_dict: a native MiniMaxForCausalLM state dict -> original-layout tensors (decay
    buffers dropped: checkpoints never store them)."""
    out = {}
    I = f["intermediate_size"]
    for name, t in native.items():
        if name.endswith(("slope_rate", "query_decay", "key_decay", "diagonal_decay", "rotary_emb.inv_freq",
                          "rotary_emb.original_inv_freq")):
            continue
        if ".mlp.experts.gate_up_proj" in name:
            p = name.replace(".mlp.experts.gate_up_proj", ".block_sparse_moe.experts.")
            for e in range(t.shape[0]):
                out[f"{p}{e}.w1.weight"] = t[e, :I]
                out[f"{p}{e}.w3.weight"] = t[e, I:]
        elif ".mlp.experts.down_proj" in name:
            p = name.replace(".mlp.experts.down_proj", ".block_sparse_moe.experts.")
            for e in range(t.shape[0]):
                out[f"{p}{e}.w2.weight"] = t[e]
        elif f.get("tie_word_embeddings", False) and name == "lm_head.weight":
            continue
        else:
            out[name.replace(".mlp.gate.", ".block_sparse_moe.gate.")] = t
    return out


def native_model(f, weights):
    model = MiniMaxForCausalLM(native_config(f)).to(torch.float32).eval()
    for layer in model.model.layers:
        layer.postnorm = f.get("postnorm", True)  # read by the patched decoder layer forward
    sd = native_state_dict(f, weights)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # Decay buffers are recomputed (not stored in checkpoints); nothing else may be missing.
    missing = [m for m in missing if not m.endswith(("slope_rate", "query_decay", "key_decay", "diagonal_decay"))]
    if f.get("tie_word_embeddings", False):
        missing = [m for m in missing if m != "lm_head.weight"]
        if model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
            sys.exit("tie_word_embeddings: lm_head does not share the embedding")
    if missing or unexpected:
        sys.exit(f"native load: missing {missing} unexpected {unexpected}")
    # The decay buffers must come from the patched slope rule.
    for layer in model.model.layers:
        if isinstance(layer.self_attn, mm.MiniMaxLightningAttention):
            want = _minimax_slope_rate(layer.self_attn)
            if not torch.equal(layer.self_attn.slope_rate, want):
                sys.exit("slope_rate buffer does not follow the patched MiniMax rule")
    if model.model.rotary_emb.inv_freq.numel() != f["rotary_dim"] // 2:
        sys.exit("inv_freq patch did not take: expected rotary_dim/2 frequencies")
    return model


class RouterGap:
    """Smallest gap between the k-th and (k+1)-th router logit over every token and layer of a forward."""

    def __init__(self, model, k):
        self.k, self.gap = k, float("inf")
        self.handles = [layer.mlp.gate.register_forward_hook(self.hook) for layer in model.model.layers]

    def hook(self, module, inputs, outputs):
        router_logits = outputs[0].float()
        if router_logits.shape[-1] > self.k:
            top = torch.topk(router_logits, self.k + 1, dim=-1).values
            self.gap = min(self.gap, float((top[:, self.k - 1] - top[:, self.k]).min()))

    def close(self):
        for h in self.handles:
            h.remove()


@torch.no_grad()
def native_logits(model, ids):
    return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].float()


# ---------------------------------------------------------------------------------------------------------------------
# Independent float64 implementation from minimax01-architecture.md (lightning attention as the pure recurrence).

def spec_logits(f, W, ids):
    W = {k: v.to(torch.float64) for k, v in W.items()}
    Hn, D, KV = f["num_attention_heads"], f["head_dim"], f["num_key_value_heads"]
    L, rd, k_top = f["num_hidden_layers"], f["rotary_dim"], f["num_experts_per_tok"]
    T = len(ids)

    def rms(x, w, eps):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    silu = torch.nn.functional.silu
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    postnorm = f.get("postnorm", True)
    for l, kind in enumerate(f["attn_type_list"]):
        p = f"model.layers.{l}."
        xn = rms(x, W[p + "input_layernorm.weight"], RMS_NORM_EPS)
        if kind == 0:
            qkv = silu(xn @ W[p + "self_attn.qkv_proj.weight"].T).view(T, Hn, 3 * D)
            q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
            factor = 1 - l / (L - 1) + 1e-5
            lam = torch.tensor([math.exp(-(2.0 ** (-8.0 * (h + 1) / Hn)) * factor) for h in range(Hn)],
                               dtype=torch.float64)
            S = torch.zeros(Hn, D, D, dtype=torch.float64)
            o = torch.empty(T, Hn, D, dtype=torch.float64)
            for t in range(T):
                S = lam[:, None, None] * S + k[t][:, :, None] * v[t][:, None, :]
                o[t] = torch.einsum("hd,hde->he", q[t], S)
            y = rms(o.reshape(T, Hn * D), W[p + "self_attn.norm.weight"], LIGHTNING_NORM_EPS)
            z = torch.sigmoid(xn @ W[p + "self_attn.output_gate.weight"].T) * y
            a = z @ W[p + "self_attn.out_proj.weight"].T
            alpha, beta = f["alphas"]["linear"], f["betas"]["linear"]
        else:
            q = (xn @ W[p + "self_attn.q_proj.weight"].T).view(T, Hn, D)
            k = (xn @ W[p + "self_attn.k_proj.weight"].T).view(T, KV, D)
            v = (xn @ W[p + "self_attn.v_proj.weight"].T).view(T, KV, D)
            half = rd // 2
            inv = f["rope_theta"] ** (-torch.arange(half, dtype=torch.float64) * 2 / rd)
            ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]  # [T, rd/2]
            c, s = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

            def rope(u):
                u = u.clone()
                a1, a2 = u[..., :half].clone(), u[..., half:rd].clone()
                u[..., :half] = a1 * c - a2 * s
                u[..., half:rd] = a2 * c + a1 * s
                return u

            q, k = rope(q), rope(k)
            g = Hn // KV
            kk, vv = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)  # head j uses kv head j // g
            sc = torch.einsum("thd,shd->hts", q, kk) / math.sqrt(D)
            sc = sc.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            o = torch.einsum("hts,shd->thd", torch.softmax(sc, -1), vv).reshape(T, Hn * D)
            a = o @ W[p + "self_attn.o_proj.weight"].T
            alpha, beta = f["alphas"]["full"], f["betas"]["full"]
        h1 = (xn if postnorm else x) * alpha + a * beta
        yn = rms(h1, W[p + "post_attention_layernorm.weight"], RMS_NORM_EPS)
        probs = torch.softmax(yn @ W[p + "block_sparse_moe.gate.weight"].T, -1)
        top_v, top_i = torch.topk(probs, k_top, -1)
        top_v = top_v / top_v.sum(-1, keepdim=True)
        m = torch.zeros_like(yn)
        for t in range(T):
            for j in range(k_top):
                e = int(top_i[t, j])
                px = p + f"block_sparse_moe.experts.{e}."
                hidden = silu(W[px + "w1.weight"] @ yn[t]) * (W[px + "w3.weight"] @ yn[t])
                m[t] += top_v[t, j] * (W[px + "w2.weight"] @ hidden)
        x = (yn if postnorm else h1) * f["alphas"]["mlp"] + m * f["betas"]["mlp"]
    x = rms(x, W["model.norm.weight"], RMS_NORM_EPS)
    head = W["model.embed_tokens.weight"] if f.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


def rel_fro(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def logit_gap(logits):
    top = torch.topk(logits, 2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min())


# ---------------------------------------------------------------------------------------------------------------------

def make_fixture(f, out_root):
    out_dir = os.path.join(out_root, f["name"])
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(os.path.join(out_dir, "reference"))
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(original_config(f), fh, indent=2)
        fh.write("\n")
    write_checkpoint(out_dir, make_weights(f), f["shards"])

    weights = read_checkpoint(out_dir)  # everything below uses the files as written
    model = native_model(f, weights)
    gen = torch.Generator().manual_seed(f["seed"] + 7)
    manifest = {
        "model": f["name"],
        "reference": f"transformers {transformers.__version__} MiniMaxForCausalLM (patched: partial RoPE, MiniMax "
                     f"decay slopes), fp32 from the bf16 weights, full forward without cache; torch {torch.__version__}",
        "tolerance": {"logits_rel_fro": 1e-4},
        "cases": [],
        "greedy": [],
    }
    for n in f["prompts"]:
        # Draw prompts until argmax and expert choices are well separated (see the docstring); deterministic.
        for attempt in range(50):
            ids = torch.randint(0, f["vocab_size"], (n,), generator=gen).tolist()
            rg = RouterGap(model, f["num_experts_per_tok"])
            logits = native_logits(model, ids)
            rg.close()
            gap = logit_gap(logits)
            if gap >= LOGIT_GAP_MIN and rg.gap >= ROUTER_GAP_MIN:
                break
        else:
            sys.exit(f"{f['name']}: no prompt of {n} tokens with separated argmax/router after 50 draws")
        spec = spec_logits(f, weights, ids)
        err = rel_fro(logits, spec)
        argmax_ok = bool(torch.equal(logits.argmax(-1), spec.argmax(-1)))
        print(f"{f['name']:18s} n={n:4d} rel_fro(native fp32, spec fp64)={err:.2e} argmax_equal={argmax_ok} "
              f"min_logit_gap={gap:.2e} min_router_gap={rg.gap:.2e} draws={attempt + 1}")
        if err > SELF_CHECK_RTOL or not argmax_ok:
            sys.exit(f"{f['name']} n={n}: patched transformers disagrees with the MiniMax spec implementation")
        with open(os.path.join(out_dir, "reference", f"ids_{n}.json"), "w") as fh:
            json.dump(ids, fh)
            fh.write("\n")
        np.save(os.path.join(out_dir, "reference", f"logits_{n}.npy"), logits.numpy().astype("<f4"))
        manifest["cases"].append({"n_tokens": n, "ids": f"ids_{n}.json", "logits": f"logits_{n}.npy",
                                  # null when every expert is chosen (top-k == E: no choice to get wrong)
                                  "min_top2_logit_gap": gap,
                                  "min_router_gap": rg.gap if math.isfinite(rg.gap) else None,
                                  "rel_fro_vs_fp64_spec": err})

    if f["greedy"]:
        for n in f["greedy"]["prompts"]:
            ids = json.load(open(os.path.join(out_dir, "reference", f"ids_{n}.json")))
            seq, new, min_gap = list(ids), [], float("inf")
            for _ in range(f["greedy"]["new_tokens"]):
                last = native_logits(model, seq)[-1:]
                min_gap = min(min_gap, logit_gap(last))
                nxt = int(last.argmax())
                new.append(nxt)
                seq.append(nxt)
            if min_gap < LOGIT_GAP_MIN:
                sys.exit(f"{f['name']}: greedy chain from ids_{n} has a near-tie ({min_gap:.2e})")
            with open(os.path.join(out_dir, "reference", f"greedy_{n}.json"), "w") as fh:
                json.dump(new, fh)
                fh.write("\n")
            manifest["greedy"].append({"prompt": f"ids_{n}.json", "max_new_tokens": len(new),
                                       "new_ids": f"greedy_{n}.json", "min_top2_logit_gap": min_gap})
            print(f"{f['name']:18s} greedy from n={n}: {new}")

    with open(os.path.join(out_dir, "reference", "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out_dir) for fn in fns)
    print(f"{f['name']}: {size / 1e6:.2f} MB")
    if size >= 5e6:
        sys.exit(f"{f['name']} is {size / 1e6:.2f} MB; fixtures must stay under 5 MB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    ap.add_argument("--only", action="append", help="fixture name(s) to (re)make; default all")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    patch_transformers()
    for f in FIXTURES:
        if args.only and f["name"] not in args.only:
            continue
        make_fixture(f, os.path.abspath(args.out))


if __name__ == "__main__":
    main()
