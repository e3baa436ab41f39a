# Layers the build enforces. Each userspace library's include root is a directory of the build
# tree that holds one symlink, to the library's own folder; linking another library (PUBLIC or
# PRIVATE, as CMake propagates include directories) adds that library's root. So
# `#include "bans/ban_manager.h"` compiles only in a library that links snigate_bans: an edge
# the layer table in README.md does not allow fails the build instead of a review.
function(snigate_layer target folder)
  set(root ${CMAKE_BINARY_DIR}/layers/${target})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/userspace/${folder} ${root}/${folder} SYMBOLIC)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${root})
  else()
    target_include_directories(${target} PUBLIC ${root})
  endif()
endfunction()

# Like snigate_layer, for a library that is one header of a folder (relay/mode.h): its root
# holds a link to that file only.
function(snigate_layer_header target header)
  set(root ${CMAKE_BINARY_DIR}/layers/${target})
  get_filename_component(dir ${header} DIRECTORY)
  file(MAKE_DIRECTORY ${root}/${dir})
  file(CREATE_LINK ${CMAKE_SOURCE_DIR}/userspace/${header} ${root}/${header} SYMBOLIC)
  target_include_directories(${target} INTERFACE ${root})
endfunction()
