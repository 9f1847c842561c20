# Installs the build into a fresh prefix, builds samples/c/generate.c against the installed tree (CMake package and
# pkg-config), and runs both on the fixture model: their ids must match the greedy reference.
set(prefix ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${prefix} --component Unspecified
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed")
endif()
foreach(f include/volt.h lib/libvolt.so lib/pkgconfig/volt.pc lib/cmake/Volt/VoltConfig.cmake)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install tree lacks ${f}")
  endif()
endforeach()
set(ENV{PKG_CONFIG_PATH} ${prefix}/lib/pkgconfig)
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/abi/consumer -B ${WORK}/consumer -G Ninja
                        -DCMAKE_PREFIX_PATH=${prefix} -DVOLT_PREFIX=${prefix} -DSAMPLE=${SRC}/samples/c/generate.c
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the C sample against the install failed:\n${out}\n${err}")
endif()
file(READ ${SRC}/tests/data/tiny-text/reference/ids_1.json prompt)
string(REGEX MATCHALL "[0-9]+" prompt_ids "${prompt}")
file(READ ${SRC}/tests/data/tiny-text/reference/greedy_1.json greedy)
string(REGEX MATCHALL "[0-9]+" greedy_ids "${greedy}")
list(LENGTH greedy_ids n_expected)  # the reference chain may be shorter than the sample's 16 tokens
string(REPLACE ";" " " expected "${greedy_ids}")
# RUN_ENV (VAR=value;... or empty): the environment the samples run in (the sanitizer runtimes under the asan preset).
foreach(exe generate_cmake generate_pkgconfig)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env ${RUN_ENV} ${WORK}/consumer/${exe} ${SRC}/tests/data/tiny-text
                          --ids ${prompt_ids}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX MATCHALL "[0-9]+" got_ids "${out}")
  list(SUBLIST got_ids 0 ${n_expected} got_prefix)
  string(REPLACE ";" " " got_prefix "${got_prefix}")
  if(NOT rc EQUAL 0 OR NOT got_prefix STREQUAL expected)
    message(FATAL_ERROR "${exe}: rc=${rc}\n got: ${out}\n expected: ${expected}\n${err}")
  endif()
endforeach()
message(STATUS "installed tree builds and runs the C sample")
