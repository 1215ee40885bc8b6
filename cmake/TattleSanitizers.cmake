if(TATTLE_ENABLE_ASAN_UBSAN OR TATTLE_BUILD_FUZZERS)
  # The first finding stops the process: a report that scrolls by is not a failure.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(TATTLE_BUILD_FUZZERS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TATTLE_BUILD_FUZZERS needs clang (libFuzzer); use the ci or fuzz preset")
  endif()
  # Coverage feedback for the code the fuzz targets reach; libFuzzer's main is linked into
  # the targets only. tests/ turns it off again for the test programs (nothing fuzzes them).
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
if(TATTLE_ENABLE_TSAN)
  if(TATTLE_ENABLE_ASAN_UBSAN OR TATTLE_BUILD_FUZZERS)
    message(FATAL_ERROR "ThreadSanitizer cannot be combined with AddressSanitizer")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # gcc 12 with -fsanitize=thread warns inside Boost headers once inlined into tattle's
    # code: "potential null pointer dereference" (Asio's io_context.hpp, URL's
    # url_view_base.hpp, at -O2) and "atomic_thread_fence is not supported with
    # -fsanitize=thread" (-Wtsan, Asio's use of std::atomic_thread_fence). Under -Werror
    # they stop a gcc tsan build; kept as warnings.
    add_compile_options(-Wno-error=null-dereference -Wno-error=tsan)
  endif()
endif()
