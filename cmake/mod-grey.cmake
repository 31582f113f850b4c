# grey: greylisting rules, pure (triplet, normalisation, state machine,
# postgrey-format whitelists).
add_library(pd_grey STATIC policy/grey.c)
target_include_directories(pd_grey PUBLIC ${CMAKE_SOURCE_DIR}/policy)
target_link_libraries(pd_grey PUBLIC pd_policy)
pd_unit_test(test_grey t/unit/test_grey.c pd_grey)

# rgrey: the greylist store in Redis (hiredis + libevent), its own connection.
add_library(pd_rgrey STATIC redis/rgrey.c)
target_include_directories(pd_rgrey PUBLIC ${CMAKE_SOURCE_DIR}/redis)
target_link_libraries(pd_rgrey PUBLIC pd_grey pd_rrow pd_log pd_inst PkgConfig::HIREDIS PkgConfig::LIBEVENT)
pd_unit_test(test_rgrey t/unit/test_rgrey.c pd_rgrey pd_test_redis PkgConfig::HIREDIS PkgConfig::LIBEVENT)
# Starts its own redis-server and waits out real (short) delays and TTLs.
set_tests_properties(test_rgrey PROPERTIES TIMEOUT 120)
