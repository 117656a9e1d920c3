# flowstate_add_component(NAME SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...] [TESTS ...])
# Builds library flowstate_NAME from SOURCES with include/ as its public
# headers, and one doctest executable per file in TESTS, each a CTest test.
function(flowstate_add_component name)
  cmake_parse_arguments(arg "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS;TESTS" ${ARGN})
  set(target flowstate_${name})
  add_library(${target} STATIC ${arg_SOURCES})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(${target} PUBLIC ${arg_PUBLIC_DEPS} PRIVATE ${arg_PRIVATE_DEPS})
  foreach(test_file IN LISTS arg_TESTS)
    get_filename_component(test_name ${test_file} NAME_WE)
    flowstate_add_unit_test(${name}_${test_name} ${test_file} ${target})
  endforeach()
endfunction()

# One doctest executable, registered with CTest under NAME.
function(flowstate_add_unit_test name file)
  add_executable(test_${name} ${file} ${CMAKE_SOURCE_DIR}/cmake/doctest_main.cpp)
  target_include_directories(test_${name} PRIVATE ${DOCTEST_INCLUDE_DIR})
  target_link_libraries(test_${name} PRIVATE ${ARGN})
  add_test(NAME ${name} COMMAND test_${name})
endfunction()
