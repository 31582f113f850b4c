# pp: the Postfix policy protocol codec (pure, no I/O).
add_library(pd_pp STATIC src/pp.c)
target_include_directories(pd_pp PUBLIC ${CMAKE_SOURCE_DIR}/src)
pd_unit_test(test_pp t/unit/test_pp.c pd_pp)

# srv: listeners and client connections on the libevent loop.
add_library(pd_srv STATIC src/srv.c)
target_include_directories(pd_srv PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_srv PUBLIC pd_pp pd_log PkgConfig::LIBEVENT)
pd_unit_test(test_srv t/unit/test_srv.c pd_srv)
