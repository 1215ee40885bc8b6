include(CMakePackageConfigHelpers)

install(FILES ${CMAKE_SOURCE_DIR}/plugins/abi/tattle_plugin.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tattle COMPONENT sdk)
install(FILES ${CMAKE_SOURCE_DIR}/plugins/sdk/include/tattle/sdk.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tattle COMPONENT sdk)
install(TARGETS tattle_sdk EXPORT tattleTargets)
install(EXPORT tattleTargets NAMESPACE tattle::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tattle COMPONENT sdk)

configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/tattleConfig.cmake.in
  ${CMAKE_BINARY_DIR}/tattleConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tattle
  PATH_VARS TATTLE_INSTALL_PLUGIN_DIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/tattleConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/tattleConfig.cmake ${CMAKE_BINARY_DIR}/tattleConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/tattle COMPONENT sdk)
