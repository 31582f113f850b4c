# rrow + rkeys: the row encoding and the Redis key schema (pure, no hiredis).
add_library(pd_rrow STATIC redis/rrow.c redis/rkeys.c redis/raddr.c)
target_include_directories(pd_rrow PUBLIC ${CMAKE_SOURCE_DIR}/redis)
pd_unit_test(test_rrow t/unit/test_rrow.c pd_rrow)

# rcount: the daemon's asynchronous, pipelined counter writer (hiredis + libevent).
add_library(pd_rcount STATIC redis/rcount.c)
target_include_directories(pd_rcount PUBLIC ${CMAKE_SOURCE_DIR}/redis)
target_link_libraries(pd_rcount PUBLIC pd_rrow pd_log PkgConfig::HIREDIS PkgConfig::LIBEVENT)
# Test helper: a throwaway redis-server (test_rcount, test_rgrey).
add_library(pd_test_redis STATIC t/unit/redis_srv.c)
target_include_directories(pd_test_redis PUBLIC ${CMAKE_SOURCE_DIR}/t/unit)
target_link_libraries(pd_test_redis PUBLIC PkgConfig::HIREDIS)
pd_unit_test(test_rcount t/unit/test_rcount.c pd_rcount pd_test_redis PkgConfig::HIREDIS
  PkgConfig::LIBEVENT)
# Starts its own redis-server instances; keep it off the parallel critical path.
set_tests_properties(test_rcount PROPERTIES TIMEOUT 120)
