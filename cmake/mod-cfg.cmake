# log: one-line key=value logging to syslog or stderr.
add_library(pd_log STATIC util/log.c)
target_include_directories(pd_log PUBLIC ${CMAKE_SOURCE_DIR}/util)
target_link_libraries(pd_log PUBLIC Threads::Threads)
pd_unit_test(test_log t/unit/test_log.c pd_log)

# cfg: the settings table and the Postfix-style config parser.
add_library(pd_cfg STATIC src/cfg.c)
target_include_directories(pd_cfg PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_cfg PUBLIC pd_log)
pd_unit_test(test_cfg t/unit/test_cfg.c pd_cfg)
# The sample config and the man page must list every setting of the table.
pd_unit_test(test_cfg_docs t/unit/test_cfg_docs.c pd_cfg)
