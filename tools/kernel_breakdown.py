#!/usr/bin/env python3
"""Sums an Nsight Compute raw CSV (`ncu --csv --page raw --metrics gpu__time_duration.sum,dram__bytes_read.sum,
dram__bytes_write.sum`) per kernel: calls, total time, DRAM bytes and the rate they move at, largest first, per step
when --steps says how many steps the profiled window held. Used by scripts/device-test.sh (part moe, stage profile)
to see where a decode step's time goes.

    tools/kernel_breakdown.py ncu.csv --steps 2 [--copy-tbs 3.0]
"""
import argparse
import collections
import csv
import re
import sys


def short_name(name):
    """A kernel's name without its argument list and namespaces (at most 110 characters)."""
    name = re.sub(r"\(anonymous namespace\)::|volt::cuda::|volt::|cutlass::|cute::", "", name.strip())
    name = re.sub(r"^void ", "", name)
    if name.endswith(")"):  # the demangled argument list: from its matching "("
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    return name[:110]


def to_float(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv")
    ap.add_argument("--steps", type=int, default=1, help="steps in the profiled window (totals are divided by it)")
    ap.add_argument("--copy-tbs", type=float, default=3.0, help="copy ceiling (TB/s) for the bytes' floor")
    args = ap.parse_args()
    with open(args.csv, newline="") as f:
        lines = [line for line in f if line.startswith('"')]  # ncu's own messages are not quoted
    rows = list(csv.reader(lines))
    if len(rows) < 2:
        sys.exit(f"{args.csv}: no kernels (is the profiler window open? ncu's messages are in the .err file)")
    header = rows[0]
    try:
        i_name, i_time = header.index("Kernel Name"), header.index("gpu__time_duration.sum")
        i_rd, i_wr = header.index("dram__bytes_read.sum"), header.index("dram__bytes_write.sum")
    except ValueError as e:
        sys.exit(f"{args.csv}: missing column ({e})")
    # Row 1 holds the units (ns / us / ms, byte / Kbyte / Mbyte / Gbyte); one this tool does not know is an error, not
    # a guess.
    units = rows[1]
    time_ms = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0}
    byte_scale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}

    def scale_of(table, column):
        unit = units[column]
        if unit not in table:
            sys.exit(f"{args.csv}: column {header[column]!r} in unknown unit {unit!r} (known: {', '.join(table)})")
        return table[unit]

    time_scale = scale_of(time_ms, i_time)
    rd_scale, wr_scale = scale_of(byte_scale, i_rd), scale_of(byte_scale, i_wr)
    per = collections.defaultdict(lambda: [0, 0.0, 0.0])  # calls, ms, bytes
    for r in rows[2:]:
        if len(r) <= max(i_name, i_time, i_rd, i_wr):
            continue
        k = per[short_name(r[i_name])]
        k[0] += 1
        k[1] += to_float(r[i_time]) * time_scale
        k[2] += to_float(r[i_rd]) * rd_scale + to_float(r[i_wr]) * wr_scale
    total_ms = sum(v[1] for v in per.values()) / args.steps
    total_bytes = sum(v[2] for v in per.values()) / args.steps
    floor_ms = total_bytes / (args.copy_tbs * 1e12) * 1e3
    print(f"per step: {sum(v[0] for v in per.values()) / args.steps:.0f} kernels, {total_ms:.3f} ms alone, "
          f"{total_bytes / 1e9:.3f} GB of DRAM traffic ({floor_ms:.3f} ms at {args.copy_tbs} TB/s: "
          f"{100 * floor_ms / total_ms:.0f}% of the kernels' time)")
    print(f"{'ms/step':>8} {'share':>6} {'calls':>6} {'MB/step':>9} {'TB/s':>6}  kernel")
    for name, (calls, ms, nbytes) in sorted(per.items(), key=lambda kv: -kv[1][1]):
        ms_step, mb_step = ms / args.steps, nbytes / args.steps / 1e6
        rate = nbytes / (ms * 1e-3) / 1e12 if ms > 0 else 0.0
        share = 100 * ms_step / total_ms
        print(f"{ms_step:8.4f} {share:5.1f}% {calls / args.steps:6.1f} {mb_step:9.1f} {rate:6.2f}  {name}")


if __name__ == "__main__":
    main()
