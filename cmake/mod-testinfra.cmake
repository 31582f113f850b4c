# testinfra: the scriptable test DNS server (t-dnsd) and the integration-test
# harness self-check (t/lib/harness.sh drives t-dnsd, redis-server, Postfix).
add_executable(t-dnsd t/dnsd/dnsd.c)
target_link_libraries(t-dnsd PRIVATE PkgConfig::LDNS PkgConfig::LIBEVENT)

add_test(NAME integ_harness_selfcheck
  COMMAND bash ${CMAKE_SOURCE_DIR}/t/integration/test_harness_selfcheck.sh)
set_tests_properties(integ_harness_selfcheck PROPERTIES
  ENVIRONMENT "PD_SRC=${CMAKE_SOURCE_DIR};PD_BUILD=${CMAKE_BINARY_DIR};PD_SHARED=${PD_SHARED_DIR}"
  LABELS integration
  TIMEOUT 120
  # Same lock as the other Postfix tests (cmake/mod-integ.cmake). The harness
  # is safe in parallel anyway (flock on the default main.cf edits).
  RESOURCE_LOCK postfix)
