# rxml: the DMARC aggregate report XML (libxml2 xmlTextWriter into zlib gzip),
# rmail: the MIME mail carrying it and its hand-off to sendmail (fork + execv).
pkg_check_modules(PD_LIBXML2 REQUIRED IMPORTED_TARGET libxml-2.0)
pkg_check_modules(PD_ZLIB REQUIRED IMPORTED_TARGET zlib)

add_library(pd_rxml STATIC src/rxml.c)
# rrow.h (redis/) gives the row and policy structs; no rrow function is used.
target_include_directories(pd_rxml PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/redis)
target_link_libraries(pd_rxml PUBLIC PkgConfig::PD_LIBXML2 PkgConfig::PD_ZLIB)

add_library(pd_rmail STATIC src/rmail.c)
target_include_directories(pd_rmail PUBLIC ${CMAKE_SOURCE_DIR}/src)

pd_unit_test(test_rxml t/unit/test_rxml.c pd_rxml)
pd_unit_test(test_rmail t/unit/test_rmail.c pd_rmail PkgConfig::PD_ZLIB)
