# What `snigated --version` and `snigatectl --version` print: the project version and the git
# commit this build was configured from (`git describe --always --dirty`), "unknown" outside a
# git checkout (a source tarball, a Debian source package). Taken at configure time: re-run
# cmake after a commit to refresh it.
find_package(Git QUIET)
set(SNIGATE_GIT_COMMIT "unknown")
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} describe --always --dirty
                  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
                  RESULT_VARIABLE describe_result
                  OUTPUT_VARIABLE describe_output
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(describe_result EQUAL 0 AND NOT describe_output STREQUAL "")
    set(SNIGATE_GIT_COMMIT "${describe_output}")
  endif()
endif()
configure_file(${CMAKE_SOURCE_DIR}/cmake/version.h.in
               ${CMAKE_BINARY_DIR}/generated/snigate/version.h @ONLY)
add_library(snigate_version INTERFACE)
target_include_directories(snigate_version INTERFACE ${CMAKE_BINARY_DIR}/generated)
