# lull_discover_tests(TARGET LABELS l1 [l2 ...] [FILTER gtest-filter] [SUFFIX s])
#
# gtest_discover_tests with any number of labels. gtest_discover_tests passes its
# PROPERTIES on unquoted, so `PROPERTIES LABELS "a;b"` sets LABELS a and a property named
# b, and `ctest -L b` silently skips the tests (CMake 3.25). Here the tests are discovered
# with a TEST_LIST and every label is set afterwards, in a file ctest includes after the
# discovery script. The labels CI selects on: `concurrent` (run under ThreadSanitizer),
# `long` (skipped under sanitizers), `traces` (reads ../shared/traces).
function(lull_discover_tests target)
  cmake_parse_arguments(A "" "FILTER;SUFFIX" "LABELS" ${ARGN})
  if(NOT A_LABELS)
    message(FATAL_ERROR "lull_discover_tests(${target}): LABELS is required")
  endif()
  string(MAKE_C_IDENTIFIER "${target}_${A_FILTER}_${A_SUFFIX}" id)
  set(extra)
  if(A_FILTER)
    list(APPEND extra TEST_FILTER "${A_FILTER}")
  endif()
  if(A_SUFFIX)
    list(APPEND extra TEST_SUFFIX "${A_SUFFIX}")
  endif()
  gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST ${extra} TEST_LIST ${id}_tests)
  set(f ${CMAKE_CURRENT_BINARY_DIR}/${id}_labels.cmake)
  file(WRITE ${f}
    "foreach(t IN LISTS ${id}_tests)\n"
    "  set_tests_properties(\"\${t}\" PROPERTIES LABELS \"${A_LABELS}\")\n"
    "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${f})
endfunction()
