# tests/errors/errors.cmake: one ctest per tests/errors/<case>.yaml, named errors.<case> and
# labelled `errors`.  Each case is a failing spec whose expected diagnostics are comments in
# the file (see run.sh).  Included from tests/tests.cmake.
file(GLOB KILN_ERROR_CASES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/errors/*.yaml)
foreach(case ${KILN_ERROR_CASES})
  get_filename_component(name ${case} NAME_WLE)
  add_test(NAME errors.${name}
           COMMAND sh tests/errors/run.sh $<TARGET_FILE:kiln> tests/errors/${name}.yaml
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(errors.${name} PROPERTIES LABELS errors)
endforeach()
