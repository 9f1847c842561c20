# The CUDA ops of issue 7 (included from kernels/CMakeLists.txt only when VOLT_HAVE_CUDA): dense GEMM (cuBLASLt),
# SwiGLU/GELU, RMSNorm, RoPE, embedding, sampling (CUB), MoE router + experts, softmax attention (decode and
# prefill). An object library folded into volt_core like volt_lightning_cuda (see lightning.cmake for why
# CUDA_STANDARD_REQUIRED is OFF).
# cuDNN's SDPA (kernels/cuda/attention_cudnn.cu) is compiled only when the header-only cudnn-frontend is found
# (VOLT_CUDNN_FRONTEND_DIR, default .devdeps/cudnn_frontend/include) together with cudnn.h (there or in the CUDA
# toolkit); it loads libcudnn at run time (dlopen), so nothing links against cuDNN and CI builds without it (~25 s
# more compile when present). To provide it (dev machine, then carried to the GPU machine with .devdeps):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 #     -d /tmp/fe nvidia-cudnn-frontend && unzip -o /tmp/fe/*.whl 'include/*' -d .devdeps/cudnn_frontend
#   cp /usr/local/cuda/include/cudnn*.h .devdeps/cudnn_frontend/include/
add_library(volt_ops_cuda OBJECT
  ${CMAKE_CURRENT_LIST_DIR}/gemm.cu ${CMAKE_CURRENT_LIST_DIR}/norm.cu ${CMAKE_CURRENT_LIST_DIR}/rope.cu
  ${CMAKE_CURRENT_LIST_DIR}/embedding.cu ${CMAKE_CURRENT_LIST_DIR}/sampling.cu ${CMAKE_CURRENT_LIST_DIR}/moe.cu
  ${CMAKE_CURRENT_LIST_DIR}/moe_gemm_sm90.cu ${CMAKE_CURRENT_LIST_DIR}/moe_gemv_tma.cu
  ${CMAKE_CURRENT_LIST_DIR}/tensor_map.cu ${CMAKE_CURRENT_LIST_DIR}/attention.cu
  ${CMAKE_CURRENT_LIST_DIR}/attention_blocks.cu ${CMAKE_CURRENT_LIST_DIR}/attention_ragged.cu ${CMAKE_CURRENT_LIST_DIR}/random_fill.cu)
set_target_properties(volt_ops_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD_REQUIRED OFF)
target_include_directories(volt_ops_cuda PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(volt_ops_cuda PRIVATE VOLT_HAVE_CUDA=1)
target_compile_options(volt_ops_cuda PRIVATE -lineinfo)
# -warn-spills on our kernels; not on sampling.cu, whose CUB radix-sort instantiations spill a few bytes by design.
set_source_files_properties(
  ${CMAKE_CURRENT_LIST_DIR}/gemm.cu ${CMAKE_CURRENT_LIST_DIR}/norm.cu ${CMAKE_CURRENT_LIST_DIR}/rope.cu
  ${CMAKE_CURRENT_LIST_DIR}/embedding.cu ${CMAKE_CURRENT_LIST_DIR}/moe.cu ${CMAKE_CURRENT_LIST_DIR}/moe_gemv_tma.cu
  ${CMAKE_CURRENT_LIST_DIR}/attention.cu ${CMAKE_CURRENT_LIST_DIR}/attention_blocks.cu
  ${CMAKE_CURRENT_LIST_DIR}/attention_ragged.cu PROPERTIES COMPILE_OPTIONS -Xptxas=-warn-spills)

set(VOLT_CUDNN_FRONTEND_DIR "${PROJECT_SOURCE_DIR}/.devdeps/cudnn_frontend/include" CACHE PATH
    "cudnn-frontend include directory (header-only, PyPI nvidia-cudnn-frontend)")
find_path(VOLT_CUDNN_INCLUDE_DIR cudnn.h HINTS ${VOLT_CUDNN_FRONTEND_DIR}/.. ${CUDAToolkit_INCLUDE_DIRS}
          PATH_SUFFIXES include)
# A cache entry (internal) so that vision/ (the ViT's attention) sees the same answer.
set(VOLT_HAVE_CUDNN_FRONTEND OFF CACHE INTERNAL "cudnn-frontend found (kernels/cuda/ops.cmake)")
if(EXISTS "${VOLT_CUDNN_FRONTEND_DIR}/cudnn_frontend.h" AND VOLT_CUDNN_INCLUDE_DIR)
  set(VOLT_HAVE_CUDNN_FRONTEND ON CACHE INTERNAL "cudnn-frontend found (kernels/cuda/ops.cmake)")
  target_sources(volt_ops_cuda PRIVATE ${CMAKE_CURRENT_LIST_DIR}/attention_cudnn.cu)
  target_include_directories(volt_ops_cuda SYSTEM PRIVATE ${VOLT_CUDNN_FRONTEND_DIR} ${VOLT_CUDNN_INCLUDE_DIR})
  target_compile_definitions(volt_ops_cuda PRIVATE VOLT_HAVE_CUDNN_FRONTEND=1 NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING=1)
  target_link_libraries(volt_core PUBLIC ${CMAKE_DL_LIBS})
endif()
message(STATUS "Volt CUDA ops: cudnn-frontend SDPA=${VOLT_HAVE_CUDNN_FRONTEND} (${VOLT_CUDNN_FRONTEND_DIR})")

target_sources(volt_core PRIVATE $<TARGET_OBJECTS:volt_ops_cuda>)
target_link_libraries(volt_core PUBLIC CUDA::cublasLt)
