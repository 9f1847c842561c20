# Lightning attention CUDA kernels (included from kernels/CMakeLists.txt only when VOLT_HAVE_CUDA).
# An object library folded into volt_core, with CUDA_STANDARD_REQUIRED OFF: CMake 3.25 carries the project's C++20
# requirement over to CUDA sources as a "CUDA20" dialect it has no nvcc flag for and fails at generation; with the
# requirement off it adds no -std flag and the standard comes from CMAKE_CUDA_FLAGS (-std=c++20, set in
# cmake/VoltDependencies.cmake) alone.
# -lineinfo lets compute-sanitizer and ncu point at source lines at no run-time cost; -warn-spills flags any register
# spill of the prefill kernel (it is sized to run without one).
add_library(volt_lightning_cuda OBJECT ${CMAKE_CURRENT_LIST_DIR}/lightning_attention.cu
                                       ${CMAKE_CURRENT_LIST_DIR}/lightning_prefill_tma.cu)
set_target_properties(volt_lightning_cuda PROPERTIES POSITION_INDEPENDENT_CODE ON CUDA_STANDARD_REQUIRED OFF)
target_include_directories(volt_lightning_cuda PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_definitions(volt_lightning_cuda PRIVATE VOLT_HAVE_CUDA=1)
target_compile_options(volt_lightning_cuda PRIVATE -lineinfo -Xptxas=-warn-spills)
target_sources(volt_core PRIVATE $<TARGET_OBJECTS:volt_lightning_cuda>)
