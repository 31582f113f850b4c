# spfw: the SPF worker pool (forks workers that run spfa; proxies their DNS).
#
# pd_spfw carries its real partners, the resolver and the libspf2 adapter
# (pd_dns, pd_spfa from their own fragments), so the link order is right in
# every program. The unit test compiles src/spfw.c itself, with test doubles
# of both instead (t/unit/fake_dns.c, t/unit/fake_spfa.c).
add_library(pd_spfw STATIC src/spfw.c)
target_include_directories(pd_spfw PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_spfw PUBLIC pd_dnsrr pd_spfres pd_log PkgConfig::LIBEVENT
  $<TARGET_NAME_IF_EXISTS:pd_dns> $<TARGET_NAME_IF_EXISTS:pd_spfa>)

pd_unit_test(test_spfw "t/unit/test_spfw.c;src/spfw.c;t/unit/fake_dns.c;t/unit/fake_spfa.c"
  pd_dnsrr pd_spfres pd_log PkgConfig::LIBEVENT)
target_include_directories(test_spfw PRIVATE ${CMAKE_SOURCE_DIR}/src)
set_tests_properties(test_spfw PROPERTIES TIMEOUT 60)
