"""ctypes declarations mirroring bindings/c/volt.h (ABI major 0). Structs are declared field for field; their
struct_size is set by the library's *_init functions, so an older binding keeps working with a newer library."""
import ctypes

ABI_MAJOR = 0
EVENT_TOKEN, EVENT_DONE, EVENT_ERROR = 1, 2, 3

PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_float)


class ModelParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("path", ctypes.c_char_p), ("device", ctypes.c_int32),
                ("gpu_ids", ctypes.POINTER(ctypes.c_int32)), ("num_gpus", ctypes.c_int32),
                ("progress", PROGRESS_FN), ("progress_user_data", ctypes.c_void_p),
                ("expert_weights", ctypes.c_int32)]  # ABI 0.5
EXPERT_WEIGHTS = {"bf16": 0, "fp8": 1, "int8": 2}


class ModelInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("model_type", ctypes.c_char_p),
                ("is_vision_language", ctypes.c_int32), ("has_tokenizer", ctypes.c_int32),
                ("vocab_size", ctypes.c_int64), ("hidden_size", ctypes.c_int64), ("num_layers", ctypes.c_int64),
                ("num_softmax_layers", ctypes.c_int64), ("max_context", ctypes.c_int64),
                ("total_params", ctypes.c_int64), ("active_params", ctypes.c_int64), ("eos_token_id", ctypes.c_int32)]


class SessionParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("max_context", ctypes.c_int64),
                ("max_tokens_per_image", ctypes.c_int64)]  # ABI 0.2


class GenerateParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("max_new_tokens", ctypes.c_int64), ("temperature", ctypes.c_float),
                ("top_k", ctypes.c_int32), ("top_p", ctypes.c_float), ("min_p", ctypes.c_float),
                ("repetition_penalty", ctypes.c_float), ("seed", ctypes.c_uint64),
                ("stop_ids", ctypes.POINTER(ctypes.c_int32)), ("num_stop_ids", ctypes.c_size_t)]


class Event(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("type", ctypes.c_int32), ("token_id", ctypes.c_int32),
                ("text", ctypes.c_void_p), ("text_len", ctypes.c_size_t), ("finish_reason", ctypes.c_int32),
                ("prompt_tokens", ctypes.c_int64), ("reused_tokens", ctypes.c_int64),
                ("completion_tokens", ctypes.c_int64), ("prefill_seconds", ctypes.c_double),
                ("decode_seconds", ctypes.c_double), ("tokens_per_second", ctypes.c_double),
                ("status", ctypes.c_int32)]


EVENT_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.POINTER(Event))


class BatchParams(ctypes.Structure):  # ABI 0.3
    _fields_ = [("struct_size", ctypes.c_uint32), ("max_batch", ctypes.c_int32), ("prefill_chunk", ctypes.c_int64),
                ("memory_budget_bytes", ctypes.c_int64), ("max_context", ctypes.c_int64)]


class BatchResult(ctypes.Structure):  # ABI 0.3
    _fields_ = [("struct_size", ctypes.c_uint32), ("status", ctypes.c_int32), ("message", ctypes.c_char_p),
                ("finish_reason", ctypes.c_int32), ("prompt_tokens", ctypes.c_int64),
                ("completion_tokens", ctypes.c_int64), ("prefill_seconds", ctypes.c_double),
                ("decode_seconds", ctypes.c_double), ("tokens_per_second", ctypes.c_double)]


def declare(lib: ctypes.CDLL) -> None:
    """Sets argtypes/restype of every function the bindings call (mismatches would corrupt the stack silently)."""
    c_size_p = ctypes.POINTER(ctypes.c_size_t)
    i32p = ctypes.POINTER(ctypes.c_int32)
    i64p = ctypes.POINTER(ctypes.c_int64)
    sigs = {
        "volt_version": (ctypes.c_char_p, []),
        "volt_abi_major": (ctypes.c_uint32, []),
        "volt_abi_minor": (ctypes.c_uint32, []),
        "volt_status_name": (ctypes.c_char_p, [ctypes.c_int32]),
        "volt_last_error_message": (ctypes.c_char_p, []),
        "volt_cuda_device_count": (ctypes.c_int32, []),
        "volt_model_params_init": (None, [ctypes.POINTER(ModelParams)]),
        "volt_model_load": (ctypes.c_int32, [ctypes.POINTER(ModelParams), ctypes.POINTER(ctypes.c_void_p)]),
        "volt_model_destroy": (None, [ctypes.c_void_p]),
        "volt_model_info_init": (None, [ctypes.POINTER(ModelInfo)]),
        "volt_model_get_info": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ModelInfo)]),
        "volt_tokenize": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int32, i32p,
                                           ctypes.c_size_t, c_size_p]),
        "volt_detokenize": (ctypes.c_int32, [ctypes.c_void_p, i32p, ctypes.c_size_t, ctypes.c_int32, ctypes.c_char_p,
                                             ctypes.c_size_t, c_size_p]),
        "volt_session_params_init": (None, [ctypes.POINTER(SessionParams)]),
        "volt_session_create": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(SessionParams),
                                                 ctypes.POINTER(ctypes.c_void_p)]),
        "volt_session_destroy": (None, [ctypes.c_void_p]),
        "volt_session_reset": (ctypes.c_int32, [ctypes.c_void_p]),
        "volt_session_num_tokens": (ctypes.c_int64, [ctypes.c_void_p]),
        "volt_generate_params_init": (None, [ctypes.POINTER(GenerateParams)]),
        "volt_session_generate": (ctypes.c_int32, [ctypes.c_void_p, i32p, ctypes.c_size_t,
                                                   ctypes.POINTER(GenerateParams), EVENT_FN, ctypes.c_void_p]),
        "volt_session_cancel": (ctypes.c_int32, [ctypes.c_void_p]),
        "volt_session_add_message": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t]),
        "volt_session_attach_document": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_char_p,
                                                          ctypes.POINTER(ctypes.c_int64)]),
        "volt_session_count_prompt_tokens": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]),
        "volt_session_reply": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(GenerateParams), EVENT_FN,
                                                ctypes.c_void_p]),
        "volt_session_clear_messages": (ctypes.c_int32, [ctypes.c_void_p]),
        "volt_session_num_messages": (ctypes.c_int64, [ctypes.c_void_p]),
        "volt_session_fork": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]),
        "volt_session_truncate_messages": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_size_t]),
        "volt_session_attach_image": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]),
        "volt_image_load_file": (ctypes.c_int32, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
        "volt_image_load_bytes": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                                   ctypes.POINTER(ctypes.c_void_p)]),
        "volt_image_from_rgb": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_size_t,
                                                 ctypes.POINTER(ctypes.c_void_p)]),
        "volt_image_destroy": (None, [ctypes.c_void_p]),
        "volt_image_size": (ctypes.c_int32, [ctypes.c_void_p, i32p, i32p]),
        "volt_model_image_tokens": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64)]),
        "volt_model_logits": (ctypes.c_int32, [ctypes.c_void_p, i32p, ctypes.c_size_t,
                                               ctypes.POINTER(ctypes.c_float), ctypes.c_size_t, c_size_p]),
        "volt_batch_params_init": (None, [ctypes.POINTER(BatchParams)]),
        "volt_batch_create": (ctypes.c_int32, [ctypes.c_void_p, ctypes.POINTER(BatchParams),
                                               ctypes.POINTER(ctypes.c_void_p)]),
        "volt_batch_destroy": (None, [ctypes.c_void_p]),
        "volt_batch_submit": (ctypes.c_int32, [ctypes.c_void_p, i32p, ctypes.c_size_t, ctypes.POINTER(GenerateParams),
                                               EVENT_FN, ctypes.c_void_p, i64p]),
        "volt_batch_step": (ctypes.c_int32, [ctypes.c_void_p, i64p]),
        "volt_batch_run": (ctypes.c_int32, [ctypes.c_void_p]),
        "volt_batch_cancel": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int64]),
        "volt_batch_release": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int64]),  # ABI 0.4
        "volt_batch_finished": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int64]),
        "volt_batch_num_running": (ctypes.c_int64, [ctypes.c_void_p]),
        "volt_batch_num_queued": (ctypes.c_int64, [ctypes.c_void_p]),
        "volt_batch_result_init": (None, [ctypes.POINTER(BatchResult)]),
        "volt_batch_get_result": (ctypes.c_int32, [ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(BatchResult), i32p,
                                                   ctypes.c_size_t, c_size_p]),
    }
    for name, (restype, argtypes) in sigs.items():
        if name.startswith("volt_batch_") and not hasattr(lib, name):
            continue  # a library older than ABI 0.3 (0.4 for release): volt.Batch says so when used
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
