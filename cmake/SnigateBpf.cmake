# BPF build, after libbpf-bootstrap: vmlinux.h from the running kernel's BTF, each
# bpf/NAME.bpf.c compiled with clang -target bpf, then a libbpf skeleton NAME.skel.h from
# bpftool. Generated files stay in the build tree.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

set(SNIGATE_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/bpf-gen)
set(SNIGATE_VMLINUX_H ${SNIGATE_BPF_GEN_DIR}/vmlinux.h)
set(SNIGATE_KERNEL_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "BTF used to generate vmlinux.h")

add_custom_command(
  OUTPUT ${SNIGATE_VMLINUX_H}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SNIGATE_BPF_GEN_DIR}
  COMMAND ${BPFTOOL} btf dump file ${SNIGATE_KERNEL_BTF} format c > ${SNIGATE_VMLINUX_H}
  COMMENT "Generating vmlinux.h from ${SNIGATE_KERNEL_BTF}"
  VERBATIM)
# A custom command's output only gets a build rule through a target of its own directory;
# the per-object commands in bpf/ depend on this one.
add_custom_target(snigate_vmlinux_h DEPENDS ${SNIGATE_VMLINUX_H})

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(SNIGATE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(SNIGATE_BPF_ARCH arm64)
else()
  set(SNIGATE_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# snigate_bpf_object(NAME SOURCE file.bpf.c [DEPENDS headers...]) defines the interface
# target snigate_bpf_NAME that carries NAME.skel.h and links libbpf.
function(snigate_bpf_object name)
  cmake_parse_arguments(B "" "SOURCE" "DEPENDS" ${ARGN})
  set(obj ${SNIGATE_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${SNIGATE_BPF_GEN_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${SNIGATE_BPF_ARCH}
            -Wall -Werror
            -I${SNIGATE_BPF_GEN_DIR} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/bpf
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${B_SOURCE} -o ${obj}
    DEPENDS ${B_SOURCE} ${B_DEPENDS} ${SNIGATE_VMLINUX_H}
    IMPLICIT_DEPENDS C ${B_SOURCE}
    COMMENT "BPF ${name}: clang -target bpf"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${name}: bpftool gen skeleton"
    VERBATIM)
  add_custom_target(snigate_bpf_${name}_gen DEPENDS ${skel})
  add_dependencies(snigate_bpf_${name}_gen snigate_vmlinux_h)
  add_library(snigate_bpf_${name} INTERFACE)
  add_dependencies(snigate_bpf_${name} snigate_bpf_${name}_gen)
  target_include_directories(snigate_bpf_${name} INTERFACE ${SNIGATE_BPF_GEN_DIR})
  target_link_libraries(snigate_bpf_${name} INTERFACE PkgConfig::LIBBPF snigate_abi)
endfunction()
