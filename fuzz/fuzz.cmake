# One libFuzzer harness per parser of client bytes (fuzz/README.md).
# Included from the top CMakeLists.txt, so paths are the project's.
#  - USERSD_FUZZ (make fuzz, clang): each harness links libFuzzer's main;
#    the code under test carries its coverage instrumentation.
#  - otherwise (make test, gcc + ASan/UBSan): each links replay_main.c and
#    a ctest entry feeds it its committed corpus, fuzz/corpus/<harness>/.
set(FUZZ_HARNESSES query seq ids method auth origin form json route time framing)

add_library(fuzz_parse STATIC src/server/parse.c)
target_include_directories(fuzz_parse PUBLIC include src/server fuzz)
target_link_libraries(fuzz_parse PUBLIC PkgConfig::JANSSON)

# The route harness links the whole server (the table points at every
# handler): usersd_bin's sources without the command line.
get_target_property(FUZZ_SERVER_SOURCES usersd_bin SOURCES)
list(FILTER FUZZ_SERVER_SOURCES EXCLUDE REGEX "^src/cli/")

add_custom_target(fuzz_harnesses)
foreach(h IN LISTS FUZZ_HARNESSES)
  add_executable(fuzz_${h} fuzz/fuzz_${h}.c)
  add_dependencies(fuzz_harnesses fuzz_${h})
  if(h STREQUAL "route")
    target_sources(fuzz_${h} PRIVATE ${FUZZ_SERVER_SOURCES})
    target_include_directories(fuzz_${h} PRIVATE src/server fuzz)
    target_link_libraries(fuzz_${h} PRIVATE usersd_static PkgConfig::MHD)
  elseif(h STREQUAL "time")
    target_include_directories(fuzz_${h} PRIVATE fuzz)
    target_link_libraries(fuzz_${h} PRIVATE usersd_static)
  else()
    target_link_libraries(fuzz_${h} PRIVATE fuzz_parse)
  endif()
  if(USERSD_FUZZ)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer)
  else()
    target_sources(fuzz_${h} PRIVATE fuzz/replay_main.c)
    if(USERSD_TESTS)
      add_test(NAME fuzz_replay_${h} COMMAND fuzz_${h} ${CMAKE_SOURCE_DIR}/fuzz/corpus/${h})
      set_tests_properties(fuzz_replay_${h} PROPERTIES TIMEOUT 120)
    endif()
  endif()
endforeach()
