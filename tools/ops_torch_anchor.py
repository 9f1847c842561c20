#!/usr/bin/env python3
"""Speed anchors for the issue-7 ops benchmark (bench/ops_bench.cu), run on the GPU machine by
scripts/device-test.sh in the same run: torch matmul (cuBLAS) at the same GEMM shapes, torch SDPA (causal GQA
prefill, q=1 decode over a KV cache), torch eager MoE (the Hugging Face loop over experts), and the measured
ceilings (device-to-device copy, 8192^3 bf16 GEMM). Random inputs, never zeros; medians of triton's do_bench.
Prints one JSON object per line, like the C++ benchmark.
"""
import argparse
import inspect
import itertools
import math
import sys

import torch
import torch.nn.functional as F
import triton.testing

from lightning_fla_anchor import emit  # same JSON-lines writer (tools/ is the script's directory)

D = 128


def bench(fn, rep=200, warmup=25):
    return triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")


def gemm_anchors(fh, quick):
    shapes = [("square_8192", 8192, 8192, 8192), ("qkv_prefill", 4096, 24576, 6144), ("out_prefill", 4096, 6144, 8192),
              ("vit_fc1_bias_gelu", 4616, 4096, 1024), ("qkv_decode", 1, 24576, 6144),
              ("out_decode_b8", 8, 6144, 8192), ("lm_head_decode", 1, 200064, 6144)]
    if quick:
        shapes = shapes[:2] + shapes[4:]
    for name, m, n, k in shapes:
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / math.sqrt(k)
        if name.endswith("bias_gelu"):
            b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
            fn = lambda: F.gelu(F.linear(a, w, b))  # noqa: E731 - erf GELU, as Volt's epilogue
            # The parts, as bench/ops_bench.cu takes Volt's apart: linear with bias alone, GELU alone, plain linear.
            y = F.linear(a, w, b)
            for variant, part in (("bias", lambda: F.linear(a, w, b)), ("gelu_only", lambda: F.gelu(y)),
                                  ("plain", lambda: F.linear(a, w))):
                emit({"op": "torch_gemm_part", "name": "vit_fc1", "variant": variant, "ms": bench(part)}, fh)
            del y
        else:
            fn = lambda: F.linear(a, w)  # noqa: E731
        ms = bench(fn)
        emit({"op": "torch_gemm_shape", "name": name, "m": m, "n": n, "k": k, "ms": ms,
              "tflops": 2 * m * n * k / ms / 1e9, "tbps": 2 * (m * k + n * k + m * n) / ms / 1e9}, fh)
        del a, w
    torch.cuda.empty_cache()


def moe_anchor(fh, quick):
    """Hugging Face-style eager MoE (MiniMax block_sparse_moe): router softmax/top-2/renormalise, then a loop over
    experts with index_select / SwiGLU / index_add_."""
    E, H, I, k = 32, 6144, 9216, 2
    w1 = [torch.randn(I, H, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(E)]
    w3 = [torch.randn(I, H, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(E)]
    w2 = [torch.randn(H, I, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(E)]
    wg = torch.randn(E, H, device="cuda", dtype=torch.float32) / math.sqrt(H)

    def moe(x):
        logits = x.float() @ wg.t()
        p = torch.softmax(logits, dim=-1)
        wts, ids = torch.topk(p, k, dim=-1)
        wts = (wts / wts.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        mask = F.one_hot(ids, E).permute(2, 1, 0)
        for e in range(E):
            slot, tok = torch.where(mask[e])
            if tok.numel() == 0:
                continue
            xs = x[tok]
            y = F.linear(F.silu(F.linear(xs, w1[e])) * F.linear(xs, w3[e]), w2[e]) * wts[tok, slot, None]
            out.index_add_(0, tok, y)
        return out

    for T in ([1, 64, 8192] if quick else [1, 8, 64, 8192]):
        x = torch.randn(T, H, device="cuda", dtype=torch.bfloat16)
        ms = bench(lambda: moe(x), rep=300 if T < 1024 else 500)
        emit({"op": "torch_moe", "T": T, "ms": ms, "tflops": 2 * 3 * T * k * H * I / ms / 1e9}, fh)
    del w1, w3, w2
    torch.cuda.empty_cache()


def sdpa_anchors(fh, quick, prefill=True, decode=True, lengths=None):
    Hq, Hkv = 64, 8
    for T in (lengths or ([8192, 32768] if quick else [8192, 32768, 131072])) if prefill else []:
        q = torch.randn(1, Hq, T, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(1, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(1, Hkv, T, D, device="cuda", dtype=torch.bfloat16)
        note = "enable_gqa"
        try:
            fn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # noqa: E731
            fn()
        except Exception:  # noqa: BLE001 - fall back to expanded K/V (MHA)
            note = "expanded kv"
            ke, ve = k.repeat_interleave(Hq // Hkv, 1), v.repeat_interleave(Hq // Hkv, 1)
            fn = lambda: F.scaled_dot_product_attention(q, ke, ve, is_causal=True)  # noqa: E731
        ms = bench(fn, rep=300 if T < 131072 else 3000, warmup=25 if T < 131072 else 1000)
        emit({"op": "torch_sdpa_prefill", "T": T, "Hq": Hq, "Hkv": Hkv, "ms": ms,
              "tflops": 2 * T * T * D * Hq / ms / 1e9, "note": note}, fh)
        del q, k, v
        torch.cuda.empty_cache()
    for B, L in ([(1, 262144), (16, 32768)] if quick else [(1, 262144), (16, 32768), (64, 4096)]) if decode else []:
        q = torch.randn(B, Hq, 1, D, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(B, Hkv, L, D, device="cuda", dtype=torch.bfloat16)
        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)  # noqa: E731
        ms = bench(fn)
        emit({"op": "torch_sdpa_decode", "B": B, "L": L, "ms": ms,
              "tbps": 2 * 2 * B * L * Hkv * D / ms / 1e9}, fh)
        del q, k, v
        torch.cuda.empty_cache()


def vit_attn_anchor(fh, quick):
    """The ViT's attention (CLIP ViT-L/14-336: crops of 577 tokens, 16 heads of 64, no mask) through torch's SDPA,
    its default dispatch and each backend that takes the shape, against bench/ops_bench.cu --only cudnn_plans."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    T, H, Dh = 577, 16, 64
    for crops in (37, 1):
        # q, k, v as views of one packed [crops, T, 3, H, Dh] projection output (what transformers' CLIP attention
        # hands SDPA after its transposes), and contiguous head-major copies.
        qkv = torch.randn(crops, T, 3, H, Dh, device="cuda", dtype=torch.bfloat16)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        qc, kc, vc = (t.contiguous() for t in (q, k, v))
        flops = 4 * crops * H * T * T * Dh
        for layout, (a, b, c) in (("packed", (q, k, v)), ("contiguous", (qc, kc, vc))):
            for name, backend in (("default", None), ("flash", SDPBackend.FLASH_ATTENTION),
                                  ("cudnn", SDPBackend.CUDNN_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
                try:
                    if backend is None:
                        fn = lambda: F.scaled_dot_product_attention(a, b, c)  # noqa: E731
                        ms = bench(fn)
                    else:
                        with sdpa_kernel([backend]):
                            fn = lambda: F.scaled_dot_product_attention(a, b, c)  # noqa: E731
                            ms = bench(fn)
                    emit({"op": "torch_vit_attn", "crops": crops, "layout": layout, "backend": name, "ms": ms,
                          "tflops": flops / ms / 1e9}, fh)
                except Exception as e:  # noqa: BLE001 - a backend that does not take the shape
                    emit({"op": "torch_vit_attn", "crops": crops, "layout": layout, "backend": name, "ms": None,
                          "error": repr(e)[:200]}, fh)
        del qkv, q, k, v, qc, kc, vc
        torch.cuda.empty_cache()


# The batches of bench/ops_bench.cu --only prefill_ragged: (name, new tokens, cached prefix) per sequence.
RAGGED_BATCHES = (("fresh", [8192, 4096, 4096, 2048, 2048, 1024, 6144, 5120], [0] * 8),
                  ("fresh_reversed", [5120, 6144, 1024, 2048, 2048, 4096, 4096, 8192], [0] * 8),
                  ("prefixed", [2048] * 4, [30000, 10000, 60000, 0]))


def sdpa_ragged_anchor(fh, quick):
    """Several sequences of a prefill batch through torch: one SDPA call per sequence (the causal diagonal
    bottom-right aligned after a cached prefix: causal_lower_right), and torch's varlen attention over the packed batch
    where this torch has it (torch.nn.attention.varlen)."""
    from torch.nn.attention.bias import causal_lower_right
    Hq, Hkv = 64, 8
    for name, qlens, past in RAGGED_BATCHES:
        flops = sum(2 * q * (2 * p + q) * Hq * D for q, p in zip(qlens, past))
        seqs = []
        for q, p in zip(qlens, past):
            seqs.append((torch.randn(1, Hq, q, D, device="cuda", dtype=torch.bfloat16),
                         torch.randn(1, Hkv, p + q, D, device="cuda", dtype=torch.bfloat16),
                         torch.randn(1, Hkv, p + q, D, device="cuda", dtype=torch.bfloat16), q, p))

        def one(qq, kk, vv, q, p, gqa):
            if p == 0:
                return F.scaled_dot_product_attention(qq, kk, vv, is_causal=True, enable_gqa=gqa)
            return F.scaled_dot_product_attention(qq, kk, vv, attn_mask=causal_lower_right(q, p + q), enable_gqa=gqa)

        note = "enable_gqa"
        try:
            for s in seqs:
                one(*s, True)
            fn = lambda: [one(*s, True) for s in seqs]  # noqa: E731
        except Exception:  # noqa: BLE001 - a backend without GQA for this mask: expanded K/V (MHA)
            note = "expanded kv"
            seqs = [(qq, kk.repeat_interleave(Hq // Hkv, 1), vv.repeat_interleave(Hq // Hkv, 1), q, p)
                    for qq, kk, vv, q, p in seqs]
            fn = lambda: [one(*s, False) for s in seqs]  # noqa: E731
        ms = bench(fn, rep=300)
        emit({"op": "torch_sdpa_ragged", "batch": name, "impl": "sdpa_per_sequence", "ms": ms,
              "tflops": flops / ms / 1e9, "note": note}, fh)
        try:
            from torch.nn.attention.varlen import varlen_attn
            qp = torch.cat([qq[0].transpose(0, 1) for qq, _, _, _, _ in seqs]).contiguous()
            kp = torch.cat([kk[0].transpose(0, 1) for _, kk, _, _, _ in seqs]).contiguous()
            vp = torch.cat([vv[0].transpose(0, 1) for _, _, vv, _, _ in seqs]).contiguous()
            cu_q = torch.tensor([0] + list(itertools.accumulate(qlens)), dtype=torch.int32,
                                device="cuda")
            kvl = [q + p for q, p in zip(qlens, past)]
            cu_k = torch.tensor([0] + list(itertools.accumulate(kvl)), dtype=torch.int32,
                                device="cuda")
            # Its signature moved between torch releases: causal as is_causal or as the window (-1, 0) (bottom-right
            # aligned, like FlashAttention's varlen), grouped KV heads through enable_gqa or not at all.
            params = inspect.signature(varlen_attn).parameters
            kw = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
            if "enable_gqa" in params:
                kw["enable_gqa"] = True
            else:
                kp, vp = kp.repeat_interleave(Hq // Hkv, 1), vp.repeat_interleave(Hq // Hkv, 1)
            fn = lambda: varlen_attn(qp, kp, vp, cu_q, cu_k, max(qlens), max(kvl), **kw)  # noqa: E731
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - report the signature it has
                raise RuntimeError(f"{e!r}; varlen_attn{inspect.signature(varlen_attn)}") from e
            ms = bench(fn, rep=300)
            emit({"op": "torch_sdpa_ragged", "batch": name, "impl": "varlen_attn", "ms": ms,
                  "tflops": flops / ms / 1e9, "heads": f"{Hq}/{kp.shape[1]}"}, fh)
        except Exception as e:  # noqa: BLE001 - not in this torch, or not for this batch
            emit({"op": "torch_sdpa_ragged", "batch": name, "impl": "varlen_attn", "ms": None,
                  "error": repr(e)[:600]}, fh)
        del seqs
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    # Comma-separated subset of gemm, moe, sdpa, sdpa_decode, sdpa_prefill_long (32K and 128K only; for runs
    # interleaved with bench/ops_bench.cu --only prefill_cudnn), vit_attn (the ViT's attention, against --only
    # cudnn_plans), sdpa_ragged (against --only prefill_ragged); default all but sdpa_prefill_long, vit_attn and
    # sdpa_ragged. The ceilings
    # always run.
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    want = lambda part: not only or part in only  # noqa: E731
    fh = open(args.json, "w") if args.json else None
    emit({"op": "torch_env", "torch": torch.__version__, "device": torch.cuda.get_device_name(),
          "cudnn": torch.backends.cudnn.version()}, fh)

    n = 1 << 30
    src = torch.randn(n, device="cuda", dtype=torch.float32).to(torch.bfloat16)
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src), rep=300, warmup=50)
    emit({"op": "torch_copy", "bytes": 4 * n, "ms": ms, "tbps": 4 * n / ms / 1e9}, fh)
    del src, dst
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = bench(lambda: a @ b, rep=300, warmup=50)
    emit({"op": "torch_gemm", "mnk": 8192, "ms": ms, "tflops": 2 * 8192**3 / ms / 1e9}, fh)
    del a, b
    torch.cuda.empty_cache()

    parts = [p for name, p in (("gemm", gemm_anchors), ("moe", moe_anchor), ("sdpa", sdpa_anchors)) if want(name)]
    if not want("sdpa") and want("sdpa_decode"):
        parts.append(lambda fh, quick: sdpa_anchors(fh, quick, prefill=False))
    if only and "vit_attn" in only:
        parts.append(vit_attn_anchor)
    if only and "sdpa_ragged" in only:
        parts.append(sdpa_ragged_anchor)
    if only and "sdpa_prefill_long" in only:
        parts.append(lambda fh, quick: sdpa_anchors(fh, quick, decode=False, lengths=[32768, 131072]))
    for part in parts:
        try:
            part(fh, args.quick)
        except Exception as e:  # noqa: BLE001 - report and carry on
            emit({"op": "anchor_error", "part": getattr(part, "__name__", "sdpa"), "error": repr(e)}, fh)
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
