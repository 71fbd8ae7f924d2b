# Benchmarks: one executable per bench/bench_<name>.c (bench.<name>), built
# with the project and run by `make bench` / by hand; they print figures and
# never assert.
file(GLOB CW_BENCHES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/bench_*.c)
foreach(src ${CW_BENCHES})
  get_filename_component(name ${src} NAME_WE)
  string(REPLACE "bench_" "" bench ${name})
  add_executable(bench.${bench} ${src})
  target_link_libraries(bench.${bench} PRIVATE cwlib)
endforeach()
