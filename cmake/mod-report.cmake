# The reporter, policyd-dmarc-report: Redis drain (rdrain, synchronous hiredis),
# rua destinations (rdest, pure), the program; its unit and integration tests.
add_library(pd_rdrain STATIC redis/rdrain.c)
target_include_directories(pd_rdrain PUBLIC ${CMAKE_SOURCE_DIR}/redis)
target_link_libraries(pd_rdrain PUBLIC pd_rrow PkgConfig::HIREDIS)

add_library(pd_rdest STATIC src/rdest.c)
target_include_directories(pd_rdest PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_rdest PUBLIC pd_dmarc)
pd_unit_test(test_rdest t/unit/test_rdest.c pd_rdest)

add_executable(policyd-dmarc-report src/report_main.c)
target_link_libraries(policyd-dmarc-report PRIVATE pd_rdrain pd_rdest pd_rxml pd_rmail pd_rrow pd_cfg
  pd_log pd_dns pd_dmarc PkgConfig::HIREDIS PkgConfig::LIBEVENT)

# t-rseed: writes test rows into Redis exactly as rkeys.h/rrow.h define them
# (prints RESP for `redis-cli --pipe`), so tests need no daemon.
add_executable(t-rseed t/integration/t-rseed.c)
target_link_libraries(t-rseed PRIVATE pd_rrow)

add_test(NAME integ_report COMMAND bash ${CMAKE_SOURCE_DIR}/t/integration/test_report.sh)
set_tests_properties(integ_report PROPERTIES TIMEOUT 300 ENVIRONMENT
  "PD_SRC=${CMAKE_SOURCE_DIR};PD_BUILD=${CMAKE_BINARY_DIR};PD_SHARED=${PD_SHARED_DIR}")
