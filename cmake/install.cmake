# install.cmake - `cmake --install`: the programs, the sample configuration,
# the man pages, the systemd unit, the reporter's cron file and the Postfix
# snippet. Included at the end of the root CMakeLists.txt (after every target).
#
#   cmake --install build --prefix /usr            (DESTDIR=/stage honoured)
#
# Where the files go is decided when installing, from the prefix given then
# (--prefix overrides the configured one), with GNUInstallDirs' rules for the
# configuration directory: prefix /usr -> /etc, /opt/NAME -> /etc/opt/NAME,
# anything else -> PREFIX/etc (an absolute CMAKE_INSTALL_SYSCONFDIR wins).
# The unit and the cron file name the installed program and configuration
# paths, rewritten for that prefix. An existing configuration file that
# differs from the sample is kept: the sample goes beside it as .conf.new.
include(GNUInstallDirs)

# Where the systemd unit and the cron file go; empty skips them (e.g. an
# unprivileged install into a home directory). Relative: below the prefix.
set(PD_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING "systemd unit directory (empty: none)")
set(PD_CRONDIR "/etc/cron.d" CACHE STRING "cron.d directory for the reporter (empty: none)")

install(TARGETS policyd-dmarc RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
if(TARGET policyd-dmarc-report)
  install(TARGETS policyd-dmarc-report RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()

file(GLOB PD_MAN5 CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.5)
file(GLOB PD_MAN8 CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*.8)
install(FILES ${PD_MAN5} DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PD_MAN8} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES ${CMAKE_SOURCE_DIR}/etc/postfix-main.cf.snippet ${CMAKE_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The configure-time settings the install-time code below needs.
install(CODE "
set(PD_I_SRC \"${CMAKE_SOURCE_DIR}\")
set(PD_I_GEN \"${CMAKE_BINARY_DIR}/install-gen\")
set(PD_I_SYSCONFDIR \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(PD_I_SBINDIR \"${CMAKE_INSTALL_SBINDIR}\")
set(PD_I_UNITDIR \"${PD_SYSTEMD_UNITDIR}\")
set(PD_I_CRONDIR \"${PD_CRONDIR}\")
")

# Runs at install time, where CMAKE_INSTALL_PREFIX is the prefix of this
# install. file(INSTALL) to an absolute path adds $ENV{DESTDIR} itself.
install(CODE [==[
string(REGEX REPLACE "/+$" "" pd_prefix "${CMAKE_INSTALL_PREFIX}") # "/" -> ""
if(IS_ABSOLUTE "${PD_I_SYSCONFDIR}")
  set(pd_etc "${PD_I_SYSCONFDIR}")
elseif(pd_prefix STREQUAL "" OR pd_prefix STREQUAL "/usr")
  set(pd_etc "/${PD_I_SYSCONFDIR}")
elseif(pd_prefix MATCHES "^/opt/")
  set(pd_etc "/${PD_I_SYSCONFDIR}${pd_prefix}")
else()
  set(pd_etc "${pd_prefix}/${PD_I_SYSCONFDIR}")
endif()
set(pd_confdir "${pd_etc}/policyd-dmarc")
if(IS_ABSOLUTE "${PD_I_SBINDIR}")
  set(pd_sbin "${PD_I_SBINDIR}")
else()
  set(pd_sbin "${pd_prefix}/${PD_I_SBINDIR}")
endif()

# The sample configuration, without overwriting a file the admin edited.
set(pd_conf_src "${PD_I_SRC}/etc/policyd-dmarc.conf")
set(pd_conf_dst "$ENV{DESTDIR}${pd_confdir}/policyd-dmarc.conf")
if(EXISTS "${pd_conf_dst}")
  file(SHA256 "${pd_conf_src}" pd_h1)
  file(SHA256 "${pd_conf_dst}" pd_h2)
endif()
if(EXISTS "${pd_conf_dst}" AND NOT pd_h1 STREQUAL pd_h2)
  message(STATUS "Keeping the existing ${pd_conf_dst}; the new sample goes beside it as .new")
  file(INSTALL DESTINATION "${pd_confdir}" TYPE FILE RENAME policyd-dmarc.conf.new
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${pd_conf_src}")
else()
  file(INSTALL DESTINATION "${pd_confdir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${pd_conf_src}")
endif()

# pd_install_rewritten(SRC DIR NAME): SRC with the default paths of the
# programs and of the configuration replaced by this install's, as DIR/NAME.
function(pd_install_rewritten src dir name)
  file(READ "${src}" text)
  string(REPLACE "/usr/sbin/policyd-dmarc" "${pd_sbin}/policyd-dmarc" text "${text}")
  string(REPLACE "/etc/policyd-dmarc/" "${pd_confdir}/" text "${text}")
  file(MAKE_DIRECTORY "${PD_I_GEN}")
  file(WRITE "${PD_I_GEN}/${name}" "${text}")
  if(NOT IS_ABSOLUTE "${dir}")
    set(dir "${pd_prefix}/${dir}")
  endif()
  file(INSTALL DESTINATION "${dir}" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${PD_I_GEN}/${name}")
endfunction()

if(NOT PD_I_UNITDIR STREQUAL "")
  pd_install_rewritten("${PD_I_SRC}/etc/policyd-dmarc.service" "${PD_I_UNITDIR}"
                       policyd-dmarc.service)
endif()
# cron ignores files in cron.d whose names contain a dot: "policyd-dmarc-report".
if(NOT PD_I_CRONDIR STREQUAL "" AND EXISTS "${PD_I_SRC}/etc/policyd-dmarc-report.cron")
  pd_install_rewritten("${PD_I_SRC}/etc/policyd-dmarc-report.cron" "${PD_I_CRONDIR}"
                       policyd-dmarc-report)
endif()
]==])
