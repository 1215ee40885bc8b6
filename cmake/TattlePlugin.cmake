# add_tattle_plugin(<name> KIND sink|source SOURCES <files...> [LIBRARIES <libs...>])
#
# Builds the plugin twice from the same sources:
#   <name>        a shared library in ${TATTLE_BUILD_PLUGIN_DIR}, loaded with dlopen;
#   <name>_static an object library compiled with TATTLE_PLUGIN_STATIC, which
#                 registers itself in the in-process registry when linked in.
function(add_tattle_plugin name)
  cmake_parse_arguments(PLUGIN "" "KIND" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${PLUGIN_SOURCES})
  target_link_libraries(${name} PRIVATE tattle::sdk ${PLUGIN_LIBRARIES})
  tattle_set_warnings(${name})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "tattle_${PLUGIN_KIND}_${name}"
    LIBRARY_OUTPUT_DIRECTORY "${TATTLE_BUILD_PLUGIN_DIR}")
  target_link_options(${name} PRIVATE -Wl,--no-undefined)
  install(TARGETS ${name} LIBRARY DESTINATION ${TATTLE_INSTALL_PLUGIN_DIR} COMPONENT runtime)

  add_library(${name}_static OBJECT ${PLUGIN_SOURCES})
  target_compile_definitions(${name}_static PRIVATE TATTLE_PLUGIN_STATIC)
  target_link_libraries(${name}_static PUBLIC tattle::sdk ${PLUGIN_LIBRARIES})
  tattle_set_warnings(${name}_static)
  set_property(GLOBAL APPEND PROPERTY TATTLE_STATIC_PLUGINS ${name}_static)
endfunction()
