# Every dependency comes from Debian 12 packages (scripts/setup installs them).
set(Boost_NO_WARN_NEW_VERSIONS ON)
find_package(Boost 1.81...<1.82 REQUIRED CONFIG COMPONENTS json url program_options)
find_package(tomlplusplus REQUIRED)
find_package(spdlog REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
# libdeflate inflates whole CloudTrail files about twice as fast as zlib (decoder.cpp);
# zlib still streams the large ones.
find_path(LIBDEFLATE_INCLUDE_DIR libdeflate.h REQUIRED)
find_library(LIBDEFLATE_LIBRARY deflate REQUIRED)
add_library(tattle_libdeflate INTERFACE)
target_include_directories(tattle_libdeflate SYSTEM INTERFACE ${LIBDEFLATE_INCLUDE_DIR})
target_link_libraries(tattle_libdeflate INTERFACE ${LIBDEFLATE_LIBRARY})
add_library(tattle::libdeflate ALIAS tattle_libdeflate)
find_package(Threads REQUIRED)

find_path(JQ_INCLUDE_DIR jq.h REQUIRED)
find_library(JQ_LIBRARY jq REQUIRED)
add_library(tattle_jq INTERFACE)
target_include_directories(tattle_jq SYSTEM INTERFACE ${JQ_INCLUDE_DIR})
# Oniguruma is libjq's regex library; the native rule evaluator calls it the way
# jq's test() does, so both agree on every pattern.
find_path(ONIG_INCLUDE_DIR oniguruma.h REQUIRED)
find_library(ONIG_LIBRARY onig REQUIRED)
target_include_directories(tattle_jq SYSTEM INTERFACE ${ONIG_INCLUDE_DIR})
target_link_libraries(tattle_jq INTERFACE ${JQ_LIBRARY} ${ONIG_LIBRARY})
add_library(tattle::jq ALIAS tattle_jq)
