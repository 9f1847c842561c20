"""Images through the C ABI on tests/data/tiny-vl-chat (the tiny VL model with a chat tokenizer): an image from a
path, from encoded bytes and from an RGB array gives the same tokens and the same answer; token costs are known
before anything is encoded; budgets refuse instead of downscaling; forks branch a conversation without recomputing
it; cancelling from another thread leaves the session usable."""
import os
import struct
import sys
import threading
import zlib

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import volt  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
VL = os.path.join(REPO, "tests", "data", "tiny-vl-chat")
TEXT = os.path.join(REPO, "tests", "data", "tiny-chat")
PHOTO = os.path.join(REPO, "tests", "data", "vision", "images", "photo_640x480.jpg")


def png_bytes(rgb: np.ndarray) -> bytes:
    """A minimal PNG encoder (8-bit RGB, no filter), so the test needs no imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def picture(w=300, h=200) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 7) % 256], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def model():
    with volt.Model(VL) as m:
        yield m


def ask(model, image, question="What is shown?", n=5):
    s = model.session()
    tokens = s.attach_image(image)
    s.add_message(volt.Role.USER, question)
    events = s.reply(max_new_tokens=n, temperature=0.0)
    return tokens, [e.token_id for e in events if e.type == "token" and e.token_id >= 0], events[-1]


def test_path_bytes_and_array_agree(model):
    rgb = picture()
    encoded = png_bytes(rgb)
    t_arr, ids_arr, done = ask(model, rgb)
    t_png, ids_png, _ = ask(model, encoded)
    assert t_arr == t_png == model.image_tokens(rgb)
    assert ids_arr == ids_png and len(ids_arr) == 5
    assert done.type == "done" and done.prompt_tokens > t_arr
    assert done.prefill_seconds > 0 and done.decode_seconds > 0
    img = volt.Image(PHOTO)
    assert img.size == (640, 480)
    assert model.image_tokens(img) == 2340 == model.image_tokens(PHOTO)
    with open(PHOTO, "rb") as f:
        assert ask(model, f.read())[1] == ask(model, img)[1]


def test_bad_images_and_budgets(model):
    with pytest.raises(volt.VoltError) as e:
        volt.Image("/nonexistent/map.png")
    assert e.value.status == volt.Status.NOT_FOUND and "/nonexistent/map.png" in e.value.message
    with pytest.raises(volt.VoltError) as e:
        volt.Image(png_bytes(picture())[:60], name="cut.png")
    assert "cut.png" in e.value.message
    with pytest.raises(volt.VoltError):
        volt.Image(np.zeros((4, 4), dtype=np.uint8))  # not [h, w, 3]
    s = model.session(max_tokens_per_image=1000)
    with pytest.raises(volt.VoltError) as e:
        s.attach_image(PHOTO)
    assert e.value.status == volt.Status.RESOURCE_EXHAUSTED and "2340 tokens" in e.value.message
    with volt.Model(TEXT) as text_model:
        with pytest.raises(volt.VoltError) as e:
            text_model.session().attach_image(PHOTO)
        assert e.value.status == volt.Status.INVALID_ARGUMENT and "text-only" in e.value.message


def test_fork_regenerates_without_recomputing(model):
    s = model.session()
    s.attach_image(PHOTO)
    s.add_message(volt.Role.USER, "Describe it.")
    branch = s.fork()
    first = [e.token_id for e in s.reply(max_new_tokens=4, temperature=0.0) if e.type == "token"]
    again = [e.token_id for e in branch.reply(max_new_tokens=4, temperature=0.0) if e.type == "token"]
    assert first == again
    held = s.num_tokens
    s.add_message(volt.Role.USER, "More?")
    edit = s.fork()
    done = s.reply(max_new_tokens=3, temperature=0.0)[-1]
    assert done.reused_tokens == held  # the image and the first turn ran once
    edit.truncate_messages(2)
    edit.add_message(volt.Role.USER, "Less?")
    assert edit.reply(max_new_tokens=3, temperature=0.0)[-1].reused_tokens == held
    assert s.num_messages == 4 and edit.num_messages == 4


def test_cancel_from_another_thread(model):
    s = model.session()
    s.attach_image(PHOTO)
    s.add_message(volt.Role.USER, "Talk.")
    started = threading.Event()

    def on_event(ev):
        if ev.type == "token":
            started.set()

    canceller = threading.Thread(target=lambda: (started.wait(30), s.cancel()))
    canceller.start()
    with pytest.raises(volt.VoltError) as e:
        s.reply(on_event, max_new_tokens=10_000, temperature=0.0)
    canceller.join()
    assert e.value.status == volt.Status.CANCELLED
    s.add_message(volt.Role.USER, "Again.")
    assert s.reply(max_new_tokens=2, temperature=0.0)[-1].type == "done"
