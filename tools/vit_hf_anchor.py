#!/usr/bin/env python3
"""Speed anchor of `volt bench vision --device cuda --synthetic vit-l-336` (issue 12): transformers' CLIPVisionModel
at ViT-L/14-336 geometry (MiniMax-VL-01's tower: hidden 1024, 24 layers, 16 heads, MLP 4096, exact GELU), random
weights, bf16, torch SDPA attention, hidden_states of the last layer (what VL-01 feeds the projector), run on the
same GPU in the same script as Volt. Event-timed best of --reps after warm-ups, for each crop count; also a 8192^3
bf16 torch.matmul as the GEMM ceiling of this run. With --sustain S, S seconds of back-to-back forwards after that,
as `volt bench vision --sustain` runs them: median of the second half and, through the driver's energy counter
(NVML), joules per forward. With --from-idle N, N single forwards, each after 2 s with the GPU idle, as
`volt bench vision --from-idle` runs them (one image's latency for a user). Prints one JSON object per line.

    python3 tools/vit_hf_anchor.py [--crops 1 37] [--reps 20] [--sustain 0] [--from-idle 0] [--json F]
"""
import argparse
import ctypes
import statistics
import sys
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from lightning_fla_anchor import emit  # same JSON-lines writer (tools/ is the script's directory)


def event_ms(fn):
    """One call of fn between two CUDA events, in ms (waits for it)."""
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


def best_ms(fn, reps, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    return min((event_ms(fn) for _ in range(reps)), default=float("inf"))


class EnergyMeter:
    """Joules used by CUDA device `index` since the driver loaded (NVML's counter, as sdk/gpu_energy.cpp reads it)."""

    def __init__(self, index):
        self.nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if self.nvml.nvmlInit_v2() != 0:
            raise RuntimeError("nvmlInit_v2 failed")
        self.dev = ctypes.c_void_p()
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        if uuid is not None:  # NVML names GPUs "GPU-<uuid>"; CUDA's index may differ from NVML's
            rc = self.nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}".encode(), ctypes.byref(self.dev))
        else:
            rc = self.nvml.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(self.dev))
        if rc != 0:
            raise RuntimeError(f"NVML device handle: error {rc}")

    def joules(self):
        mj = ctypes.c_ulonglong()
        if self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.dev, ctypes.byref(mj)) != 0:
            raise RuntimeError("nvmlDeviceGetTotalEnergyConsumption failed")
        return mj.value * 1e-3


def sustained(fn, seconds, run_ms, min_runs, meter):
    runs = max(min_runs, int(seconds * 1e3 / max(run_ms, 1e-3) + 0.999))
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(runs + 1)]
    torch.cuda.synchronize()
    j0 = meter.joules() if meter else None
    t0 = time.perf_counter()
    ev[0].record()
    for i in range(runs):
        fn()
        ev[i + 1].record()
    ev[-1].synchronize()
    wall = time.perf_counter() - t0
    ms = [ev[i].elapsed_time(ev[i + 1]) for i in range(runs)]
    out = {"runs": runs, "seconds": wall, "ms_median_second_half": statistics.median(ms[runs // 2:]),
           "ms_mean": sum(ms) / runs}
    if meter:
        dj = meter.joules() - j0
        out.update({"joules_per_run": dj / runs, "watts": dj / wall})
    return out


def from_idle(fn, count, gap_s=2.0):
    ms = []
    for _ in range(count):
        torch.cuda.synchronize()
        time.sleep(gap_s)
        ms.append(event_ms(fn))
    return {"runs": count, "idle_seconds_before_each": gap_s, "ms_median": statistics.median(ms), "ms_min": min(ms),
            "ms_max": max(ms), "ms_runs": ms}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=int, nargs="+", default=[1, 37])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--sustain", type=float, default=0.0, help="seconds of back-to-back forwards (0: none)")
    ap.add_argument("--from-idle", type=int, default=0, help="single forwards, each after 2 s idle (0: none)")
    ap.add_argument("--json")
    args = ap.parse_args()
    fh = open(args.json, "w") if args.json else None
    torch.manual_seed(0)
    dev = "cuda"
    n = 8192
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    ms = best_ms(lambda: a @ b, 5)
    emit({"op": "torch_gemm_ceiling", "n": n, "ms": ms, "tflops": 2 * n ** 3 / ms / 1e9,
          "device": torch.cuda.get_device_name()}, fh)
    del a, b
    cfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                           image_size=336, patch_size=14, num_channels=3, hidden_act="gelu", layer_norm_eps=1e-5,
                           projection_dim=768, attn_implementation="sdpa")
    model = CLIPVisionModel(cfg).to(device=dev, dtype=torch.bfloat16).eval()
    impl = getattr(model.config, "_attn_implementation", "?")
    T, D, F, L = 577, 1024, 4096, 24
    flops_per_crop = 2 * 576 * 588 * D + L * (2 * T * D * (4 * D + 2 * F) + 4 * T * T * D)
    for crops in args.crops:
        px = torch.randn(crops, 3, 336, 336, device=dev, dtype=torch.bfloat16)
        with torch.inference_mode():
            fn = lambda: model(pixel_values=px, output_hidden_states=True).hidden_states[-1]  # noqa: E731
            ms = best_ms(fn, args.reps)
            row = {"op": "hf_clip_vit", "crops": crops, "ms": ms, "tflops": crops * flops_per_crop / ms / 1e9,
                   "attn_implementation": impl, "transformers": __import__("transformers").__version__,
                   "torch": torch.__version__}
            if args.from_idle > 0:
                row["from_idle"] = from_idle(fn, args.from_idle)
            if args.sustain > 0:
                try:
                    meter = EnergyMeter(torch.cuda.current_device())
                except (OSError, RuntimeError) as e:
                    meter, row["energy"] = None, f"not measured: {e}"
                row["sustained"] = sustained(fn, args.sustain, ms, args.reps, meter)
        emit(row, fh)
        del px
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
