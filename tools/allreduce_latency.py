#!/usr/bin/env python3
"""Latency of one NCCL all-reduce across the GPUs of one process, at the sizes a split decode step reduces (bf16
rows of the hidden size for batch 1 / 8 / 64, and the small fp32 statistics), through torch.cuda.nccl (the same
library Volt links). Timed like a decode step issues them: back to back on each GPU's stream, CUDA events, median.

  NCCL_NVLS_ENABLE=0 python3 tools/allreduce_latency.py --json out.jsonl
"""
import argparse
import json
import os
import statistics

import torch
import torch.cuda.nccl as nccl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args()
    assert os.environ.get("NCCL_NVLS_ENABLE") == "0", "keep NVLink multicast off: NCCL_NVLS_ENABLE=0"
    n = torch.cuda.device_count()
    fh = open(args.json, "w") if args.json else None
    sizes = [("stat_fp32_x64", 64, torch.float32), ("hidden_b1", 6144, torch.bfloat16),
             ("hidden_b8", 8 * 6144, torch.bfloat16), ("hidden_b64", 64 * 6144, torch.bfloat16),
             ("hidden_t8192", 8192 * 6144, torch.bfloat16)]
    for name, numel, dtype in sizes:
        bufs = [torch.randn(numel, device=f"cuda:{d}").to(dtype) for d in range(n)]
        for _ in range(20):
            nccl.all_reduce(bufs)
        torch.cuda.synchronize()
        times = []
        reps = args.reps if numel < 1 << 20 else 20
        for _ in range(reps):
            ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)]
            for d in range(n):
                with torch.cuda.device(d):
                    ev[d][0].record()
            nccl.all_reduce(bufs)
            for d in range(n):
                with torch.cuda.device(d):
                    ev[d][1].record()
            torch.cuda.synchronize()
            times.append(max(ev[d][0].elapsed_time(ev[d][1]) for d in range(n)))
        row = {"op": "nccl_all_reduce", "gpus": n, "name": name, "bytes": numel * bufs[0].element_size(),
               "us_median": 1e3 * statistics.median(times), "us_min": 1e3 * min(times),
               "device": torch.cuda.get_device_name(0), "nccl": ".".join(map(str, torch.cuda.nccl.version()))}
        print(json.dumps(row))
        if fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
