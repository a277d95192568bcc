# tests/api/api.cmake: programs that use a generated model through its C API (run.sh).
# Labels: api, and tsan (make test-tsan runs these under ThreadSanitizer).
foreach(t example two_instances kv_cache cache_full)
  add_test(NAME api.${t} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/api/run.sh $<TARGET_FILE:kiln> ${t}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(api.${t} PROPERTIES LABELS "api;tsan")
endforeach()
