# Test executables: one per module under tests/unit (label "unit"), one per
# scenario under tests/integration (label "integration"), one libFuzzer target
# per decoder or parser under tests/fuzz (label "fuzz-smoke", CW_FUZZ builds).

set(CW_TEST_ENV
  "CW_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "CW_BINARY=$<TARGET_FILE:cachewarp>"
  "CW_SUPPORT_DIR=${CMAKE_SOURCE_DIR}/tests/support")

if(CW_FUZZ)
  set(CW_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz target runs in the smoke test")
  file(GLOB CW_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(src ${CW_FUZZ_TARGETS})
    get_filename_component(name ${src} NAME_WE)
    string(REPLACE "fuzz_" "" module ${name})
    add_executable(fuzz.${module} ${src})
    target_compile_options(fuzz.${module} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz.${module} PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz.${module} PRIVATE cwlib)
    set(corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${module})
    file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-work/${module})
    add_test(NAME fuzz.${module}
      COMMAND fuzz.${module} -max_total_time=${CW_FUZZ_SECONDS} -timeout=10
              -rss_limit_mb=2048 ${CMAKE_BINARY_DIR}/fuzz-work/${module} ${corpus})
    set_tests_properties(fuzz.${module} PROPERTIES LABELS fuzz-smoke)
  endforeach()
  return()
endif()

# cachewarp-fp: the daemon with its named failpoints compiled in
# (core/failpoint.h), for the reliability tests; the release binary has none.
add_library(cwlib_fp STATIC ${CW_SOURCES} ${CW_OPENAPI_C})
target_include_directories(cwlib_fp PUBLIC ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(cwlib_fp PUBLIC PkgConfig::DEPS Threads::Threads m)
target_compile_definitions(cwlib_fp PRIVATE CW_FAILPOINTS=1)
add_executable(cachewarp-fp ${CMAKE_SOURCE_DIR}/src/main.c)
target_link_libraries(cachewarp-fp PRIVATE cwlib_fp)
list(APPEND CW_TEST_ENV "CW_FAILPOINT_BINARY=$<TARGET_FILE:cachewarp-fp>")

pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
add_library(cwtestsupport STATIC ${CMAKE_SOURCE_DIR}/tests/support/testsrv.c
            ${CMAKE_SOURCE_DIR}/tests/support/http_client.c
            ${CMAKE_SOURCE_DIR}/tests/support/prom_check.c)
target_link_libraries(cwtestsupport PUBLIC cwlib PkgConfig::CMOCKA)
target_include_directories(cwtestsupport PUBLIC ${CMAKE_SOURCE_DIR}/tests/support)

file(GLOB CW_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${CW_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "test_" "" module ${name})
  add_executable(unit.${module} ${src})
  target_link_libraries(unit.${module} PRIVATE cwtestsupport)
  add_test(NAME unit.${module} COMMAND unit.${module})
  set_tests_properties(unit.${module} PROPERTIES LABELS unit
    ENVIRONMENT "${CW_TEST_ENV}" TIMEOUT 120)
endforeach()

file(GLOB CW_INTEGRATION_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.c)
foreach(src ${CW_INTEGRATION_TESTS})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "test_" "" scenario ${name})
  add_executable(integration.${scenario} ${src})
  target_link_libraries(integration.${scenario} PRIVATE cwtestsupport)
  add_test(NAME integration.${scenario} COMMAND integration.${scenario})
  set_tests_properties(integration.${scenario} PROPERTIES LABELS integration
    ENVIRONMENT "${CW_TEST_ENV}" TIMEOUT 600)
endforeach()

file(GLOB CW_INTEGRATION_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.sh)
foreach(src ${CW_INTEGRATION_SCRIPTS})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "test_" "" scenario ${name})
  add_test(NAME integration.${scenario}.sh COMMAND bash ${src})
  set_tests_properties(integration.${scenario}.sh PROPERTIES LABELS integration
    ENVIRONMENT "${CW_TEST_ENV}" TIMEOUT 600)
endforeach()

# Benchmarks (bench/bench_*.c): built with the tests, run by bench/run.sh, never by ctest.
# bench/benchlib.c: figure lines for bench/run.sh's table, process memory, the row loader.
add_library(cwbenchlib STATIC ${CMAKE_SOURCE_DIR}/bench/benchlib.c)
target_include_directories(cwbenchlib PUBLIC ${CMAKE_SOURCE_DIR}/bench)
target_link_libraries(cwbenchlib PUBLIC cwtestsupport)
target_compile_definitions(cwbenchlib PRIVATE CW_BENCH_SQL_DIR="${CMAKE_SOURCE_DIR}/bench/sql")
file(GLOB CW_BENCHES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/bench_*.c)
foreach(src ${CW_BENCHES})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "bench_" "" module ${name})
  add_executable(bench.${module} ${src})
  target_link_libraries(bench.${module} PRIVATE cwbenchlib)
endforeach()
# The pipeline benchmark's per-stage view of its snapshot.
target_sources(bench.pipeline PRIVATE ${CMAKE_SOURCE_DIR}/bench/snapshot_stages.c)

# cw-mongo-exec: MongoDB writes from shell scripts (tests, demo); there is no MongoDB shell here.
add_executable(cw-mongo-exec ${CMAKE_SOURCE_DIR}/tests/support/mongo_exec.c)
target_link_libraries(cw-mongo-exec PRIVATE cwlib)
