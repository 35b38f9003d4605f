# Oracle tests in Python (numpy + the gguf package): they read the real model and compare lowbit's output with
# references that share no code with lowbit. Exit code 77 means "skipped" (no model, no package).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME python.logits_oracle
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/python/logits_oracle.py --lowbit $<TARGET_FILE:lowbit>)
  set_tests_properties(python.logits_oracle PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS oracle)
endif()
