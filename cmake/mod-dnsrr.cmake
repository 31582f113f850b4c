# dnsrr: DNS RRset value type + IPC wire form (shared by resolver, SPF adapter, pool).
add_library(pd_dnsrr STATIC src/dnsrr.c)
target_include_directories(pd_dnsrr PUBLIC ${CMAKE_SOURCE_DIR}/src)
pd_unit_test(test_dnsrr t/unit/test_dnsrr.c pd_dnsrr)

# spfres: SPF result names and the verdict struct (pure).
add_library(pd_spfres STATIC policy/spfres.c)
target_include_directories(pd_spfres PUBLIC ${CMAKE_SOURCE_DIR}/policy)
