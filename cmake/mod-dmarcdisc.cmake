# dmarcdisc: DMARC policy discovery (RFC 9989 tree walk / RFC 7489 PSL) and the
# envelope-DMARC disposition table, both pure (policy/); and dmarcq, the
# asynchronous driver on the resolver (src/).
add_library(pd_dmarc_disc STATIC policy/dmarc_disc.c policy/dmarc_disp.c)
target_include_directories(pd_dmarc_disc PUBLIC ${CMAKE_SOURCE_DIR}/policy)
target_link_libraries(pd_dmarc_disc PUBLIC pd_dmarc pd_spfres)

add_library(pd_dmarcq STATIC src/dmarcq.c)
target_include_directories(pd_dmarcq PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(pd_dmarcq PUBLIC pd_dmarc_disc pd_dns pd_inst)

pd_unit_test(test_dmarc_disc t/unit/test_dmarc_disc.c pd_dmarc_disc)
pd_unit_test(test_dmarc_disp t/unit/test_dmarc_disp.c pd_dmarc_disc)
# The shared policy vectors (converted by t/dmarc/vectors.py at test time);
# RFC 7489 vectors use the PSL adapter with the pinned list from shared/.
pd_unit_test(test_dmarc_vectors t/unit/test_dmarc_vectors.c pd_dmarc_disc pd_psl)
# dmarcq end to end: the real resolver against the loopback test responder.
pd_unit_test(test_dmarcq "t/unit/test_dmarcq.c;t/unit/dns_responder.c" pd_dmarcq PkgConfig::LDNS PkgConfig::LIBEVENT)
