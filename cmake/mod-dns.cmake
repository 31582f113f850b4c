# dns: the asynchronous resolver + cache (libevent loop, ldns packets only).
add_library(pd_dns STATIC src/dns.c)
target_include_directories(pd_dns PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_dns PUBLIC pd_dnsrr PkgConfig::LIBEVENT PkgConfig::LDNS Threads::Threads)
pd_unit_test(test_dns "t/unit/test_dns.c;t/unit/dns_responder.c" pd_dns PkgConfig::LDNS PkgConfig::LIBEVENT Threads::Threads)
