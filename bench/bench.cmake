# Benchmarks: one executable per bench/<name>.c (bench.<name>); they print
# figures and are never run by ctest. bench/run.sh runs them.
file(GLOB CW_BENCHES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bench/*.c)
foreach(src ${CW_BENCHES})
  get_filename_component(name ${src} NAME_WE)
  add_executable(bench.${name} ${src})
  target_link_libraries(bench.${name} PRIVATE cwlib)
endforeach()
