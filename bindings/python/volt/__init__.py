"""Python bindings for Volt over its stable C ABI (libvolt.so, volt.h) through ctypes.

    import volt
    model = volt.Model("tests/data/tiny-text")
    session = model.session()
    for event in session.stream([1, 2, 3], max_new_tokens=8, temperature=0):
        print(event.token_id, event.text)

The library is found through $VOLT_LIBRARY, then next to this package's source tree (build/lib), then the system
library path. Errors raise VoltError carrying the status code and Volt's one-line message.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from . import _abi

__all__ = ["VoltError", "Model", "Session", "Batch", "BatchResult", "Image", "Event", "version", "cuda_device_count",
           "Status", "FinishReason", "Role"]


class Status:
    OK, INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, RESOURCE_EXHAUSTED, CANCELLED, UNIMPLEMENTED, INTERNAL = range(8)


class Role:
    SYSTEM, USER, ASSISTANT = range(3)


class FinishReason:
    LENGTH, STOP, CONTEXT, CANCELLED = range(4)


class VoltError(RuntimeError):
    """A failed Volt call: `status` is the volt_status code, the message says what was wrong and where."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{_lib().volt_status_name(status).decode()}: {message}")
        self.status = status
        self.message = message


_LIB = None
_LIB_LOCK = threading.Lock()


def _lib() -> ctypes.CDLL:
    global _LIB
    with _LIB_LOCK:
        if _LIB is None:
            candidates = []
            if os.environ.get("VOLT_LIBRARY"):
                candidates.append(os.environ["VOLT_LIBRARY"])
            repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
            candidates.append(os.path.join(repo, "build", "lib", "libvolt.so"))
            found = ctypes.util.find_library("volt")
            if found:
                candidates.append(found)
            errors = []
            for c in candidates:
                try:
                    lib = ctypes.CDLL(c)
                    break
                except OSError as e:
                    errors.append(f"{c}: {e}")
            else:
                raise OSError("libvolt not found (set VOLT_LIBRARY): " + "; ".join(errors))
            _abi.declare(lib)
            if lib.volt_abi_major() != _abi.ABI_MAJOR:
                raise OSError(f"libvolt ABI major {lib.volt_abi_major()} != bindings' {_abi.ABI_MAJOR}")
            _LIB = lib
        return _LIB


def _check(status: int) -> None:
    if status != Status.OK:
        raise VoltError(status, _lib().volt_last_error_message().decode("utf-8", "replace"))


def version() -> str:
    return _lib().volt_version().decode()


def cuda_device_count() -> int:
    """GPUs this build and driver can use (0 in a CPU-only build)."""
    return _lib().volt_cuda_device_count()


@dataclass
class Event:
    """One streamed generation event (see volt_event in volt.h)."""
    type: str                      # "token", "done" or "error"
    token_id: int = -1
    text: str = ""
    finish_reason: int = -1
    prompt_tokens: int = 0
    reused_tokens: int = 0
    completion_tokens: int = 0
    prefill_seconds: float = 0.0   # done: running the prompt (image encoding included)
    decode_seconds: float = 0.0    # done: sampling and decode steps
    tokens_per_second: float = 0.0
    status: int = 0


def _event_from_c(e: "_abi.Event") -> Event:
    text = ctypes.string_at(e.text, e.text_len).decode("utf-8") if e.text else ""
    if e.type == _abi.EVENT_TOKEN:
        return Event("token", token_id=e.token_id, text=text)
    if e.type == _abi.EVENT_DONE:
        return Event("done", finish_reason=e.finish_reason, prompt_tokens=e.prompt_tokens,
                     reused_tokens=e.reused_tokens, completion_tokens=e.completion_tokens,
                     prefill_seconds=e.prefill_seconds, decode_seconds=e.decode_seconds,
                     tokens_per_second=e.tokens_per_second)
    return Event("error", text=text, status=e.status)


class _Owned:
    """Owns a C handle (self._handle), freed by the volt_*_destroy function named by _destroy on close(), at garbage
    collection, or at the end of a `with` block."""
    _destroy = ""

    def close(self) -> None:
        if getattr(self, "_handle", None):
            getattr(_lib(), self._destroy)(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Image(_Owned):
    """Decoded pixels to attach to a conversation (immutable; any thread). From a file path, encoded bytes (a file's
    contents), or an RGB array (numpy uint8 [height, width, 3], or anything exposing that buffer)."""
    _destroy = "volt_image_destroy"

    def __init__(self, source, name: str | None = None):
        handle = ctypes.c_void_p()
        lib = _lib()
        if isinstance(source, (str, os.PathLike)):
            _check(lib.volt_image_load_file(os.fspath(source).encode(), ctypes.byref(handle)))
        elif isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            _check(lib.volt_image_load_bytes(data, len(data), name.encode() if name else None, ctypes.byref(handle)))
        else:
            import numpy as np
            arr = np.ascontiguousarray(source, dtype=np.uint8)
            if arr.ndim != 3 or arr.shape[2] != 3:
                raise VoltError(Status.INVALID_ARGUMENT, f"RGB image array must be [height, width, 3], got {arr.shape}")
            _check(lib.volt_image_from_rgb(arr.ctypes.data_as(ctypes.c_void_p), arr.shape[1], arr.shape[0], 0,
                                           ctypes.byref(handle)))
        self._handle = handle

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) after EXIF orientation."""
        w, h = ctypes.c_int32(), ctypes.c_int32()
        _check(_lib().volt_image_size(self._handle, ctypes.byref(w), ctypes.byref(h)))
        return w.value, h.value


def _as_image(image) -> tuple["Image", bool]:
    """An Image for `image` (an Image, a path, bytes or an RGB array) and whether it was made here (to close)."""
    return (image, False) if isinstance(image, Image) else (Image(image), True)


class Model(_Owned):
    """A loaded model (immutable, shareable between threads and sessions)."""
    _destroy = "volt_model_destroy"

    def __init__(self, path: str | os.PathLike, progress: Callable[[int, float], bool] | None = None,
                 device: str = "cpu", gpu: int | Sequence[int] = 0, expert_weights: str = "bf16"):
        """device "cpu", or "cuda" (a build with CUDA): the model on GPU `gpu`, or split over the GPUs listed
        (any distinct ids in rank order, e.g. [0, 1] or [2, 5]; NCCL). expert_weights (cuda): "bf16" as in the
        checkpoint, or quantised at load: "fp8" (e4m3) or "int8" (weight-only), half the expert bytes."""
        lib = _lib()
        params = _abi.ModelParams()
        lib.volt_model_params_init(ctypes.byref(params))
        self._path = os.fspath(path).encode()
        params.path = self._path
        if device not in ("cpu", "cuda"):
            raise VoltError(Status.INVALID_ARGUMENT, f"device {device!r}: expected 'cpu' or 'cuda'")
        if expert_weights not in _abi.EXPERT_WEIGHTS:
            raise VoltError(Status.INVALID_ARGUMENT,
                            f"expert_weights {expert_weights!r}: expected one of {sorted(_abi.EXPERT_WEIGHTS)}")
        params.expert_weights = _abi.EXPERT_WEIGHTS[expert_weights]
        ids = [gpu] if isinstance(gpu, int) else [int(g) for g in gpu]
        if not ids:
            raise VoltError(Status.INVALID_ARGUMENT, "gpu: an empty list of GPUs")
        self._gpu_ids = (ctypes.c_int32 * len(ids))(*ids)
        if device == "cuda":
            params.device = 1
            params.gpu_ids = self._gpu_ids
            params.num_gpus = len(ids)
        cb = None
        if progress is not None:
            # The callback returns True to continue; the C side wants nonzero to abort.
            cb = _abi.PROGRESS_FN(lambda _ud, phase, fraction: 0 if progress(phase, fraction) in (None, True) else 1)
            params.progress = cb
        handle = ctypes.c_void_p()
        _check(lib.volt_model_load(ctypes.byref(params), ctypes.byref(handle)))
        self._handle = handle


    @property
    def info(self) -> dict:
        info = _abi.ModelInfo()
        _lib().volt_model_info_init(ctypes.byref(info))
        _check(_lib().volt_model_get_info(self._handle, ctypes.byref(info)))
        out = {name: getattr(info, name) for name, _ in _abi.ModelInfo._fields_ if name != "struct_size"}
        out["model_type"] = out["model_type"].decode()
        return out

    def tokenize(self, text: str, add_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        n = ctypes.c_size_t()
        _check(_lib().volt_tokenize(self._handle, data, len(data), int(add_special), None, 0, ctypes.byref(n)))
        ids = (ctypes.c_int32 * max(n.value, 1))()
        _check(_lib().volt_tokenize(self._handle, data, len(data), int(add_special), ids, n.value, ctypes.byref(n)))
        return list(ids[: n.value])

    def detokenize(self, ids: Sequence[int], skip_special: bool = False) -> str:
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        n = ctypes.c_size_t()
        _check(_lib().volt_detokenize(self._handle, arr, len(ids), int(skip_special), None, 0, ctypes.byref(n)))
        buf = ctypes.create_string_buffer(n.value + 1)
        _check(_lib().volt_detokenize(self._handle, arr, len(ids), int(skip_special), buf, n.value + 1, ctypes.byref(n)))
        return buf.raw[: n.value].decode("utf-8")

    def logits(self, ids: Sequence[int]):
        """Full-forward float32 logits [len(ids), vocab] as a numpy array."""
        import numpy as np
        arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
        count = ctypes.c_size_t()
        _check(_lib().volt_model_logits(self._handle, arr, len(ids), None, 0, ctypes.byref(count)))
        out = np.empty(count.value, dtype=np.float32)
        _check(_lib().volt_model_logits(self._handle, arr, len(ids), out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                                        count.value, ctypes.byref(count)))
        return out.reshape(len(ids), -1)

    def image_tokens(self, image) -> int:
        """Prompt tokens an image (Image, path, bytes or RGB array) takes with this model; nothing is encoded."""
        img, own = _as_image(image)
        try:
            n = ctypes.c_int64()
            _check(_lib().volt_model_image_tokens(self._handle, img._handle, ctypes.byref(n)))
            return n.value
        finally:
            if own:
                img.close()

    def session(self, max_context: int = 0, max_tokens_per_image: int = 0) -> "Session":
        return Session(self, max_context, max_tokens_per_image)

    def batch(self, **params) -> "Batch":
        """A Batch on this model (params: max_batch, prefill_chunk, memory_budget_bytes, max_context)."""
        return Batch(self, **params)


def _generate_params(options: dict) -> tuple["_abi.GenerateParams", object]:
    """volt_generate_params from keyword options, and the stop-id array it points to (keep it alive for the call)."""
    params = _abi.GenerateParams()
    _lib().volt_generate_params_init(ctypes.byref(params))
    options = dict(options)
    stop_ids = options.pop("stop_ids", ())
    for key, value in options.items():
        if key not in dict(_abi.GenerateParams._fields_) or key in ("struct_size", "stop_ids", "num_stop_ids"):
            raise TypeError(f"unknown generation option {key!r}")
        setattr(params, key, value)
    stops = (ctypes.c_int32 * max(len(stop_ids), 1))(*stop_ids)
    params.stop_ids = stops
    params.num_stop_ids = len(stop_ids)
    return params, stops


def _id_array(ids: Sequence[int]):
    return (ctypes.c_int32 * max(len(ids), 1))(*ids)


class Session(_Owned):
    """One conversation: its cache and tokens. Use from one thread at a time; cancel() from any thread."""
    _destroy = "volt_session_destroy"

    def __init__(self, model: Model, max_context: int = 0, max_tokens_per_image: int = 0, _handle=None):
        if _handle is None:
            params = _abi.SessionParams()
            _lib().volt_session_params_init(ctypes.byref(params))
            params.max_context = max_context
            params.max_tokens_per_image = max_tokens_per_image
            _handle = ctypes.c_void_p()
            _check(_lib().volt_session_create(model._handle, ctypes.byref(params), ctypes.byref(_handle)))
        self._model = model  # keeps the model alive
        self._handle = _handle

    def fork(self) -> "Session":
        """An independent copy (conversation, attachments, computed cache): branch to regenerate or edit a turn
        without recomputing the conversation."""
        handle = ctypes.c_void_p()
        _check(_lib().volt_session_fork(self._handle, ctypes.byref(handle)))
        return Session(self._model, _handle=handle)

    @property
    def num_tokens(self) -> int:
        return _lib().volt_session_num_tokens(self._handle)

    def reset(self) -> None:
        _check(_lib().volt_session_reset(self._handle))

    def cancel(self) -> None:
        _check(_lib().volt_session_cancel(self._handle))

    def generate(self, prompt_ids: Sequence[int], on_event: Callable[[Event], bool | None] | None = None,
                 **options) -> list[Event]:
        """Generates after `prompt_ids` (the whole prompt; a cached prefix is reused). Calls on_event for each
        event (return False to stop). Returns all events. Raises VoltError; a cancelled generation raises with
        status CANCELLED after the DONE event was delivered. Options: max_new_tokens, temperature, top_k, top_p,
        min_p, repetition_penalty, seed, stop_ids."""
        ids = _id_array(prompt_ids)
        return self._run(lambda params, cb: _lib().volt_session_generate(self._handle, ids, len(prompt_ids), params,
                                                                         cb, None), on_event, options)

    # ---- chat ----
    def add_message(self, role: int, text: str) -> None:
        data = text.encode("utf-8")
        _check(_lib().volt_session_add_message(self._handle, role, data, len(data)))

    def attach_document(self, path: str | os.PathLike) -> int:
        """Attaches a PDF or text file to the next user message; returns the tokens its text takes (-1: unknown)."""
        tokens = ctypes.c_int64()
        _check(_lib().volt_session_attach_document(self._handle, os.fspath(path).encode(), ctypes.byref(tokens)))
        return tokens.value

    def attach_image(self, image) -> int:
        """Attaches an image (Image, path, bytes or RGB array) to the next user message, before its text; returns
        the tokens it takes. VL models only; refused above the session's max_tokens_per_image (never downscaled)."""
        img, own = _as_image(image)
        try:
            tokens = ctypes.c_int64()
            _check(_lib().volt_session_attach_image(self._handle, img._handle, ctypes.byref(tokens)))
            return tokens.value
        finally:
            if own:
                img.close()

    def truncate_messages(self, num_messages: int) -> None:
        """Keeps the first num_messages messages (regenerate: drop the last reply; edit: drop from the edited one)."""
        _check(_lib().volt_session_truncate_messages(self._handle, num_messages))

    def count_prompt_tokens(self) -> int:
        n = ctypes.c_int64()
        _check(_lib().volt_session_count_prompt_tokens(self._handle, ctypes.byref(n)))
        return n.value

    @property
    def num_messages(self) -> int:
        return _lib().volt_session_num_messages(self._handle)

    def clear_messages(self) -> None:
        _check(_lib().volt_session_clear_messages(self._handle))

    def reply(self, on_event: Callable[[Event], bool | None] | None = None, **options) -> list[Event]:
        """Renders the conversation with the chat template, generates the assistant's reply and appends it."""
        return self._run(lambda params, cb: _lib().volt_session_reply(self._handle, params, cb, None), on_event, options)

    def _run(self, call, on_event, options) -> list[Event]:
        params, _stops = _generate_params(options)
        events: list[Event] = []
        failure: list[BaseException] = []

        def trampoline(_ud, event_ptr):
            try:
                ev = _event_from_c(event_ptr.contents)
                events.append(ev)
                if on_event is not None and on_event(ev) is False:
                    return 1
                return 0
            except BaseException as e:  # never unwind through C: stop and re-raise afterwards
                failure.append(e)
                return 1

        cb = _abi.EVENT_FN(trampoline)
        status = call(ctypes.byref(params), cb)
        if failure:
            raise failure[0]
        _check(status)
        return events

    def stream(self, prompt_ids: Sequence[int], **options) -> Iterator[Event]:
        """Like generate(), as an iterator. Generation runs on a worker thread; closing the iterator early cancels
        it (the CANCELLED status that follows is not raised)."""
        q: "queue.Queue[Event | BaseException | None]" = queue.Queue()
        closed = threading.Event()

        def run():
            try:
                self.generate(prompt_ids, lambda ev: (q.put(ev), not closed.is_set())[1], **options)
            except VoltError as e:
                if not (closed.is_set() and e.status == Status.CANCELLED):
                    q.put(e)
            except BaseException as e:
                q.put(e)
            finally:
                q.put(None)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            closed.set()
            self.cancel()  # a no-op if the generation already ended
            worker.join()


@dataclass
class BatchResult:
    """A finished batch request (see volt_batch_result in volt.h)."""
    ids: list[int]                 # the generated ids (the stop id included)
    status: int                    # Status.OK, Status.CANCELLED (ids: those chosen until then) or the error
    message: str                   # "" when OK, else what happened
    finish_reason: int
    prompt_tokens: int
    completion_tokens: int
    prefill_seconds: float
    decode_seconds: float
    tokens_per_second: float

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


class Batch(_Owned):
    """Continuous batching: many generation requests on one model, stepped together; each gets exactly what
    Session.generate gives its prompt alone on a new session. Token ids only (no images).

    Drive it from one thread (submit, step, run, result, release, finished); callbacks run on that thread inside
    step()/run() and must not submit, step or release. cancel() works from any thread: a server's request threads
    cancel while one thread steps (ctypes releases the GIL during each step). A long-running server release()s each
    request once it has read its result (the batch keeps every result until then)."""
    _destroy = "volt_batch_destroy"

    def __init__(self, model: Model, max_batch: int = 64, prefill_chunk: int = 8192, memory_budget_bytes: int = 0,
                 max_context: int = 0):
        lib = _lib()
        if not hasattr(lib, "volt_batch_create"):
            raise VoltError(Status.UNIMPLEMENTED, f"libvolt ABI 0.{lib.volt_abi_minor()} has no batches (needs 0.3)")
        params = _abi.BatchParams()
        lib.volt_batch_params_init(ctypes.byref(params))
        params.max_batch = max_batch
        params.prefill_chunk = prefill_chunk
        params.memory_budget_bytes = memory_budget_bytes
        params.max_context = max_context
        handle = ctypes.c_void_p()
        _check(lib.volt_batch_create(model._handle, ctypes.byref(params), ctypes.byref(handle)))
        self._model = model  # keeps the model alive
        self._handle = handle
        self._callbacks: dict[int, Callable[[Event], bool | None]] = {}  # key (user_data) -> on_event
        self._next_key = 1
        self._failure: list[BaseException] = []
        self._trampoline = _abi.EVENT_FN(self._on_event)  # one for every request; lives as long as the batch

    def _on_event(self, user_data, event_ptr) -> int:
        key = user_data or 0
        try:
            ev = _event_from_c(event_ptr.contents)
            on_event = self._callbacks.get(key)
            if ev.type != "token":
                self._callbacks.pop(key, None)  # the request's last event
            if on_event is not None and on_event(ev) is False:
                return 1
            return 0
        except BaseException as e:  # never unwind through C: stop this request, re-raise after the step
            self._failure.append(e)
            return 1

    def _reraise(self) -> None:
        if self._failure:
            failure, self._failure = self._failure[0], []
            raise failure


    def submit(self, prompt_ids: Sequence[int], on_event: Callable[[Event], bool | None] | None = None,
               **options) -> int:
        """Queues a request; returns its id. Checked now (VoltError: empty prompt, an id outside the vocabulary, bad
        options, the prompt alone over the context or the request alone over the memory budget). on_event receives
        its events during step()/run(): tokens, then "done" (also when cancelled) or "error"; returning False ends
        that request. Options as Session.generate's."""
        params, _stops = _generate_params(options)
        ids = _id_array(prompt_ids)
        key = self._next_key
        self._next_key += 1
        request = ctypes.c_int64(-1)
        if on_event is not None:
            self._callbacks[key] = on_event
        try:
            _check(_lib().volt_batch_submit(self._handle, ids, len(prompt_ids), ctypes.byref(params),
                                            self._trampoline if on_event is not None else _abi.EVENT_FN(),
                                            ctypes.c_void_p(key), ctypes.byref(request)))
        except VoltError:
            self._callbacks.pop(key, None)
            raise
        return request.value

    def step(self) -> int:
        """One step (admit, one prefill piece, one batched decode step); returns the requests not finished yet. An
        exception raised by a callback ended its request and is raised here."""
        left = ctypes.c_int64()
        status = _lib().volt_batch_step(self._handle, ctypes.byref(left))
        self._reraise()
        _check(status)
        return left.value

    def run(self) -> None:
        """step() until every request has finished."""
        while self.step() > 0:
            pass

    def cancel(self, request: int) -> None:
        """Any thread: ends the request at the start of the next step (a queued one never runs, one in its prompt runs
        no further piece, a generating one keeps the tokens chosen so far; inside a running step it stops at its next
        token). Its "done" event and result say CANCELLED. No effect on a finished request; VoltError NOT_FOUND for
        an unknown or released id."""
        _check(_lib().volt_batch_cancel(self._handle, request))

    def release(self, request: int) -> None:
        """Forgets a finished request (its ids and result): result(), cancel() and release() of it then raise
        VoltError NOT_FOUND, and finished() is False; ids are never reused. BatchResult objects already returned stay
        valid (they are copies). VoltError INVALID_ARGUMENT for a request not finished (or from a callback during a
        step); NOT_FOUND for an unknown or already released id."""
        lib = _lib()
        if not hasattr(lib, "volt_batch_release"):
            raise VoltError(Status.UNIMPLEMENTED,
                            f"libvolt ABI 0.{lib.volt_abi_minor()} has no volt_batch_release (needs 0.4)")
        _check(lib.volt_batch_release(self._handle, request))

    def finished(self, request: int) -> bool:
        return _lib().volt_batch_finished(self._handle, request) == 1

    @property
    def running(self) -> int:
        return _lib().volt_batch_num_running(self._handle)

    @property
    def queued(self) -> int:
        return _lib().volt_batch_num_queued(self._handle)

    def result(self, request: int) -> BatchResult:
        """A finished request's outcome (its own failure is in .status/.message, not raised), copied out of the
        library (it outlives release()); VoltError for an unknown, released or unfinished request."""
        lib = _lib()
        r = _abi.BatchResult()
        lib.volt_batch_result_init(ctypes.byref(r))
        n = ctypes.c_size_t()
        _check(lib.volt_batch_get_result(self._handle, request, ctypes.byref(r), None, 0, ctypes.byref(n)))
        ids = (ctypes.c_int32 * max(n.value, 1))()
        _check(lib.volt_batch_get_result(self._handle, request, ctypes.byref(r), ids, n.value, ctypes.byref(n)))
        return BatchResult(ids=list(ids[: n.value]), status=r.status,
                           message=(r.message or b"").decode("utf-8", "replace"), finish_reason=r.finish_reason,
                           prompt_tokens=r.prompt_tokens, completion_tokens=r.completion_tokens,
                           prefill_seconds=r.prefill_seconds, decode_seconds=r.decode_seconds,
                           tokens_per_second=r.tokens_per_second)

    def generate(self, prompts: Sequence[Sequence[int]], **options) -> list[list[int]]:
        """Submits every prompt with the same options, runs them, and returns each one's new ids (its requests are
        released: nothing of them stays in the batch). VoltError names the first prompt that was refused or
        failed."""
        requests = []
        for i, prompt in enumerate(prompts):
            try:
                requests.append(self.submit(prompt, **options))
            except VoltError as e:
                raise VoltError(e.status, f"prompt {i}: {e.message}") from None
        self.run()
        results = [self.result(request) for request in requests]
        if hasattr(_lib(), "volt_batch_release"):
            for request in requests:
                self.release(request)
        for i, r in enumerate(results):
            if not r.ok:
                raise VoltError(r.status, f"prompt {i}: {r.message}")
        return [r.ids for r in results]
