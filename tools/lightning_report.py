#!/usr/bin/env python3
"""Joins the lightning benchmark's JSON lines (bench/lightning_bench.cu) with the anchor's
(tools/lightning_fla_anchor.py) from one device run and prints a Markdown table: time, achieved TB/s, share of the
measured copy ceiling (the bytes roofline), speed-up over fla, and the issue-6 targets."""
import json
import sys


def load(path):
    rows = []
    try:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("{"):
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


def main():
    ours, anchor = load(sys.argv[1]), load(sys.argv[2])
    dev = next((r for r in ours if r["op"] == "device"), {})
    copy = next((r["tbps"] for r in anchor if r["op"] == "torch_copy"), None)
    copy_cpp = next((r["tbps"] for r in ours if r["op"] == "copy"), None)
    gemm = next((r["tflops"] for r in anchor if r["op"] == "torch_gemm"), None)
    ceiling = copy or copy_cpp
    fla_pre = {r["T"]: r["ms"] for r in anchor if r["op"] == "fla_prefill"}
    fla_dec = {r["B"]: r["ms"] for r in anchor if r["op"] == "fla_decode"}
    targets_pre = {131072: 3.6}
    targets_dec = {64: 0.11, 1: 0.015}

    out = []
    out.append(f"Device: {dev.get('name', '?')} ({dev.get('sms', '?')} SMs, L2 {dev.get('l2_mb', '?')} MB). "
               f"Ceilings this run: copy {ceiling:.2f} TB/s (torch; cudaMemcpy {copy_cpp or 0:.2f}), "
               f"bf16 GEMM {gemm or 0:.0f} TFLOP/s.")
    out.append("")
    out.append("| op | shape | Volt ms | TB/s | % copy ceiling | roofline ms | fla ms | Volt vs fla | target |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for r in ours:
        if r["op"] == "prefill":
            T = r["T"]
            if r.get("variant", "tma") != "tma":  # the other variants' rows (A/B): time and ratio only
                f = fla_pre.get(T)
                out.append(f"| prefill ({r['variant']}) | T={T}, B=1, H={r['H']} | {r['ms']:.3f} | {r['tbps']:.2f} | "
                           f"{100 * r['tbps'] / ceiling:.0f}% | | {'%.3f' % f if f else 'n/a'} | "
                           f"{'%.2fx' % (f / r['ms']) if f else 'n/a'} | |")
                continue
            roof = r["bytes"] / (ceiling * 1e9)
            f = fla_pre.get(T)
            tgt = targets_pre.get(T)
            out.append(f"| prefill | T={T}, B=1, H={r['H']} | {r['ms']:.3f} | {r['tbps']:.2f} | "
                       f"{100 * r['tbps'] / ceiling:.0f}% | {roof:.3f} | "
                       f"{'%.3f' % f if f else 'n/a'} | {'%.2fx' % (f / r['ms']) if f else 'n/a'} | "
                       f"{('<= %.2f ms: ' % tgt + ('met' if r['ms'] <= tgt else 'missed')) if tgt else ''} |")
        elif r["op"] == "prefill_silu":  # SiLU applied on load, as the model runs it (fla has no such mode)
            out.append(f"| prefill, SiLU on load ({r['variant']}) | T={r['T']}, B=1, H={r['H']} | {r['ms']:.3f} | "
                       f"{r['tbps']:.2f} | {100 * r['tbps'] / ceiling:.0f}% | | | | |")
        elif r["op"] == "decode":
            B = r["B"]
            roof = r["bytes"] / (ceiling * 1e9)
            f = fla_dec.get(B)
            tgt = targets_dec.get(B)
            out.append(f"| decode | B={B}, H={r['H']} | {r['ms']:.4f} | {r['tbps']:.2f} | "
                       f"{100 * r['tbps'] / ceiling:.0f}% | {roof:.4f} | "
                       f"{'%.4f' % f if f else 'n/a'} | {'%.2fx' % (f / r['ms']) if f else 'n/a'} | "
                       f"{('<= %.3f ms: ' % tgt + ('met' if r['ms'] <= tgt else 'missed')) if tgt else ''} |")
        elif r["op"] == "prefill_h8":
            f = next((x["ms"] for x in anchor if x["op"] == "fla_prefill_h8"), None)
            roof = r["bytes"] / (ceiling * 1e9)
            seg = "context-parallel segments" if r["segments"] else "no segments"
            out.append(f"| prefill, 8 heads ({seg}, {r['variant']}) | T={r['T']}, B=1, H=8 | {r['ms']:.3f} | "
                       f"{r['tbps']:.2f} | {100 * r['tbps'] / ceiling:.0f}% | {roof:.3f} | "
                       f"{'%.3f' % f if f else 'n/a'} | {'%.2fx' % (f / r['ms']) if f else 'n/a'} | |")
        elif r["op"] == "norm_gate":
            roof = r["bytes"] / (ceiling * 1e9)
            out.append(f"| norm+gate | T={r['T']}, W={r['W']} | {r['ms']:.4f} | {r['tbps']:.2f} | "
                       f"{100 * r['tbps'] / ceiling:.0f}% | {roof:.4f} | n/a | n/a | |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
