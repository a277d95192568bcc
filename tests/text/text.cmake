# tests/text/text.cmake: the text front ends of model binaries (runtime/text*.c), label `text`.
# Included from tests/tests.cmake.  bert.sh builds models/bert-mlm.yaml and models/bert.yaml
# at the size of the fixture in tests/text/bert-mlm/ and checks fill-mask and --embed
# against PyTorch's answers (written by tests/text/make_fixtures.py, `make reference`), then
# their error messages.  Needs only bash, awk and kiln.
add_test(NAME text.bert COMMAND bash ${CMAKE_SOURCE_DIR}/tests/text/bert.sh $<TARGET_FILE:kiln>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(text.bert PROPERTIES LABELS text)
