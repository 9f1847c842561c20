# Finds Volt's dependencies. Required ones fail configuration with the Debian package that provides them;
# optional ones (CUDA, Qt, OpenCV) set VOLT_HAVE_* and the parts that need them are skipped.
include(CheckLanguage)
find_package(PkgConfig REQUIRED)

macro(volt_require_found var what package)
  if(NOT ${var})
    message(FATAL_ERROR "Volt needs ${what}: run scripts/setup-deps.sh (Debian package ${package})")
  endif()
endmacro()

find_package(Threads REQUIRED)

find_package(nlohmann_json 3.10 QUIET)
volt_require_found(nlohmann_json_FOUND "nlohmann-json >= 3.10" nlohmann-json3-dev)

find_package(CLI11 QUIET CONFIG)
if(NOT CLI11_FOUND)
  find_path(VOLT_CLI11_INCLUDE CLI/CLI.hpp)
  volt_require_found(VOLT_CLI11_INCLUDE "CLI11" libcli11-dev)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  target_include_directories(CLI11::CLI11 INTERFACE ${VOLT_CLI11_INCLUDE})
endif()

pkg_check_modules(OPENBLAS QUIET IMPORTED_TARGET openblas)
volt_require_found(OPENBLAS_FOUND "OpenBLAS" libopenblas-dev)

# Tokenizers: split regexes (PCRE2 with JIT), Unicode normalization (utf8proc), SentencePiece models.
pkg_check_modules(PCRE2 QUIET IMPORTED_TARGET libpcre2-8)
volt_require_found(PCRE2_FOUND "PCRE2" libpcre2-dev)
pkg_check_modules(UTF8PROC QUIET IMPORTED_TARGET libutf8proc)
volt_require_found(UTF8PROC_FOUND "utf8proc" libutf8proc-dev)
pkg_check_modules(SENTENCEPIECE QUIET IMPORTED_TARGET sentencepiece)
volt_require_found(SENTENCEPIECE_FOUND "SentencePiece" libsentencepiece-dev)

# ---- CUDA (optional) -------------------------------------------------------------------------------------------------
set(VOLT_HAVE_CUDA OFF)
set(VOLT_HAVE_NCCL OFF)
if(NOT VOLT_CUDA STREQUAL "OFF")
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # One architecture by default (Hopper, with its arch-specific wgmma/setmaxnreg): keeps CI builds short.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90a)
    endif()
    enable_language(CUDA)
    # CMake 3.25 does not know nvcc's C++20 flag (CUDA_STANDARD 20 fails at generation), so pass it directly.
    string(APPEND CMAKE_CUDA_FLAGS " -std=c++20 --expt-relaxed-constexpr")
    find_package(CUDAToolkit REQUIRED)
    set(VOLT_HAVE_CUDA ON)
    # NCCL (one model over several GPUs, issue 8): the CUDA toolkit's copy, or the PyPI nvidia-nccl-cu13 package's
    # (VOLT_NCCL_ROOT = its nvidia/nccl directory; the GPU machine has it through PyTorch). Optional: without it,
    # multi-GPU loads say UNIMPLEMENTED.
    set(VOLT_NCCL_ROOT "" CACHE PATH "NCCL install directory (include/nccl.h, lib/libnccl.so*)")
    find_path(VOLT_NCCL_INCLUDE_DIR nccl.h HINTS ${VOLT_NCCL_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS})
    find_library(VOLT_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${VOLT_NCCL_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR})
    if(VOLT_NCCL_INCLUDE_DIR AND VOLT_NCCL_LIBRARY)
      set(VOLT_HAVE_NCCL ON)
    endif()
  elseif(VOLT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "VOLT_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  endif()
endif()

# ---- Qt / OpenCV (optional) ------------------------------------------------------------------------------------------
set(VOLT_HAVE_QT OFF)
if(NOT VOLT_QT STREQUAL "OFF")
  find_package(Qt6 6.4 QUIET COMPONENTS Core Gui Widgets)
  if(Qt6_FOUND)
    set(VOLT_HAVE_QT ON)
  elseif(VOLT_QT STREQUAL "ON")
    message(FATAL_ERROR "VOLT_QT=ON but Qt 6 was not found (Debian: qt6-base-dev)")
  endif()
endif()
set(VOLT_HAVE_OPENCV OFF)
if(NOT VOLT_OPENCV STREQUAL "OFF")
  find_package(OpenCV QUIET COMPONENTS core imgcodecs imgproc)
  if(OpenCV_FOUND)
    set(VOLT_HAVE_OPENCV ON)
  elseif(VOLT_OPENCV STREQUAL "ON")
    message(FATAL_ERROR "VOLT_OPENCV=ON but OpenCV was not found (Debian: libopencv-dev)")
  endif()
endif()

# ---- poppler-cpp (optional): PDF documents ---------------------------------------------------------------------------
pkg_check_modules(POPPLER_CPP QUIET IMPORTED_TARGET poppler-cpp)
set(VOLT_HAVE_POPPLER ${POPPLER_CPP_FOUND})

# ---- test tooling ----------------------------------------------------------------------------------------------------
if(VOLT_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    message(WARNING "GoogleTest not found (Debian: libgtest-dev): tests are not built")
    set(VOLT_BUILD_TESTS OFF)
  endif()
endif()

# libFuzzer targets need clang; with g++ they are built as plain drivers that replay the seed corpus.
set(VOLT_HAVE_FUZZERS OFF)
if(VOLT_BUILD_TESTS AND VOLT_BUILD_FUZZERS)
  set(VOLT_HAVE_FUZZERS ON)
endif()
