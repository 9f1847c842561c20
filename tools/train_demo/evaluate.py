#!/usr/bin/env python3
"""Held-out evaluation of the demo model (models/volt-demo-vl): the same 200 questions answered greedily by the
PyTorch reference and by Volt's CPU backend, their accuracy, and their agreement.

The questions are data.eval_items(): seeds from 10^9 upwards (training never reaches them), 144 about maps (16 per
question type) and 56 about documents. Each is asked as a user would ask Volt: the map as an attached PNG image, the
document as an attached text file, then the question, in a fresh conversation.
  - PyTorch: tools/vl01_reference.py's model (HF CLIPVisionModel + projector + patched MiniMaxForCausalLM) in fp32
    from the bf16 checkpoint, the prompt rendered by the chat template through transformers, the VL-01 processor's
    crops computed with PIL; greedy argmax chain of FULL forwards (no cache; design.md: the HF cache path is not a
    reference), until <end_of_sentence>. The smallest top-1/top-2 logit gap along the chain is recorded: a
    mismatch at a near-tie is rounding, one at a clear gap is a bug.
  - Volt: the Python binding (bindings/python/volt, ctypes over libvolt.so): Session.attach_image / attach_document,
    add_message(USER, question), reply(temperature=0) — the path `volt run` and the desktop app take.
Answers are compared after normalisation (case, white space, a final full stop: data.normalise_answer).

Outputs (--out-dir, default MODEL/eval): results.json (every item, both answers, token ids, gaps, prompt lengths,
Volt timings, the summary), expected.json (a few items with their inputs copied next to it, for the CTest that
checks Volt still gives the recorded answers), and with --update-readme the accuracy section of MODEL/README.md.

Run on the CPU machine (Pillow 13.0, which Volt's resampler reproduces byte for byte), from the repository root:
    python3 tools/train_demo/evaluate.py --model models/volt-demo-vl --library build-demo/lib/libvolt.so --update-readme
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import data  # noqa: E402

MAX_NEW = 48


def write_inputs(items: list[dict], work: str) -> None:
    """Each item's attachment as a file: the map as PNG (lossless, so Volt decodes the very pixels), the document as
    a text file under its own name (its name is part of the prompt)."""
    for it in items:
        d = os.path.join(work, it["id"])
        os.makedirs(d, exist_ok=True)
        if it["source"] == "map":
            it["input"] = os.path.join(d, "map.png")
            data.demo_map(it["seed"]).image.save(it["input"])
        else:
            it["input"] = os.path.join(d, it["doc_name"])
            with open(it["input"], "w", newline="\n") as f:
                f.write(it["doc_text"])


def greedy_verified(model, emb, eos: int):
    """Greedy chain, decoded fast through transformers' cache path, then verified by ONE full forward over prompt +
    answer: the chain is the full-forward greedy chain iff the argmax at every answer position is the next token
    (design.md: the cache path alone is not a reference). From the first disagreement, if any, it continues with
    full forwards only. Returns the new ids (with the final eos) and the smallest top-1/top-2 full-forward gap."""
    import torch

    lm = model.language_model
    embed = lm.model.embed_tokens.weight
    out = lm(inputs_embeds=emb, use_cache=True)
    past, logits = out.past_key_values, out.logits[0, -1]
    new = []
    for _ in range(MAX_NEW):
        t = int(logits.argmax())
        new.append(t)
        if t == eos:
            break
        out = lm(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
        past, logits = out.past_key_values, out.logits[0, -1]
    P = emb.shape[1]
    full_emb = torch.cat([emb, embed[new[:-1]][None]], 1) if len(new) > 1 else emb
    full = lm(inputs_embeds=full_emb, use_cache=False).logits[0, P - 1:].float()
    chain = full.argmax(-1).tolist()
    bad = next((j for j, (a, b) in enumerate(zip(chain, new)) if a != b), None)
    if bad is not None:  # the cache path drifted: redo from there with full forwards
        new = new[:bad] + [chain[bad]]
        gaps = [float(g) for g in (torch.topk(full[:bad + 1], 2).values @ torch.tensor([1.0, -1.0]))]
        while new[-1] != eos and len(new) < MAX_NEW:
            e = torch.cat([emb, embed[new][None]], 1)
            last = lm(inputs_embeds=e, use_cache=False).logits[0, -1].float()
            top = torch.topk(last, 2).values
            gaps.append(float(top[0] - top[1]))
            new.append(int(last.argmax()))
        return new, min(gaps)
    top = torch.topk(full, 2).values
    return new, float((top[:, 0] - top[:, 1]).min())


def torch_answers(model_dir: str, items: list[dict], threads: int) -> list[dict]:
    import torch
    from PIL import Image

    import vl01_reference as vlr

    torch.set_num_threads(threads)
    model = vlr.load_vl01(model_dir)
    enc = data.Encoder(model_dir)
    out = []
    for n, it in enumerate(items):
        t0 = time.time()
        counts, feats = [], None
        with torch.no_grad():
            if it["source"] == "map":
                with Image.open(it["input"]) as f:
                    img = f.convert("RGB")
                u8, geom = vlr.crops_u8(img)
                pix = vlr.normalise_u8(torch.from_numpy(u8))
                feats = model.image_features(pix, [dict(width=img.size[0], height=img.size[1], rows=geom["rows"],
                                                        cols=geom["cols"])])
                counts.append(vlr.num_tokens(*img.size)["tokens"])
            ids, _ = enc.encode(data.eval_messages(it), counts, add_generation_prompt=True)
            prompt_len = len(ids)
            emb = model.embed(torch.tensor([ids]), feats)
            new, min_gap = greedy_verified(model, emb, enc.eos_id)
        text = enc.tok.decode([t for t in new if t != enc.eos_id], skip_special_tokens=True)
        out.append(dict(ids=new, text=text, min_top2_gap=min_gap, prompt_tokens=prompt_len, seconds=time.time() - t0))
        if (n + 1) % 20 == 0:
            print(f"  pytorch {n + 1}/{len(items)}", flush=True)
    return out


def volt_answers(model_dir: str, items: list[dict]) -> list[dict]:
    sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
    import volt

    model = volt.Model(model_dir)
    out = []
    for n, it in enumerate(items):
        t0 = time.time()
        s = model.session()
        try:
            if it["source"] == "map":
                s.attach_image(it["input"])
            else:
                s.attach_document(it["input"])
            s.add_message(volt.Role.USER, it["question"])
            events = s.reply(max_new_tokens=MAX_NEW, temperature=0)
        finally:
            s.close()
        done = [e for e in events if e.type == "done"]
        toks = [e for e in events if e.type == "token"]
        d = done[-1] if done else None
        out.append(dict(ids=[e.token_id for e in toks], text="".join(e.text for e in toks),
                        prompt_tokens=d.prompt_tokens if d else None,
                        completion_tokens=d.completion_tokens if d else None,
                        prefill_seconds=getattr(d, "prefill_seconds", None) if d else None,
                        decode_seconds=getattr(d, "decode_seconds", None) if d else None,
                        seconds=time.time() - t0))
        if (n + 1) % 20 == 0:
            print(f"  volt {n + 1}/{len(items)}", flush=True)
    return out


def summarise(items: list[dict], torch_res, volt_res) -> dict:
    per = collections.OrderedDict()
    for it in items:
        per.setdefault(f"{it['source']}:{it['kind']}", dict(n=0, torch=0, volt=0, agree=0))
    totals = dict(n=0, torch=0, volt=0, agree=0)
    for i, it in enumerate(items):
        row = per[f"{it['source']}:{it['kind']}"]
        for r in (row, totals):
            r["n"] += 1
            if torch_res:
                r["torch"] += data.answer_correct(torch_res[i]["text"], it["answer"])
            if volt_res:
                r["volt"] += data.answer_correct(volt_res[i]["text"], it["answer"])
            if torch_res and volt_res:
                r["agree"] += strip_eos(torch_res[i]["ids"]) == strip_eos(volt_res[i]["ids"])
    return dict(per_kind=per, total=totals)


EOS = None


def strip_eos(ids: list[int]) -> list[int]:
    return ids[:-1] if ids and ids[-1] == EOS else ids


def markdown(summary: dict, meta: dict) -> str:
    t = summary["total"]
    lines = [f"Measured by `tools/train_demo/evaluate.py` on {meta['date']} ({meta['machine']}): {t['n']} held-out "
             "questions (seeds from 10^9; training used seeds below 10^7), asked as a user asks Volt (the map as an "
             "attached PNG, the document as an attached text file), greedy answers, exact match after "
             "normalising case and a final full stop.", ""]
    has_t, has_v = meta["torch"], meta["volt"]
    head = "| question type | n |" + (" PyTorch fp32 |" if has_t else "") + (" Volt CPU |" if has_v else "") + \
        (" same answer |" if has_t and has_v else "")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]

    def pct(a, n):
        return f"{a}/{n} ({100 * a / n:.0f}%)" if n else "-"

    for k, r in list(summary["per_kind"].items()) + [("**all**", t)]:
        row = f"| {k} | {r['n']} |"
        if has_t:
            row += f" {pct(r['torch'], r['n'])} |"
        if has_v:
            row += f" {pct(r['volt'], r['n'])} |"
        if has_t and has_v:
            row += f" {pct(r['agree'], r['n'])} |"
        lines.append(row)
    if has_t and has_v:
        gaps = meta.get("min_top2_gap")
        lines += ["", f"The two agree on {t['agree']} of {t['n']} answers token for token"
                  + (f"; the smallest top-1/top-2 logit gap along the PyTorch answers was {gaps:.3f}" if gaps else "")
                  + "."]
    return "\n".join(lines)


def map_kind_of(question: str) -> str:
    for kind, forms in data.MAP_QUESTIONS.items():
        if question in forms:
            return kind
    raise SystemExit(f"--demo-question {question!r} is none of data.MAP_QUESTIONS' (distance questions name cities)")


def write_demo(model_dir: str, question: str, out_dir: str, threads: int, work: str) -> dict:
    """The sample `make demo` shows: the first held-out map (in evaluation order) on which Volt answers `question`
    right and the PyTorch reference gives the same answer. Writes MODEL/samples/map.png, and MODEL/samples/towns.md
    (a held-out document, for trying --doc), and returns the record for expected.json."""
    kind = map_kind_of(question)
    candidates = [it for it in data.eval_items() if it["source"] == "map"]
    for it in candidates:
        m = data.demo_map(it["seed"])
        truth = dict((k, a) for k, _, a in m.questions)[kind]
        trial = dict(it, id=f"demo-{it['seed']}", kind=kind, question=question, answer=truth)
        write_inputs([trial], work)
        v = volt_answers(model_dir, [trial])[0]
        if not data.answer_correct(v["text"], truth):
            continue
        t = torch_answers(model_dir, [trial], threads)[0]
        if strip_eos(t["ids"]) != strip_eos(v["ids"]):
            print(f"demo candidate {it['seed']}: PyTorch and Volt differ; skipped")
            continue
        samples = os.path.join(model_dir, "samples")
        os.makedirs(samples, exist_ok=True)
        shutil.copyfile(trial["input"], os.path.join(samples, "map.png"))
        doc = next(i for i in data.eval_items() if i["source"] == "doc" and i["kind"] == "population")
        with open(os.path.join(samples, "towns.md"), "w", newline="\n") as f:
            f.write(doc["doc_text"])
        print(f"demo: held-out map seed {it['seed']} ({m.meta['size'][0]}x{m.meta['size'][1]}): {question!r} -> "
              f"{v['text']!r}")
        return dict(image="samples/map.png", seed=it["seed"], question=question, answer=v["text"],
                    answer_ids=strip_eos(v["ids"]), document="samples/towns.md", document_seed=doc["seed"])
    raise SystemExit(f"no held-out map on which Volt answers {question!r} correctly")


def main() -> int:
    ap = argparse.ArgumentParser(description="Held-out accuracy of the demo model: PyTorch reference vs Volt CPU.")
    ap.add_argument("--model", default=os.path.join(REPO, "models", "volt-demo-vl"))
    ap.add_argument("--items", type=int, default=200, help="evaluate N of the 200 held-out questions, evenly spaced")
    ap.add_argument("--library", help="libvolt.so to use (sets VOLT_LIBRARY); default: the binding's search")
    ap.add_argument("--out-dir", help="where results.json/expected.json go (default MODEL/eval)")
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-volt", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    ap.add_argument("--update-readme", action="store_true", help="rewrite MODEL/README.md's accuracy section")
    ap.add_argument("--machine", default="2-core CPU development machine")
    ap.add_argument("--demo-question", default="Describe the map.",
                    help="the question `make demo` asks (Makefile DEMO_QUESTION); its sample map is chosen here")
    ap.add_argument("--demo-only", action="store_true",
                    help="only choose the demo sample and add it to an existing expected.json")
    args = ap.parse_args()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        ap.error(f"{args.model}: no config.json (not a model directory)")
    if args.library:
        if not os.path.isfile(args.library):
            ap.error(f"--library {args.library}: no such file")
        os.environ["VOLT_LIBRARY"] = os.path.abspath(args.library)
    import PIL
    if PIL.__version__ != "13.0.0":
        print(f"warning: Pillow {PIL.__version__}: Volt reproduces Pillow 13.0's resampling; images may differ",
              file=sys.stderr)
    global EOS
    with open(os.path.join(args.model, "config.json")) as f:
        EOS = json.load(f)["text_config"]["eos_token_id"]

    if not 1 <= args.items <= 200:
        ap.error("--items must be between 1 and 200")
    everything = data.eval_items()
    items = [everything[i * len(everything) // args.items] for i in range(args.items)]
    out_dir = args.out_dir or os.path.join(args.model, "eval")
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="volt-demo-eval-")
    if args.demo_only:
        try:
            path = os.path.join(out_dir, "expected.json")
            with open(path) as f:
                expected = json.load(f)
            expected["demo"] = write_demo(args.model, args.demo_question, out_dir, args.threads, work)
            with open(path, "w") as f:
                json.dump(expected, f, indent=1)
                f.write("\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    try:
        write_inputs(items, work)
        torch_res = volt_res = None
        if not args.skip_volt:
            t0 = time.time()
            volt_res = volt_answers(args.model, items)
            print(f"volt: {time.time() - t0:.0f} s")
        if not args.skip_torch:
            t0 = time.time()
            torch_res = torch_answers(args.model, items, args.threads)
            print(f"pytorch: {time.time() - t0:.0f} s")
        summary = summarise(items, torch_res, volt_res)

        mismatches = []
        for i, it in enumerate(items):
            if torch_res and volt_res:
                if torch_res[i]["prompt_tokens"] != volt_res[i]["prompt_tokens"]:
                    mismatches.append(f"{it['id']}: prompt {torch_res[i]['prompt_tokens']} tokens in PyTorch, "
                                      f"{volt_res[i]['prompt_tokens']} in Volt")
                if strip_eos(torch_res[i]["ids"]) != strip_eos(volt_res[i]["ids"]):
                    mismatches.append(f"{it['id']}: PyTorch {torch_res[i]['text']!r} {torch_res[i]['ids']} "
                                      f"(min top-2 gap {torch_res[i]['min_top2_gap']:.2e}) vs Volt "
                                      f"{volt_res[i]['text']!r} {volt_res[i]['ids']}")
        meta = dict(date=time.strftime("%Y-%m-%d"), machine=args.machine, torch=torch_res is not None,
                    volt=volt_res is not None)
        if torch_res:
            meta["min_top2_gap"] = min(r["min_top2_gap"] for r in torch_res)
        md = markdown(summary, meta)
        print(md)
        print(f"{len(mismatches)} mismatches" + "".join("\n  " + m for m in mismatches))

        results = dict(meta=meta, summary=summary, mismatches=mismatches, items=[])
        for i, it in enumerate(items):
            row = {k: v for k, v in it.items() if k not in ("input", "doc_text")}
            if torch_res:
                row["pytorch"] = torch_res[i]
            if volt_res:
                row["volt"] = volt_res[i]
            results["items"].append(row)
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")

        if torch_res and volt_res:
            # The CTest's cases, each with its input under out_dir/<id>/: one map of each size, one map described
            # (a longer answer), and two documents, among the items on which both agree.
            def agree(i):
                return strip_eos(torch_res[i]["ids"]) == strip_eos(volt_res[i]["ids"])

            picks, sizes = [], set()
            for i, it in enumerate(items):
                if it["source"] == "map" and agree(i) and tuple(it["size"]) not in sizes and it["kind"] != "describe":
                    sizes.add(tuple(it["size"]))
                    picks.append(i)
            picks += [i for i, it in enumerate(items) if it["kind"] == "describe" and agree(i)][:1]
            picks += [i for i, it in enumerate(items) if it["source"] == "doc" and agree(i)][:2]
            chosen = []
            for i in picks:
                it = items[i]
                d = os.path.join(out_dir, it["id"])
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                shutil.copyfile(it["input"], os.path.join(d, os.path.basename(it["input"])))
                chosen.append(dict(id=it["id"], source=it["source"],
                                   input=f"{it['id']}/{os.path.basename(it['input'])}", size=it.get("size"),
                                   question=it["question"], expected_answer=it["answer"],
                                   answer=volt_res[i]["text"], answer_ids=strip_eos(volt_res[i]["ids"]),
                                   prompt_tokens=volt_res[i]["prompt_tokens"]))
            with open(os.path.join(out_dir, "expected.json"), "w") as f:
                json.dump(dict(note="Greedy answers recorded by tools/train_demo/evaluate.py (Volt and the PyTorch "
                                    "reference agreed on each); tests/demo_model checks Volt still gives them. "
                                    "`answer` is the model's, right or wrong; `expected_answer` the true one.",
                               max_new_tokens=MAX_NEW, cases=chosen,
                               demo=write_demo(args.model, args.demo_question, out_dir, args.threads, work)),
                          f, indent=1)
                f.write("\n")

        if args.update_readme:
            path = os.path.join(args.model, "README.md")
            with open(path) as f:
                text = f.read()
            a, b = text.find("<!-- eval:begin -->"), text.find("<!-- eval:end -->")
            if a < 0 or b < a:
                sys.exit(f"{path}: no <!-- eval:begin --> ... <!-- eval:end --> section to replace")
            text = text[:a] + "<!-- eval:begin -->\n" + md + "\n" + text[b:]
            with open(path, "w") as f:
                f.write(text)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
