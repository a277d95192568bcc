# tests/tests.cmake: the ctest suite.  Labels: unit golden errors diff reference fuzz bisect.
# Included from the root CMakeLists.txt.

# Unit tests: every tests/unit/test_<module>.c is an executable that exits non-zero on failure.
file(GLOB KILN_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${KILN_UNIT_TESTS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^test_" "" mod ${name})
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE ${KILN_WARNINGS})
  target_link_libraries(${name} PRIVATE kiln_front)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME unit.${mod} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(unit.${mod} PROPERTIES LABELS unit)
endforeach()
# The thread pool's own test also runs under ThreadSanitizer (make test-tsan: label tsan).
set_tests_properties(unit.threads PROPERTIES LABELS "unit;tsan")

# Script-driven suites register themselves from their folders.
include(${CMAKE_SOURCE_DIR}/tests/errors/errors.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/reference/reference.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/golden/golden.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/diff/diff.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/badinput/badinput.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/api/api.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/cli/cli.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/text/text.cmake OPTIONAL)
include(${CMAKE_SOURCE_DIR}/tests/bisect/bisect.cmake OPTIONAL)

# Command-line tests of kiln subcommands (label `unit`).
add_test(NAME cli.tokenize COMMAND bash ${CMAKE_SOURCE_DIR}/tests/cli/tokenize.sh $<TARGET_FILE:kiln>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli.inspect COMMAND bash ${CMAKE_SOURCE_DIR}/tests/cli/inspect.sh $<TARGET_FILE:kiln>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME cli.generate COMMAND bash ${CMAKE_SOURCE_DIR}/tests/cli/generate.sh $<TARGET_FILE:kiln>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli.tokenize cli.inspect cli.generate PROPERTIES LABELS unit)

# Under KILN_SANITIZE the model binaries that tests build with `kiln build` are sanitized
# too (kiln passes $KILN_CFLAGS to the C compiler; unit tests that compile generated C use
# $KILN_CC), and any report fails the test.
if(KILN_SANITIZE)
  get_property(kiln_all_tests DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY TESTS)
  set_property(TEST ${kiln_all_tests} APPEND PROPERTY ENVIRONMENT
    "KILN_CFLAGS=-fsanitize=${KILN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all"
    "KILN_CC=clang -fsanitize=${KILN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endif()
