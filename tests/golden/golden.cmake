# tests/golden/golden.cmake: one ctest per tests/golden/*.yaml (label `golden`): the IR dump
# and the generated C compared byte for byte with the committed .expected files, and the
# case's `# expect: after PASS: ...` structural checks (tests/golden/run.sh lists them).
# Regenerate: KILN_UPDATE_GOLDEN=1 ctest -L golden, then review the diff.
file(GLOB KILN_GOLDEN_CASES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/golden/*.yaml)
foreach(case ${KILN_GOLDEN_CASES})
  get_filename_component(name ${case} NAME_WE)
  add_test(NAME golden.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/golden/run.sh $<TARGET_FILE:kiln> ${case}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(golden.${name} PROPERTIES LABELS golden)
endforeach()
