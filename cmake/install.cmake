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

configure_file(cmake/shardy.pc.in ${CMAKE_CURRENT_BINARY_DIR}/shardy.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shardy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
