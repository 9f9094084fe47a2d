# Installs headers, the library and a CMake package: find_package(crew CONFIG) -> crew::crew.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS crew EXPORT crewTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/crew DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT crewTargets NAMESPACE crew:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)

configure_package_config_file(cmake/crewConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/crewConfig.cmake
    INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/crewConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/crewConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/crewConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/crew)
