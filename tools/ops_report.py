#!/usr/bin/env python3
"""Joins the issue-7 ops benchmark's JSON lines (bench/ops_bench.cu) with the torch anchors'
(tools/ops_torch_anchor.py) from one device run and prints Markdown tables: time, rate, the ratio to the same-run
anchor and to the measured ceilings (copy TB/s, 8192^3 bf16 GEMM TFLOP/s), and the issue-7 targets."""
import sys

from lightning_report import load  # tools/ is the script's directory: the same JSON-lines reader


def fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


def main():
    ours, anchor = load(sys.argv[1]), load(sys.argv[2])
    dev = next((r for r in ours if r["op"] == "device"), {})
    copy = next((r["tbps"] for r in anchor if r["op"] == "torch_copy"), None)
    copy_cpp = next((r["tbps"] for r in ours if r["op"] == "copy"), None)
    ceil_bw = copy or copy_cpp or 1.0
    gemm_ceiling = next((r["tflops"] for r in anchor if r["op"] == "torch_gemm"), None)
    env = next((r for r in anchor if r["op"] == "torch_env"), {})
    out = [f"Device: {dev.get('name', '?')} ({dev.get('sms', '?')} SMs, L2 {dev.get('l2_mb', '?')} MB), cuDNN SDPA "
           f"{'available' if dev.get('cudnn') else 'unavailable'}; torch {env.get('torch', '?')} (cuDNN "
           f"{env.get('cudnn', '?')}). Ceilings this run: copy {fmt(copy, '.2f')} TB/s (torch; cudaMemcpy "
           f"{fmt(copy_cpp, '.2f')}), bf16 GEMM {fmt(gemm_ceiling, '.0f')} TFLOP/s (torch 8192^3).", ""]

    tg = {r["name"]: r for r in anchor if r["op"] == "torch_gemm_shape"}
    # ms: each call on an idle GPU, inputs in L2 (the earlier runs' timing); ms_flush: do_bench's way (L2 flushed
    # by a 256 MiB memset before each call, which also hides the host launch cost) — the anchors' own timing.
    out += ["| GEMM (cuBLASLt) | M x N x K | Volt ms | Volt ms (flush) | TFLOP/s | torch ms | Volt vs torch | "
            "vs torch (flush) | % GEMM ceiling | % copy ceiling |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ours:
        if r["op"] != "gemm":
            continue
        if "error" in r:  # e.g. the FP8 ceiling off Hopper: say why the row is missing
            out.append(f"| {r['name']} | | {r['error']} | | | | | | | |")
            continue
        a = tg.get(r["name"])
        fl = r.get("ms_flush")
        out.append(f"| {r['name']} | {r['m']} x {r['n']} x {r['k']} | {r['ms']:.4f} | {fmt(fl, '.4f')} | "
                   f"{r['tflops']:.0f} | {fmt(a and a['ms'], '.4f')} | {fmt(a and a['ms'] / r['ms'], '.2f')}x | "
                   f"{fmt(a and fl and a['ms'] / fl, '.2f')}x | "
                   f"{fmt(gemm_ceiling and 100 * r['tflops'] / gemm_ceiling, '.0f')}% | "
                   f"{fmt(r.get('tbps') and 100 * r['tbps'] / ceil_bw, '.0f')}% |")
    parts = [r for r in ours if r["op"] == "gemm_part"]
    tparts = {r["variant"]: r for r in anchor if r["op"] == "torch_gemm_part"}
    if parts:
        out += ["", "| vit_fc1 4616 x 4096 x 1024, taken apart | Volt ms | Volt ms (flush) | torch part | torch ms |",
                "|---|---|---|---|---|"]
        tmap = {"bias": "bias", "plain": "plain", "gelu_pass_with_bias": "gelu_only"}
        for r in parts:
            t = tparts.get(tmap.get(r["variant"]) or "")
            out.append(f"| {r['variant']} | {r['ms']:.4f} | {r['ms_flush']:.4f} | {t['variant'] if t else ''} | "
                       f"{fmt(t and t['ms'], '.4f')} |")

    tm = {r["T"]: r for r in anchor if r["op"] == "torch_moe"}
    # Targets on router + experts (the torch anchor times both too).
    moe_targets = {1: ("<= 0.30 ms", lambda r, tot: tot <= 0.30),
                   8192: (">= 560 TFLOP/s (experts)", lambda r, tot: r["tflops"] >= 560)}
    out += ["", "| MoE 32 experts, 6144 -> 9216, top-2 | path | experts touched | Volt experts ms (router ms) | "
            "router + experts ms | experts TFLOP/s | experts TB/s (% copy) | torch eager ms | Volt vs torch | target |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ours:
        if r["op"] != "moe":
            continue
        a = tm.get(r["T"])
        tgt = moe_targets.get(r["T"])
        tot = r.get("total_ms", r["ms"] + r["router_ms"])
        out.append(f"| T = {r['T']} | {r['path']} | {r['experts_touched']} | {r['ms']:.3f} ({r['router_ms']:.3f}) | "
                   f"{tot:.3f} | {r['tflops']:.0f} | {r['tbps']:.2f} ({100 * r['tbps'] / ceil_bw:.0f}%) | "
                   f"{fmt(a and a['ms'])} | {fmt(a and a['ms'] / tot, '.2f')}x | "
                   f"{(tgt[0] + ': ' + ('met' if tgt[1](r, tot) else 'missed')) if tgt else ''} |")

    tp = {r["T"]: r for r in anchor if r["op"] == "torch_sdpa_prefill"}
    out += ["", "| softmax prefill, causal GQA 64/8, d=128 | backend | Volt ms | TFLOP/s | torch SDPA ms (TFLOP/s) | "
            "Volt vs torch | target |", "|---|---|---|---|---|---|---|"]
    for r in ours:
        if r["op"] != "attn_prefill":
            continue
        a = tp.get(r["T"])
        if r.get("ms") is None:
            out.append(f"| T = {r['T']} | {r['backend']} | n/a ({r.get('note', '')}) | | | | |")
            continue
        ratio = a["ms"] / r["ms"] if a else None
        out.append(f"| T = {r['T']} | {r['backend']} | {r['ms']:.3f} | {r['tflops']:.0f} | "
                   f"{fmt(a and a['ms'])} ({fmt(a and a['tflops'], '.0f')}) | {fmt(ratio, '.2f')}x | "
                   f">= 1.0x torch: {'met' if ratio and ratio >= 1.0 else 'missed'} |")

    td = {(r["B"], r["L"]): r for r in anchor if r["op"] == "torch_sdpa_decode"}
    out += ["", "| softmax decode, q = 1, GQA 64/8 | splits | Volt ms | Volt ms (flush) | TB/s (flush) | % copy ceiling "
            "(flush) | torch SDPA ms | Volt vs torch | vs torch (flush) | target (flush) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ours:
        if r["op"] != "attn_decode":
            continue
        a = td.get((r["B"], r["L"]))
        fl = r.get("ms_flush", r["ms"])
        ratio0 = a["ms"] / r["ms"] if a else None
        ratio = a["ms"] / fl if a else None
        pct = 100 * r.get("tbps_flush", r["tbps"]) / ceil_bw
        if (r["B"], r["L"]) == (1, 262144):
            tgt = f">= 1.0x torch: {'met' if ratio and ratio >= 1.0 else 'missed'}"
        elif (r["B"], r["L"]) == (16, 32768):
            tgt = f">= 85% copy: {'met' if pct >= 85 else 'missed'}"
        else:
            tgt = ""
        if r.get("forced"):
            tgt = "(forced split count)"
        out.append(f"| B = {r['B']} x {r['L']} keys | {r.get('splits', '')} | {r['ms']:.4f} | {fl:.4f} | "
                   f"{r.get('tbps_flush', r['tbps']):.2f} | {pct:.0f}% | {fmt(a and a['ms'], '.4f')} | "
                   f"{fmt(ratio0, '.2f')}x | {fmt(ratio, '.2f')}x | {tgt} |")

    out += ["", "| small kernel | shape | Volt ms | TB/s | % copy ceiling |", "|---|---|---|---|---|"]
    for r in ours:
        if r["op"] == "rms_norm_residual":
            shape = f"T={r['T']}, W={r['W']}, residual + sum out"
        elif r["op"] == "rope":
            shape = f"T={r['T']}, {r['heads']} heads, rotary 64 of 128"
        elif r["op"] == "swiglu":
            shape = f"{r['rows']} rows x {r['I']}"
        elif r["op"] == "embedding":
            shape = f"T={r['T']}, H={r['H']}"
        elif r["op"] == "sample":
            shape = f"{r['mode']}, {r['N']} rows x V={r['V']} (flush: {r.get('ms_flush', 0):.4f} ms)"
        else:
            continue
        out.append(f"| {r['op']} | {shape} | {r['ms']:.4f} | {r['tbps']:.2f} | {100 * r['tbps'] / ceil_bw:.0f}% |")
    blocks = [r for r in ours if r["op"] == "attn_blocks" and r.get("whole_ms") is not None]
    if blocks:
        out += ["", "| prefill piece after cached keys (cuDNN) | keys | blocks x keys | one call ms (TFLOP/s) | "
                "in blocks ms (TFLOP/s) | blocks / one call | longest block ms |", "|---|---|---|---|---|---|---|"]
        for r in blocks:
            out.append(f"| T = {r['T']} | {r['S']} | {r['blocks']} x {r['block_keys']} | {r['whole_ms']:.3f} "
                       f"({r['whole_tflops']:.0f}) | {r['blocks_ms']:.3f} ({r['blocks_tflops']:.0f}) | "
                       f"{r['ratio']:.3f} | {r['longest_block_ms']:.3f} |")
    for r in ours:
        if r["op"] == "overlap":
            out += ["", "| MoE prefill piece + decode steps | piece alone | steps alone | one stream, in turn | "
                    "two streams | two / one | steps done (two streams) |", "|---|---|---|---|---|---|---|",
                    f"| {r['prefill_T']} tokens + {r['decode_steps']} x {r['decode_T']} | {r['prefill_ms']:.3f} | "
                    f"{r['decode_ms']:.3f} | {r['sequential_ms']:.3f} | {r['concurrent_ms']:.3f} | "
                    f"{r['concurrent_over_sequential']:.3f} | {r['decode_done_concurrent_ms']:.3f} |"]
    # What cuDNN's other SDPA plans and cuBLASLt's other algorithms would give (volt_ops_bench --only
    # cudnn_plans,gemm_algos), against what Volt runs, and torch's SDPA at the ViT's attention shape.
    plans = [r for r in ours if r["op"] == "cudnn_plans" and r.get("ms")]
    if plans:
        tv = {r["crops"]: r["ms"] for r in anchor if r["op"] == "torch_vit_attn" and r.get("ms") and
              r["layout"] == "packed" and r["backend"] == "default"}
        out += ["", "| cuDNN SDPA shape | plans timed | fastest plan ms (name) | Volt's cache ms | torch SDPA ms |",
                "|---|---|---|---|---|"]
        for shape in dict.fromkeys(r["shape"] for r in plans):
            rows = [r for r in plans if r["shape"] == shape and "index" in r]
            cache = next((r["ms"] for r in plans if r["shape"] == shape and "index" not in r), None)
            best = min(rows, key=lambda r: r["ms"]) if rows else None
            crops = 37 if shape == "vit_37_crops" else 1 if shape == "vit_1_crop" else None
            out.append(f"| {shape} | {len(rows)} | {fmt(best and best['ms'], '.4f')} ({best and best['plan']}) | "
                       f"{fmt(cache, '.4f')} | {fmt(tv.get(crops), '.4f')} |")
    algos = [r for r in ours if r["op"] == "gemm_algos" and r.get("ms")]
    if algos:
        out += ["", "| cuBLASLt shape | algorithms timed | rank 0 (run()'s) ms | fastest ms (rank) |", "|---|---|---|---|"]
        for name in dict.fromkeys(r["name"] for r in algos):
            rows = [r for r in algos if r["name"] == name]
            best = min(rows, key=lambda r: r["ms"])
            first = next((r["ms"] for r in rows if r["rank"] == 0), None)
            out.append(f"| {name} {rows[0]['m']}x{rows[0]['n']}x{rows[0]['k']} | {len(rows)} | {fmt(first, '.4f')} | "
                       f"{best['ms']:.4f} ({best['rank']}) |")
    errs = [r for r in anchor if r["op"] == "anchor_error"]
    for e in errs:
        out.append(f"\nanchor error in {e['part']}: {e['error']}")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
