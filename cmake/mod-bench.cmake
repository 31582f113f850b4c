# bench: the performance harness (bench/README.md). The load generator and the
# null responder are built here; bench/run.sh (minutes long) is run by hand and
# is not a test. Only bench_smoke (a few seconds: framing check against the null
# responder and the daemon) is registered with ctest.
add_executable(pd-loadgen bench/loadgen.c)
target_link_libraries(pd-loadgen PRIVATE Threads::Threads)
add_executable(pd-nullresp bench/nullresp.c)

add_test(NAME bench_smoke COMMAND bash ${CMAKE_SOURCE_DIR}/bench/smoke.sh)
set_tests_properties(bench_smoke PROPERTIES TIMEOUT 60 LABELS bench ENVIRONMENT
  "PD_SRC=${CMAKE_SOURCE_DIR};PD_BUILD=${CMAKE_BINARY_DIR};PD_SHARED=${PD_SHARED_DIR}")
