"""Checks the procedural data: deterministic in the seed, answers re-derived independently, sizes varied."""
import os
import re
import sys
sys.path.insert(0, os.path.dirname(__file__))

from maps import make_map, check_map, SIZES  # noqa: E402
from documents import make_document  # noqa: E402


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


if __name__ == "__main__":
    test_maps_are_deterministic_and_consistent()
    test_documents_answer_from_their_text()
    print("ok")
