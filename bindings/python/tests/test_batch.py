"""volt.Batch (continuous batching through the C ABI) on tests/data/tiny-text: every request gets exactly what
Session.generate gives its prompt alone (greedy and seeded sampling, a queue longer than the batch, requests joining
while others decode), a cancel from another thread ends one request while the others finish, a cancelled queued
request never runs, released requests are forgotten (results read before stay valid), and bad input is refused with
a clear error."""
import json
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import volt  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TINY = os.path.join(REPO, "tests", "data", "tiny-text")

PROMPTS = [[(k * 131 + i * 37 + 5) % 512 for i in range(3 + 7 * k)] for k in range(5)]
OPTIONS = [dict(max_new_tokens=4 + 3 * k, temperature=0.0) if k % 2 == 0 else
           dict(max_new_tokens=4 + 3 * k, temperature=0.9, top_k=50, top_p=0.95, seed=1000 + k) for k in range(5)]


@pytest.fixture(scope="module")
def model():
    with volt.Model(TINY) as m:
        yield m


def alone(model, prompt, **options):
    events = model.session(max_context=options.pop("max_context", 0)).generate(prompt, **options)
    return [e.token_id for e in events if e.type == "token" and e.token_id >= 0], events[-1]


def test_each_request_gets_what_it_gets_alone(model):
    expected = [alone(model, p, **o) for p, o in zip(PROMPTS, OPTIONS)]
    assert expected[1][0] != alone(model, PROMPTS[1], max_new_tokens=7, temperature=0.0)[0]  # sampling differs
    with model.batch(max_batch=2, prefill_chunk=8) as batch:
        events = {}
        ids = []
        for k in range(2):
            ids.append(batch.submit(PROMPTS[k], lambda ev, k=k: events.setdefault(k, []).append(ev), **OPTIONS[k]))
        assert batch.queued == 2 and batch.running == 0
        assert batch.step() == 2 and batch.running == 2
        for k in range(2, 5):  # join while the first two decode
            ids.append(batch.submit(PROMPTS[k], lambda ev, k=k: events.setdefault(k, []).append(ev), **OPTIONS[k]))
        batch.run()
        assert batch.running == 0 and batch.queued == 0
        for k, request in enumerate(ids):
            tokens, done = expected[k]
            assert batch.finished(request)
            assert [e.token_id for e in events[k] if e.type == "token"] == tokens
            assert events[k][-1].type == "done" and [e.type for e in events[k]].count("done") == 1
            assert events[k][-1].completion_tokens == done.completion_tokens == len(tokens)
            r = batch.result(request)
            assert r.ok and r.message == "" and r.ids == tokens
            assert r.finish_reason == volt.FinishReason.LENGTH and r.prompt_tokens == len(PROMPTS[k])
            assert r.prefill_seconds > 0 and r.decode_seconds > 0 and r.tokens_per_second > 0


def test_generate_and_the_context_rule(model):
    with model.batch(max_batch=3, max_context=12) as batch:
        options = dict(max_new_tokens=30, temperature=0.7, seed=5)
        got = batch.generate(PROMPTS[:2], **options)
        assert got == [alone(model, p, max_context=12, **options)[0] for p in PROMPTS[:2]]
        assert len(got[1]) == 12 - len(PROMPTS[1]) + 1  # the context filled up (the last id needs no room), as alone
        with pytest.raises(volt.VoltError) as err:  # generate() released its requests (ids 0 and 1)
            batch.result(0)
        assert err.value.status == volt.Status.NOT_FOUND and "released" in err.value.message


def test_cancel_from_another_thread_while_others_finish(model):
    batch = model.batch()
    second_token, cancelled = threading.Event(), threading.Event()
    seen = []

    def on_b(ev):  # waits (in the step) until the other thread has cancelled: B ends exactly here
        seen.append(ev)
        if ev.type == "token" and len(seen) == 2:
            second_token.set()
            assert cancelled.wait(10)

    a = batch.submit([11, 22, 33], max_new_tokens=10, temperature=0.0)
    b = batch.submit([7, 8, 9], on_b, max_new_tokens=1000, temperature=0.0)
    c = batch.submit([1, 2, 3, 4], max_new_tokens=6, seed=3)
    canceller = threading.Thread(target=lambda: (second_token.wait(10), batch.cancel(b), cancelled.set()))
    canceller.start()
    batch.run()
    canceller.join()
    rb = batch.result(b)
    assert rb.status == volt.Status.CANCELLED and rb.finish_reason == volt.FinishReason.CANCELLED
    assert len(rb.ids) == 2 and "volt_batch_cancel" in rb.message
    assert [e.type for e in seen] == ["token", "token", "done"]
    assert batch.result(a).ids == alone(model, [11, 22, 33], max_new_tokens=10, temperature=0.0)[0]
    assert batch.result(c).ids == alone(model, [1, 2, 3, 4], max_new_tokens=6, seed=3)[0]
    batch.cancel(a)  # finished: no effect
    assert batch.result(a).ok


def test_cancel_of_a_queued_request_never_runs_it(model):
    with model.batch(max_batch=1) as batch:  # B waits while A runs
        seen_b = []
        a = batch.submit([11, 22, 33], max_new_tokens=8, temperature=0.0)
        b = batch.submit(list(range(40, 80)), seen_b.append, max_new_tokens=8, temperature=0.0)
        c = batch.submit([1, 2, 3, 4], max_new_tokens=5, seed=3)
        assert batch.step() == 3 and batch.queued == 2
        batch.cancel(b)
        assert batch.step() == 2 and batch.queued == 1 and batch.running == 1  # B ended at the start of this step
        assert [e.type for e in seen_b] == ["done"] and seen_b[0].finish_reason == volt.FinishReason.CANCELLED
        rb = batch.result(b)
        assert rb.status == volt.Status.CANCELLED and rb.ids == [] and rb.completion_tokens == 0
        assert rb.prompt_tokens == 40 and rb.prefill_seconds == 0 and "volt_batch_cancel" in rb.message
        batch.run()
        assert len(seen_b) == 1
        assert batch.result(a).ids == alone(model, [11, 22, 33], max_new_tokens=8, temperature=0.0)[0]
        assert batch.result(c).ids == alone(model, [1, 2, 3, 4], max_new_tokens=5, seed=3)[0]


def test_release_forgets_finished_requests(model):
    with model.batch() as batch:
        a = batch.submit([3, 4, 5], max_new_tokens=4, temperature=0.0)
        b = batch.submit([3, 4, 5], max_new_tokens=50, temperature=0.0)
        with pytest.raises(volt.VoltError) as err:
            batch.release(a)
        assert err.value.status == volt.Status.INVALID_ARGUMENT and "not finished" in err.value.message
        batch.step()  # A's prompt
        batch.step()  # B's, and a decode step for both
        batch.cancel(b)
        batch.run()
        ra, rb = batch.result(a), batch.result(b)
        batch.release(a)
        batch.release(b)
        # The results read before stay whole (copies, messages included).
        assert ra.ok and ra.ids == alone(model, [3, 4, 5], max_new_tokens=4, temperature=0.0)[0]
        assert rb.status == volt.Status.CANCELLED and "volt_batch_cancel" in rb.message and len(rb.ids) >= 1
        for call in (batch.result, batch.release, batch.cancel):
            with pytest.raises(volt.VoltError) as err:
                call(a)
            assert err.value.status == volt.Status.NOT_FOUND and "released" in err.value.message
        assert not batch.finished(b)
        with pytest.raises(volt.VoltError) as err:
            batch.release(999)
        assert err.value.status == volt.Status.NOT_FOUND and "released" not in err.value.message
        c = batch.submit([3, 4, 5], max_new_tokens=4, temperature=0.0)
        assert c not in (a, b)  # ids are never reused
        batch.run()
        assert batch.result(c).ids == ra.ids


def test_callback_stops_or_raises_for_its_request_only(model):
    with model.batch() as batch:
        stopped = batch.submit([5, 6], lambda ev: ev.type != "token", max_new_tokens=50, temperature=0.0)

        def boom(ev):
            raise KeyError("from the callback")
        raising = batch.submit([5, 6], boom, max_new_tokens=50, temperature=0.0)
        other = batch.submit([5, 6], max_new_tokens=5, temperature=0.0)
        with pytest.raises(KeyError):
            batch.run()
        batch.run()
        assert batch.result(stopped).status == volt.Status.CANCELLED and len(batch.result(stopped).ids) == 1
        assert "callback" in batch.result(stopped).message
        assert batch.result(raising).status == volt.Status.CANCELLED
        assert batch.result(other).ids == alone(model, [5, 6], max_new_tokens=5, temperature=0.0)[0]


def test_bad_arguments_are_refused(model):
    for params, field in [(dict(max_batch=0), "max_batch"), (dict(prefill_chunk=0), "prefill_chunk"),
                          (dict(memory_budget_bytes=-1), "memory_budget_bytes"), (dict(max_context=-1), "max_context")]:
        with pytest.raises(volt.VoltError) as err:
            model.batch(**params)
        assert err.value.status == volt.Status.INVALID_ARGUMENT and field in err.value.message
    with model.batch() as batch:
        with pytest.raises(volt.VoltError) as err:
            batch.submit([])
        assert err.value.status == volt.Status.INVALID_ARGUMENT and "empty" in err.value.message
        with pytest.raises(volt.VoltError) as err:
            batch.submit([1, 100000])
        assert err.value.status == volt.Status.INVALID_ARGUMENT and "100000" in err.value.message
        with pytest.raises(volt.VoltError) as err:
            batch.submit([1], temperature=-2.0)
        assert err.value.status == volt.Status.INVALID_ARGUMENT
        with pytest.raises(TypeError):
            batch.submit([1], colour="red")
        with pytest.raises(volt.VoltError) as err:
            batch.result(12345)
        assert err.value.status == volt.Status.NOT_FOUND
        with pytest.raises(volt.VoltError) as err:
            batch.cancel(12345)
        assert err.value.status == volt.Status.NOT_FOUND
        request = batch.submit([1, 2], max_new_tokens=3)
        with pytest.raises(volt.VoltError) as err:
            batch.result(request)
        assert err.value.status == volt.Status.INVALID_ARGUMENT and "not finished" in err.value.message
        with pytest.raises(volt.VoltError) as err:
            batch.generate([[1, 2], [3, 512]])
        assert "prompt 1" in err.value.message and "512" in err.value.message
    with model.batch(memory_budget_bytes=1000) as tight:
        with pytest.raises(volt.VoltError) as err:
            tight.submit([1, 2, 3])
        assert err.value.status == volt.Status.RESOURCE_EXHAUSTED and "1000 bytes" in err.value.message
