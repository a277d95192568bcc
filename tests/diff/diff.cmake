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

# ISA checks without reference data (tests/diff/isa.sh): NEON code compiles for AArch64, and
# a binary built for an ISA the CPU lacks stops with a message instead of SIGILL.
foreach(check neon cpu-check)
  add_test(NAME diff.isa.${check}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/diff/isa.sh $<TARGET_FILE:kiln>
                   ${CMAKE_BINARY_DIR}/diff/isa-${check} ${check}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(diff.isa.${check} PROPERTIES LABELS diff)
endforeach()
