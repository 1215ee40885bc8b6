option(TATTLE_BUILD_TESTS "Build the tests" ON)
option(TATTLE_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
option(TATTLE_ENABLE_ASAN_UBSAN "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(TATTLE_ENABLE_TSAN "Build with ThreadSanitizer" OFF)
# libFuzzer targets (tests/fuzz): clang only; everything is built with coverage
# instrumentation, ASan and UBSan, the targets are linked with libFuzzer's main.
option(TATTLE_BUILD_FUZZERS "Build the libFuzzer targets (clang)" OFF)
set(TATTLE_FUZZ_SECONDS 30 CACHE STRING "How long each fuzz.<target> test fuzzes")
