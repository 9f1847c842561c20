"""The bundled demo model (models/volt-demo-vl) still answers as it did when it was evaluated.

tools/train_demo/evaluate.py recorded, for a few held-out maps (one of each size, one described) and documents, the
greedy answer Volt gave and the PyTorch reference agreed with (models/volt-demo-vl/eval/expected.json, inputs next
to it). Here Volt answers them again through the Python binding, as `volt run` and the desktop app ask: the
attachment, then the question, greedy. The token ids must be the recorded ones: any change in preprocessing,
packing, the chat template, the tokenizer or the backbone that moves an answer shows up here. `make demo`'s own
command (the CLI with the bundled sample map) is checked too when VOLT_CLI names the binary.
"""
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "bindings", "python"))
import volt  # noqa: E402

MODEL = os.path.join(REPO, "models", "volt-demo-vl")
with open(os.path.join(MODEL, "eval", "expected.json")) as f:
    EXPECTED = json.load(f)


@pytest.fixture(scope="module")
def model():
    with volt.Model(MODEL) as m:
        yield m


def test_model_is_the_demo_vl_model(model):
    info = model.info
    assert info["model_type"] == "minimax_vl_01" and info["is_vision_language"] and info["has_tokenizer"]
    size = sum(os.path.getsize(os.path.join(MODEL, n)) for n in os.listdir(MODEL)
               if os.path.isfile(os.path.join(MODEL, n)))
    assert size <= 20e6, f"the bundled model directory is {size / 1e6:.1f} MB (at most 20 MB)"


@pytest.mark.parametrize("case", EXPECTED["cases"], ids=[c["id"] for c in EXPECTED["cases"]])
def test_recorded_answer(model, case):
    session = model.session()
    try:
        path = os.path.join(MODEL, "eval", case["input"])
        if case["source"] == "map":
            tokens = session.attach_image(path)
            assert tokens > 576
        else:
            session.attach_document(path)
        session.add_message(volt.Role.USER, case["question"])
        events = session.reply(max_new_tokens=EXPECTED["max_new_tokens"], temperature=0)
    finally:
        session.close()
    done = events[-1]
    assert done.type == "done", events[-1]
    ids = [e.token_id for e in events if e.type == "token"]
    if ids and ids[-1] == model.info["eos_token_id"]:
        ids = ids[:-1]
    text = "".join(e.text for e in events if e.type == "token")
    assert done.prompt_tokens == case["prompt_tokens"]
    assert (ids, text) == (case["answer_ids"], case["answer"]), f"{case['question']!r} -> {text!r}"


def test_makefile_asks_the_recorded_question():
    """The Makefile's demo settings are the ones the recorded demo answer belongs to."""
    with open(os.path.join(REPO, "Makefile")) as f:
        settings = dict(re.findall(r"^(DEMO_\w+) \?= (.*)$", f.read(), re.M))
    demo = EXPECTED["demo"]
    assert settings["DEMO_MODEL"] == "models/volt-demo-vl"
    assert settings["DEMO_IMAGE"] == "models/volt-demo-vl/" + demo["image"]
    assert settings["DEMO_QUESTION"] == demo["question"]


def test_make_demo_command():
    """`make demo`: volt run with the bundled sample map and question prints the recorded answer."""
    cli = os.environ.get("VOLT_CLI")
    if not cli:
        pytest.skip("VOLT_CLI is not set (CTest sets it to the built volt binary)")
    demo = EXPECTED["demo"]
    r = subprocess.run([cli, "run", "--model", MODEL, "--image", os.path.join(MODEL, demo["image"]),
                        "--prompt", demo["question"], "--temperature", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == demo["answer"], (r.stdout, r.stderr)
