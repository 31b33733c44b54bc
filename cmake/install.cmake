include(CMakePackageConfigHelpers)

install(TARGETS shardy EXPORT shardy-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/shardy DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT shardy-targets NAMESPACE shardy:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardy)

configure_package_config_file(cmake/shardy-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/shardy-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardy)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/shardy-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shardy-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/shardy-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardy)

# pkg-config: relocatable (prefix relative to the .pc file), so that `cmake --install --prefix`
# anywhere gives a working file. A static libshardy needs its dependencies on every link line
# (Requires); a shared one only privately.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "shardy's pkg-config file needs relative CMAKE_INSTALL_LIBDIR/INCLUDEDIR")
endif()
file(RELATIVE_PATH SHARDY_PC_RELATIVE_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
get_target_property(shardy_type shardy TYPE)
if(shardy_type STREQUAL "SHARED_LIBRARY")
  set(SHARDY_PC_REQUIRES "Requires.private")
else()
  set(SHARDY_PC_REQUIRES "Requires")
endif()
set(SHARDY_PC_LINK_OPTIONS "")
if(SHARDY_SANITIZE_LINK_OPTION)
  set(SHARDY_PC_LINK_OPTIONS " ${SHARDY_SANITIZE_LINK_OPTION}")
endif()
configure_file(cmake/shardy.pc.in ${CMAKE_CURRENT_BINARY_DIR}/shardy.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shardy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
