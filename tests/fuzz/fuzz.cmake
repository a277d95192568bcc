# tests/fuzz/fuzz.cmake: the fuzz harnesses (label `fuzz`).  Included from tests/tests.cmake.
#
# Every parser that reads a file a user may have downloaded has a libFuzzer harness,
# tests/fuzz/fuzz_<name>.c, defining LLVMFuzzerTestOneInput (docs/security.md lists them):
#
#   - always: fuzz_<name>_replay, the harness linked with replay.c (a plain main), and a ctest
#     `fuzz.<name>` that runs every seed of corpus/<name>/ and every saved crash of
#     crashes/<name>/ through it.  So `make test` needs no libFuzzer, and `make test-sanitize`
#     replays everything under AddressSanitizer and UBSan.
#   - with -DKILN_FUZZ=ON (clang and -DKILN_SANITIZE=address,undefined): fuzz_<name>, the
#     harness linked with libFuzzer, and the kiln libraries built with coverage
#     instrumentation.  tests/fuzz/run.sh (`make fuzz`) configures such a build and runs them.

option(KILN_FUZZ "Build the libFuzzer harnesses (needs clang and KILN_SANITIZE=address,...)" OFF)

set(KILN_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
set(KILN_FUZZ_OUT ${CMAKE_BINARY_DIR}/tests/fuzz)
set(KILN_FUZZ_HARNESSES spec expr safetensors npy tokenizer_bpe tokenizer_wordpiece
    tokenizer_char tokenizer_load model_inputs)

# fuzz_model_inputs includes the C that kiln generates for a tiny model.
add_custom_command(
  OUTPUT ${KILN_FUZZ_OUT}/fuzz_model.c
  COMMAND kiln emit tests/fuzz/model_inputs.yaml --isa scalar -o ${KILN_FUZZ_OUT}/fuzz_model.c
  DEPENDS kiln ${KILN_FUZZ_DIR}/model_inputs.yaml
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
  COMMENT "kiln emit tests/fuzz/model_inputs.yaml (for fuzz_model_inputs)")
set_source_files_properties(${KILN_FUZZ_OUT}/fuzz_model.c PROPERTIES
  GENERATED ON HEADER_FILE_ONLY ON)
# One target owns the generation, so two harness builds never run it at once.
add_custom_target(fuzz_model_c DEPENDS ${KILN_FUZZ_OUT}/fuzz_model.c)

# One executable from harness `name`; extra arguments are more sources.
function(kiln_fuzz_executable target name)
  add_executable(${target} ${KILN_FUZZ_DIR}/fuzz_${name}.c ${ARGN})
  target_compile_options(${target} PRIVATE ${KILN_WARNINGS})
  target_include_directories(${target} PRIVATE ${KILN_FUZZ_DIR} ${KILN_FUZZ_OUT})
  # The tokenizer harnesses' vocabularies: ../shared/data beside the checkout
  # (overridden at run time by $KILN_SHARED_DATA).
  target_compile_definitions(${target} PRIVATE
    KILN_FUZZ_DATA="${CMAKE_SOURCE_DIR}/../shared/data")
  target_link_libraries(${target} PRIVATE kiln_front)
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${KILN_FUZZ_OUT})
  if(name STREQUAL "model_inputs")
    target_sources(${target} PRIVATE ${KILN_FUZZ_OUT}/fuzz_model.c)
    add_dependencies(${target} fuzz_model_c)
  endif()
endfunction()

foreach(name ${KILN_FUZZ_HARNESSES})
  kiln_fuzz_executable(fuzz_${name}_replay ${name} ${KILN_FUZZ_DIR}/replay.c)
  add_test(NAME fuzz.${name}
           COMMAND fuzz_${name}_replay ${KILN_FUZZ_DIR}/corpus/${name}
                   ${KILN_FUZZ_DIR}/crashes/${name}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # 77: the harness's fixed data (a tokenizer vocabulary) is absent.
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()

if(KILN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KILN_FUZZ needs clang (libFuzzer): -DCMAKE_C_COMPILER=clang")
  endif()
  if(NOT KILN_SANITIZE MATCHES "address")
    message(FATAL_ERROR "KILN_FUZZ needs -DKILN_SANITIZE=address,undefined")
  endif()
  # Coverage instrumentation for everything the harnesses reach.
  foreach(lib kiln_rt kiln_ir kiln_codegen kiln_front)
    target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link)
  endforeach()
  foreach(name ${KILN_FUZZ_HARNESSES})
    kiln_fuzz_executable(fuzz_${name} ${name})
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  endforeach()
  add_custom_target(fuzz_harnesses)
  foreach(name ${KILN_FUZZ_HARNESSES})
    add_dependencies(fuzz_harnesses fuzz_${name})
  endforeach()
endif()
