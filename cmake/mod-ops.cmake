# metrics: Prometheus text exposition writers and the HTTP endpoint (evhttp).
add_library(pd_metrics STATIC src/metrics.c)
target_include_directories(pd_metrics PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_metrics PUBLIC PkgConfig::LIBEVENT m)
pd_unit_test(test_metrics t/unit/test_metrics.c pd_metrics)

# pdmetrics: the daemon's collector (policyd_dmarc_* metrics). vd_get_stats
# comes from src/vd.c, linked into the daemon itself; the Redis counter writer
# and greylisting are reached through function pointers (rcount.h is only
# included for struct rcount_stats, pd_rcount is not linked).
add_library(pd_pdmetrics STATIC src/pdmetrics.c)
target_include_directories(pd_pdmetrics PUBLIC ${CMAKE_SOURCE_DIR}/src
  PRIVATE ${CMAKE_SOURCE_DIR}/redis ${CMAKE_SOURCE_DIR}/policy)
target_link_libraries(pd_pdmetrics PUBLIC pd_metrics pd_srv pd_dns pd_spfw pd_spfres pd_dmarc_disc)
# The test supplies a fake vd_get_stats and fake Redis/greylisting getters.
pd_unit_test(test_pdmetrics t/unit/test_pdmetrics.c pd_pdmetrics)
target_include_directories(test_pdmetrics PRIVATE ${CMAKE_SOURCE_DIR}/redis)

# Integration tests: the metrics endpoint of the running daemon, and
# `cmake --install` into a DESTDIR (pd_integ_test comes from mod-integ.cmake).
if(COMMAND pd_integ_test)
  pd_integ_test(integ_metrics t/integration/test_metrics.sh)
  pd_integ_test(integ_install t/integration/test_install.sh)
endif()
