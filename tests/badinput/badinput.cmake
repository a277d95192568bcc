# tests/badinput/badinput.cmake: bad-input cases for everything that is not a spec (weights
# files, model inputs, the command lines of kiln and of the model binaries), label `errors`.
# Included from tests/tests.cmake.
#
# One ctest per case, named by its id (badinput.<area>.<case>, the functions in cases.sh).
# The fixture test badinput.setup builds the three tiny models and the valid fixtures into
# <build>/badinput once per ctest run; every case requires it.  Each case prints what it
# ran and what differed when it fails (run.sh).  Status 77 means skipped: a case that
# cannot be tested here (file permissions as root) or that waits for a check not written yet.
#
# Under KILN_SANITIZE the models are built with the same sanitizers (KILN_CFLAGS, also set
# by tests.cmake for every test), and a sanitizer report fails the case (run.sh).
#
#   ctest -R '^badinput\.'                     the whole suite (about 30 s on 2 cores)
#   bash tests/badinput/run.sh build/kiln build/badinput all   the same without ctest
include_guard(GLOBAL)

set(KILN_BADINPUT_DIR ${CMAKE_SOURCE_DIR}/tests/badinput)
set(KILN_BADINPUT_WORK ${CMAKE_BINARY_DIR}/badinput)
set(KILN_BADINPUT_ENV "")
if(KILN_SANITIZE)
  list(APPEND KILN_BADINPUT_ENV
    "KILN_CFLAGS=-fsanitize=${KILN_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all")
endif()

add_test(NAME badinput.setup
         COMMAND bash ${KILN_BADINPUT_DIR}/run.sh $<TARGET_FILE:kiln> ${KILN_BADINPUT_WORK} setup
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(badinput.setup PROPERTIES
  LABELS errors FIXTURES_SETUP badinput TIMEOUT 900 ENVIRONMENT "${KILN_BADINPUT_ENV}")

# The case ids are the function names in cases.sh: "badinput.<area>.<case>() {".
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${KILN_BADINPUT_DIR}/cases.sh)
file(STRINGS ${KILN_BADINPUT_DIR}/cases.sh kiln_badinput_lines
     REGEX "^badinput\\.[A-Za-z0-9_.-]+\\(\\) *{")
foreach(line ${kiln_badinput_lines})
  string(REGEX REPLACE "\\(\\).*$" "" id "${line}")
  add_test(NAME ${id}
           COMMAND bash ${KILN_BADINPUT_DIR}/run.sh $<TARGET_FILE:kiln> ${KILN_BADINPUT_WORK} ${id}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${id} PROPERTIES
    LABELS errors FIXTURES_REQUIRED badinput SKIP_RETURN_CODE 77 TIMEOUT 600
    ENVIRONMENT "${KILN_BADINPUT_ENV}")
endforeach()
