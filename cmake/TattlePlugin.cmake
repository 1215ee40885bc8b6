# add_tattle_plugin(<name> KIND sink|source SOURCES <files...> [LIBRARIES <libs...>])
#
# Builds the plugin twice from the same sources:
#   <kind>_<name>        a shared library tattle_<kind>_<name>.so in ${TATTLE_BUILD_PLUGIN_DIR},
#                        loaded with dlopen, as users deploy it;
#   <kind>_<name>_static an object library compiled with TATTLE_PLUGIN_STATIC, which
#                        registers itself in the in-process registry when linked in
#                        (tests, single-binary packaging).
function(add_tattle_plugin name)
  cmake_parse_arguments(PLUGIN "" "KIND" "SOURCES;LIBRARIES" ${ARGN})
  set(target ${PLUGIN_KIND}_${name})
  add_library(${target} MODULE ${PLUGIN_SOURCES})
  target_link_libraries(${target} PRIVATE tattle::sdk ${PLUGIN_LIBRARIES})
  target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  tattle_set_warnings(${target})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "tattle_${target}"
    LIBRARY_OUTPUT_DIRECTORY "${TATTLE_BUILD_PLUGIN_DIR}")
  # A plugin names every library it needs. Not checkable with clang's sanitizers: their
  # runtime lives in the executable, so an instrumented plugin leaves its calls into it
  # (__asan_*, __ubsan_*, __sanitizer_cov_*) for the loader to resolve.
  if(NOT (CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND (TATTLE_ENABLE_ASAN_UBSAN OR TATTLE_BUILD_FUZZERS OR TATTLE_ENABLE_TSAN)))
    target_link_options(${target} PRIVATE -Wl,--no-undefined)
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION ${TATTLE_INSTALL_PLUGIN_DIR} COMPONENT runtime)
  set_property(GLOBAL APPEND PROPERTY TATTLE_SHARED_PLUGINS ${target})

  add_library(${target}_static OBJECT ${PLUGIN_SOURCES})
  target_compile_definitions(${target}_static PRIVATE TATTLE_PLUGIN_STATIC)
  target_link_libraries(${target}_static PUBLIC tattle::sdk ${PLUGIN_LIBRARIES})
  target_include_directories(${target}_static PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  tattle_set_warnings(${target}_static)
  set_property(GLOBAL APPEND PROPERTY TATTLE_STATIC_PLUGINS ${target}_static)
endfunction()
