# add_tattle_plugin(<name> KIND sink|source SOURCES <files...> [LIBRARIES <libs...>])
#
# A plugin is its logic and a small registration file, plugin.cpp (the SDK's export
# macro). The logic is compiled once, position-independent, into
#   <kind>_<name>_logic  an object library;
# and linked twice, each with plugin.cpp compiled its own way:
#   <kind>_<name>        a shared library tattle_<kind>_<name>.so in ${TATTLE_BUILD_PLUGIN_DIR},
#                        loaded with dlopen, as users deploy it;
#   <kind>_<name>_static an object library whose plugin.cpp is compiled with
#                        TATTLE_PLUGIN_STATIC, which registers the plugin in the
#                        in-process registry when linked in (tests, single-binary
#                        packaging). TATTLE_STATIC_PLUGINS lists it with its logic.
function(add_tattle_plugin name)
  cmake_parse_arguments(PLUGIN "" "KIND" "SOURCES;LIBRARIES" ${ARGN})
  set(target ${PLUGIN_KIND}_${name})
  set(registration ${PLUGIN_SOURCES})
  list(FILTER registration INCLUDE REGEX "(^|/)plugin\\.cpp$")
  set(logic ${PLUGIN_SOURCES})
  list(FILTER logic EXCLUDE REGEX "(^|/)plugin\\.cpp$")
  list(LENGTH registration registration_files)
  list(LENGTH logic logic_files)
  if(NOT registration_files EQUAL 1 OR logic_files EQUAL 0)
    message(FATAL_ERROR "plugin ${target}: SOURCES must hold one plugin.cpp (the registration) and its logic")
  endif()

  add_library(${target}_logic OBJECT ${logic})
  set_target_properties(${target}_logic PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(${target}_logic PUBLIC tattle::sdk ${PLUGIN_LIBRARIES})
  target_include_directories(${target}_logic PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  tattle_set_warnings(${target}_logic)

  add_library(${target} MODULE ${registration})
  target_link_libraries(${target} PRIVATE ${target}_logic)
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

  add_library(${target}_static OBJECT ${registration})
  target_compile_definitions(${target}_static PRIVATE TATTLE_PLUGIN_STATIC)
  target_link_libraries(${target}_static PUBLIC ${target}_logic)
  tattle_set_warnings(${target}_static)
  # An executable takes the objects of the object libraries it links directly, not of
  # theirs: both are listed.
  set_property(GLOBAL APPEND PROPERTY TATTLE_STATIC_PLUGINS ${target}_static ${target}_logic)
endfunction()
