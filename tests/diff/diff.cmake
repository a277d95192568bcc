# tests/diff/diff.cmake: differential tests, one per reference case (label `diff`):
# generated code vs the interpreter, and each optional pass on vs off (run_diff.sh).
file(GLOB KILN_DIFF_ARGS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/reference/cases/*/args)
foreach(args_file ${KILN_DIFF_ARGS})
  get_filename_component(case_dir ${args_file} DIRECTORY)
  get_filename_component(case_id ${case_dir} NAME)
  add_test(NAME diff.${case_id}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/diff/run_diff.sh
                   $<TARGET_FILE:kiln> ${case_dir} ${CMAKE_BINARY_DIR}/diff/${case_id}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(diff.${case_id} PROPERTIES LABELS diff)
endforeach()
