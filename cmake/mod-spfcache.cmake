# spfcache: the SPF verdict cache's domain key end to end (issue #6): the real
# pool, adapter and resolver against the loopback test responder.
pd_unit_test(test_spfw_cache "t/unit/test_spfw_cache.c;t/unit/dns_responder.c"
  pd_spfw PkgConfig::LDNS PkgConfig::LIBEVENT)
set_tests_properties(test_spfw_cache PROPERTIES TIMEOUT 60)
