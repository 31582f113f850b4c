# Integration tests of the daemon with real parts (test DNS server, Postfix).
# Tests that start a private Postfix share a lock: they edit the default
# main.cf's alternate_config_directories.
function(pd_integ_test name script)
  add_test(NAME ${name} COMMAND bash ${CMAKE_SOURCE_DIR}/${script})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300 ENVIRONMENT
    "PD_SRC=${CMAKE_SOURCE_DIR};PD_BUILD=${CMAKE_BINARY_DIR};PD_SHARED=${PD_SHARED_DIR}"
    ${ARGN})
endfunction()
pd_integ_test(integ_daemon t/integration/test_daemon.sh)
pd_integ_test(integ_postfix_spf t/integration/test_postfix_spf.sh RESOURCE_LOCK postfix)
pd_integ_test(integ_dmarc t/integration/test_dmarc.sh RESOURCE_LOCK postfix)
pd_integ_test(integ_counters t/integration/test_counters.sh)
pd_integ_test(integ_faults t/integration/test_faults.sh)
pd_integ_test(integ_greylist t/integration/test_greylist.sh RESOURCE_LOCK postfix)
pd_integ_test(integ_quickstart t/integration/test_quickstart.sh RESOURCE_LOCK port10040)
