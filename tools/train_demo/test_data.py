"""Checks the procedural data: deterministic in the seed, answers re-derived independently, sizes varied; and the
demo model's chat samples (data.py): Volt's prompt layout, held-out seeds disjoint from training, the answer checker.
Runs under pytest (CTest demo_model_data) or as a script."""
import os
import random
import re
import sys

import pytest

pytest.importorskip("PIL", reason="the map generator draws with Pillow")
sys.path.insert(0, os.path.dirname(__file__))

from maps import make_map, check_map, legibility_problems, SIZES  # noqa: E402
from documents import make_document  # noqa: E402
import data  # noqa: E402

MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "models", "volt-demo-vl")


def test_maps_are_deterministic_and_consistent():
    sizes = set()
    bridge_counts = set()
    for seed in range(60):
        m = make_map(seed)
        check_map(m)
        sizes.add(m.meta["size"])
        bridge_counts.add(dict(m.qa)["How many bridges cross the river?"])
        again = make_map(seed)
        assert again.qa == m.qa and again.image.tobytes() == m.image.tobytes()
    assert len(sizes) >= 4, sizes            # any-resolution tiling sees several aspects
    assert bridge_counts >= {"1", "2"}, bridge_counts


def test_demo_maps_are_legible_and_consistent():
    """The demo's sizes and label size: every kept map passes check_map (which re-derives all nine answers) and has
    no legibility problem; the size choice does not change a seed's answers, only the picture's size."""
    kept = 0
    for seed in range(80):
        m = data.demo_map(seed)
        if m is None:
            continue
        kept += 1
        check_map(m)
        assert not legibility_problems(m)
        assert m.meta["size"] in data.DEMO_SIZES
        assert [k for k, _, _ in m.questions] == list(data.MAP_QUESTIONS)
    assert kept >= 40, kept


def test_documents_answer_from_their_text():
    for seed in range(100):
        d = make_document(seed)
        assert make_document(seed).text == d.text
        for q, a in d.qa:
            if q.startswith("How many"):
                rows = [l for l in d.text.splitlines() if re.match(r"^(\| \w+ \| \d+|- \w+: \d+)", l)]
                assert int(a) == len(rows), (seed, q, a)
            else:
                assert a.split()[0] in d.text, (seed, q, a)
        # The extreme-value questions, re-derived from the text; a tie would have two right answers and is left out.
        towns = [(n, int(p), int(y)) for n, p, y in re.findall(r"^\| (\w+) \| (\d+) \| (\d+) \|$", d.text, re.M)]
        items = [(n, int(p)) for n, p in re.findall(r"^- (\w+): (\d+) coins$", d.text, re.M)]
        column = dict(largest=(towns, 1, max), smallest=(towns, 1, min), oldest=(towns, 2, min),
                      most_expensive=(items, 1, max), cheapest=(items, 1, min))
        for kind, q, a in d.questions:
            if kind in column:
                rows, col, pick = column[kind]
                best = pick(r[col] for r in rows)
                winners = [r[0] for r in rows if r[col] == best]
                assert winners == [a], (seed, kind, winners, a)


def test_conversations_follow_volt_chat_session():
    """Images come first in the user message; documents are framed exactly as sdk/engine/chat_session.cpp does."""
    m = next(c for c in (data.map_conversation(s) for s in range(20)) if c is not None)
    first = m["messages"][0]
    assert first["role"] == "user" and first["content"][0] == {"type": "image"}
    assert [msg["role"] for msg in m["messages"]] == ["user", "assistant"] * (len(m["messages"]) // 2)
    assert all(p != {"type": "image"} for msg in m["messages"][1:] for p in msg["content"])
    d = data.doc_conversation(3)
    part = d["messages"][0]["content"][0]["text"]
    assert part == f"[document: {d['doc_name']}]\n{d['doc_text']}\n[end of document]\n\n"
    assert data.map_conversation(7) == data.map_conversation(7) or data.map_conversation(7) is None


def test_held_out_items():
    items = data.eval_items()
    assert len(items) == 200 and len({i["id"] for i in items}) == 200
    assert items == data.eval_items()
    assert min(i["seed"] for i in items) >= data.EVAL_SEED_BASE
    kinds = {(i["source"], i["kind"]) for i in items}
    assert {k for s, k in kinds if s == "map"} == set(data.MAP_QUESTIONS)
    assert {k for s, k in kinds if s == "doc"} == set(data.DOC_QUESTIONS)
    for it in items[:30]:
        m = data.demo_map(it["seed"])
        assert dict((k, a) for k, _, a in m.questions)[it["kind"]] == it["answer"] if it["source"] == "map" else True


def test_answer_checker():
    ok = data.answer_correct
    assert ok("Belmont", "Belmont") and ok(" belmont. ", "Belmont") and ok("20  km", "20 km")
    assert ok("A map with 3 cities, a lake.", "a map with 3 cities, a lake")
    assert not ok("Belmonte", "Belmont") and not ok("2", "20 km") and not ok("", "3")


def test_encoder_marks_answers():
    pytest.importorskip("transformers")
    if not os.path.isfile(os.path.join(MODEL, "tokenizer.json")):
        pytest.skip("models/volt-demo-vl has no tokenizer")
    enc = data.Encoder(MODEL)
    d = data.doc_conversation(5)
    ids, target = enc.encode(d["messages"], [])
    answers = [a["content"][0]["text"] for a in d["messages"][1::2]]
    marked = enc.tok.decode([i for i, t in zip(ids, target) if t])
    assert marked == "<end_of_sentence>".join(answers) + "<end_of_sentence>"
    m = next(c for c in (data.map_conversation(s) for s in range(20)) if c is not None)
    ids, target = enc.encode(m["messages"], [1176])
    assert ids.count(enc.image_id) == 1176 and not any(t for i, t in zip(ids, target) if i == enc.image_id)
    with pytest.raises(ValueError):
        enc.encode(m["messages"], [])


def test_seeds_are_deterministic_per_batch():
    # The training batches draw their sizes from the seed's own first random draw (train.py relies on it).
    for seed in range(50):
        m = make_map(seed, sizes=data.DEMO_SIZES, min_font=data.MAP_MIN_FONT) if data.demo_map(seed) else None
        if m is not None:
            assert m.meta["size"] == random.Random(seed).choice(data.DEMO_SIZES)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
