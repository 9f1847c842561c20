#!/usr/bin/env python3
"""Volt tokenizer vs Hugging Face `tokenizers`, single thread, same machine, same corpus (bench/RESULTS.md).

1. Builds a >= 10 MB mixed corpus from text already on the machine (Python's standard library sources: code and
   English docstrings; /usr/share/common-licenses: legal prose) plus generated multilingual text (CJK, Cyrillic,
   Arabic, Hebrew, Devanagari, Thai, emoji with ZWJ/skin tones, numbers, whitespace runs). Documents are separated
   by U+001E.
2. Trains byte-level BPE tokenizers on it with HF `tokenizers` (GPT-4o/o200k split regex + ByteLevel, and GPT-2's
   ByteLevel regex), carrying the MiniMax-01 special tokens.
3. Times HF `Tokenizer.encode` per document with RAYON_NUM_THREADS=1, and `volt_bench_tokenizer` (C++) on the same
   files; checks that both produce the same ids (FNV-1a checksum over all ids).

    python3 bench/tokenizer_bench.py --volt-bench build/bin/volt_bench_tokenizer [--work /tmp/volt_tok_bench]
"""
import argparse
import glob
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"          # HF tokenizers: one thread (set before import)
os.environ["TOKENIZERS_PARALLELISM"] = "false"

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from make_tokenizer_fixture import MINIMAX_SPECIAL, O200K_REGEX, SENTENCES  # noqa: E402

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

SEP = "\x1e"


def read_text(path, limit):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read(limit)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def multilingual_docs(rng, n):
    emoji = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵", "🧑🏿‍💻", "🙂"]
    docs = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(20, 60)):
            s = rng.choice(SENTENCES)
            if rng.random() < 0.2:
                s += " " + rng.choice(emoji)
            if rng.random() < 0.1:
                s += "  \t" + str(rng.randint(0, 10 ** 9))
            parts.append(s)
        docs.append(rng.choice(["\n", " ", "\n\n", "\r\n"]).join(parts))
    return docs


def build_corpus(path, target_bytes):
    rng = random.Random(2026)
    docs = []
    size = 0
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "**", "*.py"), recursive=True))
    files += sorted(glob.glob("/usr/share/common-licenses/*"))
    rng.shuffle(files)
    code_target = int(target_bytes * 0.75)
    for f in files:
        if size >= code_target:
            break
        t = read_text(f, 200_000)
        if not t or SEP in t:
            continue
        docs.append(t)
        size += len(t.encode())
    ml = multilingual_docs(rng, 4000)
    for d in ml:
        if size >= target_bytes:
            break
        docs.append(d)
        size += len(d.encode())
    rng.shuffle(docs)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(SEP.join(docs))
    return docs


def train(docs, kind, vocab_size):
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "gpt4o")))
    if kind == "gpt4o":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(O200K_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=MINIMAX_SPECIAL, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    return tok


def fnv1a(h, ids):
    for i in ids:
        v = i & 0xFFFFFFFF
        for k in range(4):
            h ^= (v >> (8 * k)) & 0xFF
            h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def bench_hf(tok_path, docs, passes):
    tok = Tokenizer.from_file(tok_path)
    times, tokens, h = [], 0, 0xcbf29ce484222325
    all_ids = None
    for p in range(passes):
        t = time.perf_counter()
        out = [tok.encode(d, add_special_tokens=False).ids for d in docs]
        times.append(time.perf_counter() - t)
        all_ids = out
    for ids in all_ids:
        tokens += len(ids)
        h = fnv1a(h, ids)
    return tok, times, tokens, f"{h:016x}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--volt-bench", required=True, help="path to volt_bench_tokenizer")
    ap.add_argument("--work", default="/tmp/volt_tok_bench")
    ap.add_argument("--corpus-mb", type=float, default=12.0)
    ap.add_argument("--vocab", type=int, default=100_000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    corpus = os.path.join(args.work, "corpus.txt")
    docs = build_corpus(corpus, int(args.corpus_mb * 1e6))
    corpus_bytes = os.path.getsize(corpus)
    results = {"machine": platform.processor() or platform.machine(), "cpu": cpu_model(), "corpus_bytes": corpus_bytes,
               "documents": len(docs), "runs": []}
    print(f"corpus: {corpus_bytes / 1e6:.1f} MB, {len(docs)} documents", file=sys.stderr)
    for kind in ["gpt4o", "gpt2"]:
        d = os.path.join(args.work, kind)
        os.makedirs(d, exist_ok=True)
        tok_path = os.path.join(d, "tokenizer.json")
        if not os.path.exists(tok_path):
            train(docs, kind, args.vocab).save(tok_path)
        tok, hf_times, hf_tokens, hf_sum = bench_hf(tok_path, docs, args.passes)
        # The long single document, built as the C++ side builds it (corpus repeated, blank lines between).
        out = subprocess.run([args.volt_bench, "--tokenizer", d, "--corpus", corpus, "--passes", str(args.passes)],
                             check=True, capture_output=True, text=True)
        volt = json.loads(out.stdout)
        long_doc = []
        size = 0
        while size < volt["long_doc_bytes"]:
            for doc in docs:
                long_doc.append(doc + "\n\n")
                size += len(long_doc[-1].encode())
                if size >= volt["long_doc_bytes"]:
                    break
        text = "".join(long_doc)
        t = time.perf_counter()
        hf_long = len(tok.encode(text, add_special_tokens=False).ids)
        hf_long_s = time.perf_counter() - t
        run = {
            "tokenizer": kind, "vocab": tok.get_vocab_size(), "tokens": hf_tokens,
            "ids_identical": volt["checksum"] == hf_sum and volt["tokens"] == hf_tokens,
            "hf": {"pass_s": hf_times, "first_mb_s": corpus_bytes / 1e6 / hf_times[0],
                   "best_mb_s": corpus_bytes / 1e6 / min(hf_times), "long_doc_tokens": hf_long, "long_doc_s": hf_long_s},
            "volt": volt,
        }
        run["speedup_best"] = run["volt"]["best_mb_s"] / run["hf"]["best_mb_s"]
        run["speedup_first"] = run["volt"]["first_mb_s"] / run["hf"]["first_mb_s"]
        results["runs"].append(run)
        print(f"{kind}: vocab {run['vocab']}, {hf_tokens} tokens, ids identical: {run['ids_identical']}\n"
              f"  HF tokenizers : first {run['hf']['first_mb_s']:.2f} MB/s, best {run['hf']['best_mb_s']:.2f} MB/s; "
              f"long doc {hf_long} tokens in {hf_long_s:.2f} s\n"
              f"  Volt          : first {volt['first_mb_s']:.2f} MB/s, best {volt['best_mb_s']:.2f} MB/s "
              f"({volt['best_tokens_s'] / 1e6:.2f} M tokens/s); long doc {volt['long_doc_tokens']} tokens in "
              f"{volt['long_doc_s']:.2f} s; load {volt['load_s']:.2f} s\n"
              f"  Volt / HF     : {run['speedup_first']:.2f}x first pass, {run['speedup_best']:.2f}x best pass")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if not all(r["ids_identical"] for r in results["runs"]):
        print("ERROR: Volt ids differ from HF tokenizers", file=sys.stderr)
        return 1
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
