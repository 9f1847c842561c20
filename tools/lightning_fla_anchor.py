#!/usr/bin/env python3
"""Speed anchors for the lightning attention benchmark, run on the GPU machine by scripts/device-test.sh in the same
run as bench/lightning_bench.cu: flash-linear-attention's Triton kernels (chunk_lightning_attn for prefill,
fused_recurrent_lightning_attn for decode) and the measured ceilings (device-to-device copy, bf16 GEMM via torch).

fla's decay rule and default 1/sqrt(K) scale differ from MiniMax's, so it is a speed anchor only (same shapes,
same dtypes: bf16 q/k/v/o, fp32 state). Prints one JSON object per line, like the C++ benchmark.
"""
import argparse
import json
import sys

import torch
import triton.testing

H, D = 64, 128


def emit(obj, fh):
    line = json.dumps(obj)
    print(line, flush=True)
    if fh:
        fh.write(line + "\n")
        fh.flush()


def rand_act(*shape):
    return torch.nn.functional.silu(torch.randn(*shape, device="cuda")).to(torch.bfloat16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    fh = open(args.json, "w") if args.json else None

    # Ceilings: a 2 GiB device-to-device copy (bytes read + written) and an 8192^3 bf16 GEMM on random data.
    n = 1 << 30
    src = torch.randn(n, device="cuda", dtype=torch.float32).to(torch.bfloat16)
    dst = torch.empty_like(src)
    ms = triton.testing.do_bench(lambda: dst.copy_(src), warmup=50, rep=300, return_mode="median")
    emit({"op": "torch_copy", "bytes": 4 * n, "ms": ms, "tbps": 4 * n / ms / 1e9}, fh)
    del src, dst
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms = triton.testing.do_bench(lambda: a @ b, warmup=50, rep=300, return_mode="median")
    emit({"op": "torch_gemm", "mnk": 8192, "ms": ms, "tflops": 2 * 8192**3 / ms / 1e9}, fh)
    del a, b
    torch.cuda.empty_cache()

    try:
        from fla.ops.lightning_attn import chunk_lightning_attn, fused_recurrent_lightning_attn
    except Exception as e:  # noqa: BLE001 - report and carry on with the ceilings only
        emit({"op": "fla_error", "error": repr(e)}, fh)
        return 0

    lengths = [8192, 131072] if args.quick else [8192, 32768, 131072, 1048576]
    for T in lengths:
        try:
            q, k, v = (rand_act(1, T, H, D) for _ in range(3))
            fn = lambda: chunk_lightning_attn(q, k, v, layer_idx=0, num_layers=80, output_final_state=True)  # noqa
            ms = triton.testing.do_bench(fn, warmup=100, rep=500 if T < 1048576 else 1000, return_mode="median")
            emit({"op": "fla_prefill", "T": T, "B": 1, "H": H, "ms": ms}, fh)
        except torch.OutOfMemoryError:
            emit({"op": "fla_prefill", "T": T, "B": 1, "H": H, "ms": None, "note": "out of memory"}, fh)
        finally:
            q = k = v = None
            torch.cuda.empty_cache()

    # An 8-head shard (tensor parallel) at T = 128K, for the context-parallel comparison.
    q, k, v = (rand_act(1, 131072, 8, D) for _ in range(3))
    fn = lambda: chunk_lightning_attn(q, k, v, layer_idx=0, num_layers=80, output_final_state=True)  # noqa: E731
    ms = triton.testing.do_bench(fn, warmup=100, rep=500, return_mode="median")
    emit({"op": "fla_prefill_h8", "T": 131072, "H": 8, "ms": ms}, fh)
    q = k = v = None
    torch.cuda.empty_cache()

    for B in (1, 8, 64):
        q, k, v = (rand_act(B, 1, H, D) for _ in range(3))
        # Rotate over state sets (>= 512 MiB in all) so the state is read from HBM, as the C++ benchmark does.
        sets = max(2, (512 << 20) // (B * H * D * D * 4))
        states = [torch.randn(B, H, D, D, device="cuda", dtype=torch.float32) for _ in range(sets)]
        calls = 64

        def step_all():
            for c in range(calls):
                fused_recurrent_lightning_attn(q, k, v, layer_idx=0, num_layers=80,
                                               initial_state=states[c % sets], output_final_state=True)

        step_all()  # compile
        torch.cuda.synchronize()
        # CUDA graph of `calls` steps, as for the C++ decode (launch overhead out of the comparison).
        g = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            step_all()
            torch.cuda.synchronize()
            with torch.cuda.graph(g):
                step_all()
        torch.cuda.current_stream().wait_stream(s)
        ms = triton.testing.do_bench(g.replay, warmup=20, rep=200, return_mode="median") / calls
        emit({"op": "fla_decode", "B": B, "H": H, "ms": ms}, fh)
        del states, g
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
