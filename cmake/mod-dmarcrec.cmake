# psl: the Public Suffix List adapter (the only module that includes libpsl).
add_library(pd_psl STATIC src/psl.c)
target_include_directories(pd_psl PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_psl PUBLIC PkgConfig::LIBPSL)
pd_unit_test(test_psl t/unit/test_psl.c pd_psl)

# dmarc: the DMARC policy record parser (pure).
add_library(pd_dmarc STATIC policy/dmarc.c)
target_include_directories(pd_dmarc PUBLIC ${CMAKE_SOURCE_DIR}/policy)
pd_unit_test(test_dmarc_record t/unit/test_dmarc_record.c pd_dmarc)
