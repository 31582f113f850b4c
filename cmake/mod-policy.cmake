# policy: pure helpers for what we write and whom we trust: sanitising remote
# text (san), the PREPENDed header lines (hdr), network lists (cidr).
add_library(pd_policy STATIC policy/san.c policy/hdr.c policy/cidr.c)
target_include_directories(pd_policy PUBLIC ${CMAKE_SOURCE_DIR}/policy)
target_link_libraries(pd_policy PUBLIC pd_spfres)
pd_unit_test(test_san t/unit/test_san.c pd_policy)
pd_unit_test(test_hdr t/unit/test_hdr.c pd_policy)
pd_unit_test(test_cidr t/unit/test_cidr.c pd_policy)

# inst: the per-message table (instance -> decision), bounded and expiring.
add_library(pd_inst STATIC util/inst.c)
target_include_directories(pd_inst PUBLIC ${CMAKE_SOURCE_DIR}/util)
pd_unit_test(test_inst t/unit/test_inst.c pd_inst)
