# The CUDA backend (src/ops/cuda/*.cu), included by the top CMakeLists.txt
# when configured with -DDLLM_CUDA=ON, right after the ops layer is defined.
# It builds dllm_ops_cuda (a static archive that uses nothing from the other
# dllm archives, only cudart and cuBLASLt), links it into dllm_ops, and
# defines DLLM_HAVE_CUDA there so MakeBackend("cuda") reaches it. The tests
# (tests/cuda) build as dllm_cuda_tests, which CTest does not run: they need
# a GPU, and scripts/device_check.sh runs them on one.

# sm_90 (H100/H200) unless the user chose (-DCMAKE_CUDA_ARCHITECTURES=...).
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
# nvcc where NVIDIA installs it, when it is not on PATH.
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
   AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
if(CCACHE)
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${CCACHE})
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB DLLM_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/ops/cuda/*.cu)
add_library(dllm_ops_cuda STATIC ${DLLM_CUDA_SOURCES})
target_include_directories(dllm_ops_cuda PRIVATE
  ${CMAKE_SOURCE_DIR}/include
  ${CMAKE_BINARY_DIR}/layers/ops
  ${CMAKE_BINARY_DIR}/layers/base)
# C++17: CMake 3.25 (Debian 12) knows no flag for CUDA 20; the headers these
# files include (ops/ops.h, ops/backend.h, base/dtype.h, dllm/error.h) are
# C++17 clean.
set_target_properties(dllm_ops_cuda PROPERTIES
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_EXTENSIONS OFF
  CUDA_SEPARABLE_COMPILATION OFF
  POSITION_INDEPENDENT_CODE ON)
# The directory's options (-Wall -Wextra, sanitizers, -march=native) are
# host-compiler flags nvcc does not take: replace them for this target.
set_property(TARGET dllm_ops_cuda PROPERTY COMPILE_OPTIONS
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wno-unused-parameter>
  $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
target_link_libraries(dllm_ops_cuda PUBLIC CUDA::cudart CUDA::cublasLt)

# dllm_ops is static: a PRIVATE dependency still goes on its users' link
# line ($<LINK_ONLY:...>), after dllm_ops, followed by cudart and cuBLASLt.
target_link_libraries(dllm_ops PRIVATE dllm_ops_cuda)
target_compile_definitions(dllm_ops PRIVATE DLLM_HAVE_CUDA=1)

if(DLLM_TESTS)
  find_package(GTest REQUIRED)
  file(GLOB DLLM_CUDA_TEST_SOURCES CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/tests/cuda/*_test.cc)
  add_executable(dllm_cuda_tests ${DLLM_CUDA_TEST_SOURCES})
  target_link_libraries(dllm_cuda_tests PRIVATE dllm dllm_model_internal
                        dllm_ops_internal GTest::gtest GTest::gtest_main
                        nlohmann_json::nlohmann_json)
  target_include_directories(dllm_cuda_tests PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_compile_definitions(dllm_cuda_tests PRIVATE
                             DLLM_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  # Not registered with CTest (no gtest_discover_tests): GPU machines only.
endif()
