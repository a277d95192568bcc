# tests/cli/cli.cmake: command-line tests of `kiln inspect --explain`, `--report`, `--profile`
# and `kiln calibrate` (label `cli`): shell scripts that run kiln and the binaries it builds
# and check their output, never their timings.  Included from tests/tests.cmake.
foreach(t explain report profile calibrate)
  add_test(NAME cli.${t} COMMAND bash ${CMAKE_SOURCE_DIR}/tests/cli/${t}.sh $<TARGET_FILE:kiln>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli.${t} PROPERTIES LABELS cli)
endforeach()
