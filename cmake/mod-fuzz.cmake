# fuzz: libFuzzer targets (fuzz/fuzz_*.c) with a seed corpus each
# (fuzz/corpus/<target>/), off by default so normal builds are unaffected:
#
#   CC=clang cmake -S . -B build-fuzz -DPD_FUZZ=ON -DPD_SANITIZE=ON
#   cmake --build build-fuzz -j2 && ctest --test-dir build-fuzz -R fuzz_
#   fuzz/run-campaign.sh [-t SECONDS] [target...]
#
# Every target of the build is compiled with coverage instrumentation
# (-fsanitize=fuzzer-no-link, appended to CMAKE_C_FLAGS, which CMake reads at
# the end of the directory, so it reaches the module libraries declared in the
# other fragments too); only the fuzz targets link libFuzzer's main. With
# PD_FUZZ ON, ctest gets one smoke test per target: the target over its seed
# corpus (and committed crash reproducers) with -runs=0.
option(PD_FUZZ "build libFuzzer targets (clang)" OFF)

if(PD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PD_FUZZ needs clang (CC=clang cmake ... -DPD_FUZZ=ON)")
  endif()
  string(APPEND CMAKE_C_FLAGS " -fsanitize=fuzzer-no-link")
  # Keep assert() live in fuzz builds whatever the build type.
  foreach(cfg RELEASE RELWITHDEBINFO MINSIZEREL)
    string(REPLACE "-DNDEBUG" "" CMAKE_C_FLAGS_${cfg} "${CMAKE_C_FLAGS_${cfg}}")
  endforeach()

  # pd_fuzz_target(NAME LIBS...): fuzz/NAME.c linked with libFuzzer and LIBS,
  # plus its ctest smoke test over fuzz/corpus/NAME.
  function(pd_fuzz_target name)
    add_executable(${name} ${CMAKE_SOURCE_DIR}/fuzz/${name}.c)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/fuzz)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(${name} PRIVATE ${ARGN})
    # The first corpus directory is where libFuzzer would write: keep it in
    # the build tree so the seeds in the source tree are only read.
    set(out ${CMAKE_BINARY_DIR}/fuzz-smoke/${name})
    file(MAKE_DIRECTORY ${out})
    add_test(NAME ${name}_smoke
      COMMAND ${name} -runs=0 -max_len=65536 ${out} ${CMAKE_SOURCE_DIR}/fuzz/corpus/${name})
    set_tests_properties(${name}_smoke PROPERTIES LABELS fuzz TIMEOUT 300)
  endfunction()

  # Declared after every fragment (some libraries come from later ones).
  function(pd_fuzz_declare)
    pd_fuzz_target(fuzz_pp pd_pp)
    pd_fuzz_target(fuzz_cfg pd_cfg)
    pd_fuzz_target(fuzz_dmarc pd_dmarc)
    pd_fuzz_target(fuzz_disc pd_dmarc_disc)
    pd_fuzz_target(fuzz_spfrec pd_spfrec)
    pd_fuzz_target(fuzz_spf pd_spfa)
    target_sources(fuzz_spf PRIVATE ${CMAKE_SOURCE_DIR}/t/spf/zone.c)
    target_include_directories(fuzz_spf PRIVATE ${CMAKE_SOURCE_DIR}/t/spf)
    pd_fuzz_target(fuzz_hdr pd_policy)
    pd_fuzz_target(fuzz_dnsrr pd_dnsrr)
    if(TARGET pd_rrow)
      pd_fuzz_target(fuzz_rrow pd_rrow)
    endif()
    if(TARGET pd_rxml)
      pd_fuzz_target(fuzz_rxml pd_rxml)
      target_compile_definitions(fuzz_rxml PRIVATE PD_SHARED_DIR="${PD_SHARED_DIR}")
    endif()
  endfunction()
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.19)
    cmake_language(DEFER CALL pd_fuzz_declare)
  else()
    pd_fuzz_declare()
  endif()
endif()
