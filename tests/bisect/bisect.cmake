# tests/bisect/bisect.cmake: intermediate-value dumps and the bisections on them (run.sh;
# docs/inspect.md).  Label `bisect`; the pytorch.* tests skip (77) without python3-torch.
set(KILN_BISECT_TESTS dump.gpt2.small dump.bert.pad dump.seed.basic dump.gpt2.hd7 eps
    transpose passes passes-attn passes-clean usage pytorch.gpt2.small pytorch.bert.pad)
foreach(t ${KILN_BISECT_TESTS})
  add_test(NAME bisect.${t}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/bisect/run.sh $<TARGET_FILE:kiln>
                   ${CMAKE_BINARY_DIR}/bisect/${t} ${t}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(bisect.${t} PROPERTIES LABELS bisect SKIP_RETURN_CODE 77)
endforeach()
