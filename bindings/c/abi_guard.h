// The C ABI's firewall, shared by every volt_ entry point (internal; not installed): failures leave a thread-local
// message, escaping C++ exceptions become VOLT_INTERNAL / VOLT_RESOURCE_EXHAUSTED, and params structs are read up
// to the caller's struct_size (output structs written up to it). Header-only so that tests can drive it with bodies that throw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "bindings/c/volt.h"
#include "sdk/status.h"

namespace volt::capi {

inline std::string& last_error() {
    thread_local std::string message;
    return message;
}

inline volt_status fail(const Status& s) {
    last_error() = s.message();
    return static_cast<volt_status>(s.code());
}

inline volt_status fail(volt_status code, std::string message) {
    last_error() = std::move(message);
    return code;
}

// The caller's code (or a callback of theirs) can leave the upper halves of the YMM registers dirty (AVX code
// without a VZEROUPPER after it). libvolt's kernels are built for baseline x86-64 (SSE encodings) where no runtime
// clone applies, and every SSE instruction then pays the AVX-SSE transition penalty: the desktop app measured 3.8 s
// instead of 0.5 s for one image turn. Clearing the state on entry and after each callback costs one instruction.
inline void clear_upper_simd_state() noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) __asm__ volatile("vzeroupper" ::: "memory");
#endif
}

// Runs `body` (returning volt_status); converts escaping exceptions. Clears the thread's message first, so that a
// message always belongs to the last call.
template <typename Fn>
volt_status guarded(const char* fn_name, Fn&& body) noexcept {
    try {
        clear_upper_simd_state();
        last_error().clear();
        return body();
    } catch (const std::bad_alloc&) {
        return fail(VOLT_RESOURCE_EXHAUSTED, std::string(fn_name) + ": out of memory");
    } catch (const std::exception& e) {
        return fail(VOLT_INTERNAL, std::string(fn_name) + ": internal error: " + e.what());
    } catch (...) {
        return fail(VOLT_INTERNAL, std::string(fn_name) + ": internal error");
    }
}

// Copies the leading struct_size bytes the caller knows into a default-initialised struct; fields past them keep
// their defaults. NULL means all defaults.
template <typename T>
bool read_params(const T* in, T* out, void (*init)(T*), const char* fn, volt_status* err) {
    init(out);
    if (!in) return true;
    const uint32_t size = in->struct_size;
    if (size < sizeof(uint32_t) || size > (1u << 16)) {
        *err = fail(VOLT_INVALID_ARGUMENT, std::string(fn) + ": params.struct_size " + std::to_string(size) +
                                               " is not a size (fill the struct with its *_params_init function)");
        return false;
    }
    std::memcpy(static_cast<void*>(out), in, std::min<uint32_t>(size, sizeof(T)));
    out->struct_size = sizeof(T);
    return true;
}

// Writes an output struct: `full` up to the struct_size the caller set in *out (its own size stays as it was; fields
// past it are not written). `what` names the argument ("volt_model_get_info: info"), `init` its *_init function.
template <typename T>
bool write_output(T* out, T full, const char* what, const char* init, volt_status* err) {
    const uint32_t size = out->struct_size;
    if (size < sizeof(uint32_t) || size > (1u << 16)) {
        *err = fail(VOLT_INVALID_ARGUMENT, std::string(what) + ".struct_size " + std::to_string(size) +
                                               " is not a size (use " + init + ")");
        return false;
    }
    full.struct_size = size;
    std::memcpy(static_cast<void*>(out), &full, std::min<uint32_t>(size, sizeof(T)));
    return true;
}

}  // namespace volt::capi
