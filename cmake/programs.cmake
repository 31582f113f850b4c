# The programs, linked from the module libraries declared in cmake/mod-*.cmake.
add_executable(policyd-dmarc src/main.c src/vd.c)
target_link_libraries(policyd-dmarc PRIVATE pd_pdmetrics pd_srv pd_pp pd_cfg pd_log pd_rcount pd_rgrey pd_grey pd_rrow pd_dmarcq pd_psl pd_dmarc_disc pd_dmarc pd_spfw pd_spfa pd_dns
  pd_dnsrr pd_inst pd_policy pd_spfres PkgConfig::LIBEVENT)
