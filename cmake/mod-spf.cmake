# spf: RFC 7208 record validator/macro expander (pure) and the libspf2 adapter.
add_library(pd_spfrec STATIC policy/spfrec.c)
target_include_directories(pd_spfrec PUBLIC ${CMAKE_SOURCE_DIR}/policy)
pd_unit_test(test_spfrec t/unit/test_spfrec.c pd_spfrec)

add_library(pd_spfa STATIC src/spfa.c)
target_include_directories(pd_spfa PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_spfa PUBLIC pd_spfrec pd_spfres pd_dnsrr spf2)

# The RFC 7208 suite: converted from YAML at build time, run through spfa_eval()
# with an in-process zone behind the spfa_lookup_fn interface.
set(PD_SPF_SUITE_YML ${PD_SHARED_DIR}/testdata/spf/rfc7208-tests.yml)
set(PD_SPF_SUITE_TXT ${CMAKE_BINARY_DIR}/rfc7208-tests.txt)
find_program(PD_PYTHON3 python3 REQUIRED)
add_custom_command(OUTPUT ${PD_SPF_SUITE_TXT}
  COMMAND ${PD_PYTHON3} ${CMAKE_SOURCE_DIR}/t/spf/suite2lines.py ${PD_SPF_SUITE_YML} ${PD_SPF_SUITE_TXT}
  DEPENDS ${CMAKE_SOURCE_DIR}/t/spf/suite2lines.py ${PD_SPF_SUITE_YML}
  COMMENT "Converting the RFC 7208 SPF test suite")
add_custom_target(spf_suite_data DEPENDS ${PD_SPF_SUITE_TXT})
add_executable(t-spfsuite t/spf/spfsuite.c t/spf/zone.c)
target_include_directories(t-spfsuite PRIVATE ${CMAKE_SOURCE_DIR}/t/spf)
target_link_libraries(t-spfsuite PRIVATE pd_spfa)
add_dependencies(t-spfsuite spf_suite_data)
add_test(NAME spf_rfc7208_suite
  COMMAND t-spfsuite ${PD_SPF_SUITE_TXT} ${CMAKE_SOURCE_DIR}/t/spf/expected-failures.txt)

# Adapter regression tests (findings outside the suite: crash shapes, loopback,
# long records, limits), against the same in-process zone.
pd_unit_test(test_spfa t/spf/test_spfa.c pd_spfa)
target_sources(test_spfa PRIVATE t/spf/zone.c)
target_include_directories(test_spfa PRIVATE ${CMAKE_SOURCE_DIR}/t/spf)
