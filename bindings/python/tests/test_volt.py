"""The Python package over libvolt: loads the fixture model, streams a generation, cancels from another thread,
and compares logits with the reference and with the `volt logits` CLI."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import volt  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = os.path.join(REPO, "tests", "data", "tiny-text")
REF = os.path.join(TINY, "reference")


def ids(name):
    with open(os.path.join(REF, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def model():
    with volt.Model(TINY) as m:
        yield m


def test_version_and_info(model):
    assert volt.version()
    info = model.info
    assert info["model_type"] == "minimax_text_01"
    assert info["vocab_size"] == 512 and info["num_layers"] == 4 and info["num_softmax_layers"] == 2


def test_logits_match_reference_and_cli(model, tmp_path):
    prompt = ids("ids_256.json")
    got = model.logits(prompt)
    ref = np.load(os.path.join(REF, "logits_256.npy"))
    assert got.shape == ref.shape
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) <= 1e-4
    assert (got.argmax(-1) == ref.argmax(-1)).all()
    cli = os.environ.get("VOLT_CLI", os.path.join(REPO, "build", "bin", "volt"))
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps(prompt))
    out = tmp_path / "logits.npy"
    subprocess.run([cli, "logits", "--model", TINY, "--ids-file", str(ids_file), "--out", str(out)], check=True)
    assert np.array_equal(np.load(out), got)  # same code, same numbers


def test_stream_matches_greedy_reference(model):
    prompt, expected = ids("ids_257.json"), ids("greedy_257.json")
    session = model.session()
    events = list(session.stream(prompt, max_new_tokens=len(expected), temperature=0.0))
    tokens = [e.token_id for e in events if e.type == "token" and e.token_id >= 0]
    assert tokens == expected
    assert events[-1].type == "done" and events[-1].completion_tokens == len(expected)
    assert events[-1].finish_reason in (volt.FinishReason.LENGTH, volt.FinishReason.STOP)


def test_cancel_from_another_thread(model):
    session = model.session()
    first_token = threading.Event()
    seen = []

    def on_event(ev):
        seen.append(ev)
        if ev.type == "token":
            first_token.set()
        return True

    canceller = threading.Thread(target=lambda: (first_token.wait(10), session.cancel()))
    canceller.start()
    with pytest.raises(volt.VoltError) as err:
        session.generate([5, 6, 7], on_event, max_new_tokens=100000, temperature=0.0)
    canceller.join()
    assert err.value.status == volt.Status.CANCELLED
    assert seen[-1].type == "done" and seen[-1].finish_reason == volt.FinishReason.CANCELLED
    assert seen[-1].completion_tokens < 100000
    # The session works afterwards, and an idle cancel does not leak into the next run.
    session.cancel()
    events = session.generate([5, 6, 7], max_new_tokens=3, temperature=0.0)
    assert events[-1].type == "done" and events[-1].completion_tokens == 3


def test_closing_a_stream_early_cancels_it(model):
    session = model.session()
    stream = session.stream([9, 8, 7], max_new_tokens=100000, temperature=0.0)
    first = next(stream)
    assert first.type == "token"
    stream.close()
    assert len(session.generate([9, 8, 7], max_new_tokens=2, temperature=0.0)) >= 3


def test_errors_carry_status_and_message(model, tmp_path):
    with pytest.raises(volt.VoltError) as err:
        volt.Model(tmp_path / "missing")
    assert err.value.status == volt.Status.NOT_FOUND and "missing" in err.value.message
    with pytest.raises(volt.VoltError) as err:
        model.logits([1, 100000])
    assert err.value.status == volt.Status.INVALID_ARGUMENT and "100000" in err.value.message
    with pytest.raises(volt.VoltError) as err:
        model.session().generate([1], max_new_tokens=1, temperature=-2.0)
    assert err.value.status == volt.Status.INVALID_ARGUMENT
    with pytest.raises(volt.VoltError) as err:
        model.tokenize("hello")  # the fixture has no tokenizer
    assert err.value.status == volt.Status.NOT_FOUND


def test_progress_can_abort_a_load():
    phases = []
    with pytest.raises(volt.VoltError) as err:
        volt.Model(TINY, progress=lambda phase, fraction: phases.append(phase) or phase < 1)
    assert err.value.status == volt.Status.CANCELLED
    assert phases[0] == 0 and 1 in phases


def test_exception_in_callback_stops_and_propagates(model):
    def boom(ev):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        model.session().generate([1, 2], boom, max_new_tokens=50, temperature=0.0)


def test_device_choice_is_checked():
    with pytest.raises(volt.VoltError) as e:
        volt.Model(TINY, device="tpu")
    assert e.value.status == volt.Status.INVALID_ARGUMENT
    if volt.cuda_device_count() == 0:  # CPU-only machine or build: a clear refusal, never a crash
        with pytest.raises(volt.VoltError) as e:
            volt.Model(TINY, device="cuda")
        assert e.value.status in (volt.Status.INVALID_ARGUMENT, volt.Status.UNIMPLEMENTED)
    # Splitting over GPUs takes any distinct ids in rank order; a repeated one is refused before any GPU is touched.
    with pytest.raises(volt.VoltError) as e:
        volt.Model(TINY, device="cuda", gpu=[1, 1])
    assert e.value.status == volt.Status.INVALID_ARGUMENT and "both GPU 1" in str(e.value)
    if volt.cuda_device_count() < 3:  # GPU 2 is not there: the machine's refusal, not the list's
        with pytest.raises(volt.VoltError) as e:
            volt.Model(TINY, device="cuda", gpu=[2, 0])
        assert e.value.status in (volt.Status.INVALID_ARGUMENT, volt.Status.UNIMPLEMENTED)
        assert "consecutive" not in str(e.value)
    with pytest.raises(volt.VoltError) as e:
        volt.Model(TINY, device="cuda", gpu=[])
    assert e.value.status == volt.Status.INVALID_ARGUMENT


def test_expert_weights_choice_is_checked():
    with pytest.raises(volt.VoltError) as e:
        volt.Model(TINY, expert_weights="fp4")
    assert e.value.status == volt.Status.INVALID_ARGUMENT and "fp4" in e.value.message
    # Quantised experts are a CUDA feature: the CPU backend refuses them by name (the library's check).
    for w in ("fp8", "int8"):
        with pytest.raises(volt.VoltError) as e:
            volt.Model(TINY, expert_weights=w)
        assert e.value.status == volt.Status.INVALID_ARGUMENT and f"{w} needs VOLT_DEVICE_CUDA" in e.value.message
