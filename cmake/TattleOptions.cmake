option(TATTLE_BUILD_TESTS "Build the tests" ON)
option(TATTLE_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
option(TATTLE_ENABLE_ASAN_UBSAN "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
