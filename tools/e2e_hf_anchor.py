#!/usr/bin/env python3
"""Same-run anchor for `volt bench e2e` (issue 12): transformers' MiniMaxForCausalLM at MiniMax-Text-01's geometry
with random bf16 weights on one GPU, the shapes the issue's anchor names: 2 layers = 1 lightning + 1 softmax (each
with the 32-expert MoE), prefill of 8K and 32K tokens (one forward, logits of the last position), and the decode
step at 4K context (batch 1, incl. lm_head, through the model's own cache). Prints a table and writes JSON.

Runs on the GPU machine (torch 2.11, transformers 5.17): python3 tools/e2e_hf_anchor.py --out anchor.json
"""
import argparse
import json
import time

import torch
from transformers import MiniMaxConfig, MiniMaxForCausalLM


def config(layers: int) -> MiniMaxConfig:
    kinds = ["linear_attention"] * layers
    kinds[-1] = "full_attention"  # as `volt bench e2e --layers N` (N < 8): the last layer is the softmax one
    cfg = MiniMaxConfig(
        vocab_size=200064, hidden_size=6144, num_hidden_layers=layers, num_attention_heads=64, num_key_value_heads=8,
        head_dim=128, intermediate_size=9216, num_local_experts=32, num_experts_per_tok=2, layer_types=kinds,
        block_size=256, rope_parameters={"rope_type": "default", "rope_theta": 1e7}, rms_norm_eps=1e-5,
        max_position_embeddings=1 << 20, tie_word_embeddings=False,
        full_attn_alpha_factor=3.5565588200778455, linear_attn_alpha_factor=3.5565588200778455,
        mlp_alpha_factor=3.5565588200778455)
    cfg._attn_implementation = "sdpa"
    return cfg


def timed(fn, reps: int) -> float:
    fn()  # warm-up
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, nargs="+", default=[8192, 32768])
    ap.add_argument("--decode-context", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = MiniMaxForCausalLM(config(a.layers)).eval()
    out = {"anchor": "transformers MiniMaxForCausalLM", "gpu": torch.cuda.get_device_name(), "layers": a.layers,
           "torch": torch.__version__, "prefill": []}
    print(f"| transformers anchor ({a.layers} layers, {out['gpu']}) | value |\n|---|---|")
    g = torch.Generator(device="cuda").manual_seed(1)
    with torch.inference_mode():
        for T in a.prompt_tokens:
            ids = torch.randint(0, 200064, (1, T), device="cuda", generator=g)
            s = timed(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1), a.reps)
            out["prefill"].append({"tokens": T, "ms": s * 1e3, "tokens_per_second": T / s})
            print(f"| prefill {T} tokens (best of {a.reps}) | {s * 1e3:.1f} ms, {T / s:.0f} tok/s |", flush=True)
        ids = torch.randint(0, 200064, (1, a.decode_context), device="cuda", generator=g)
        res = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache = res.past_key_values
        nxt = torch.tensor([[17]], device="cuda")
        steps = []
        for _ in range(8):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            res = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            torch.cuda.synchronize()
            steps.append(time.perf_counter() - t0)
            cache = res.past_key_values
        step = min(steps[1:])
        out["decode"] = {"context": a.decode_context, "ms_per_token": step * 1e3}
        print(f"| decode step at {a.decode_context} context, batch 1 | {step * 1e3:.2f} ms |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
