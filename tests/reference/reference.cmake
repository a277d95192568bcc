# tests/reference/reference.cmake: one ctest per reference case, kiln vs PyTorch.
# Included from tests/tests.cmake.  Each tests/reference/cases/<id>/ (written by
# make_cases.py) becomes the test reference.<id>, label `reference`, which runs run_case.sh:
# build the case's spec, run the binary and `kiln interp`, and diff every output against the
# committed PyTorch output.  Outputs go to <build>/reference/<id>/.
#
# Running the tests needs only bash and kiln, not Python: the fixtures are committed.

file(GLOB KILN_REFERENCE_ARGS CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/reference/cases/*/args)
foreach(args_file ${KILN_REFERENCE_ARGS})
  get_filename_component(case_dir ${args_file} DIRECTORY)
  get_filename_component(case_id ${case_dir} NAME)
  add_test(NAME reference.${case_id}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/reference/run_case.sh
                   $<TARGET_FILE:kiln> ${case_dir} ${CMAKE_BINARY_DIR}/reference/${case_id}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(reference.${case_id} PROPERTIES LABELS reference)
endforeach()
