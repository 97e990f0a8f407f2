# Checks the shared libraries a binary needs (its NEEDED entries, read with readelf):
#   cmake -DBIN=path/to/hearth [-DPORTABLE=ON] [-DMAX_GLIBC=2.35] [-DREADELF=readelf]
#         -P needed_libs.cmake
# Always: no libvulkan (the Vulkan loader is opened at run time, engine/vulkan/loader.h),
# so the binary starts on machines without one. PORTABLE=ON (the dist preset's binary,
# which ships in the VS Code extension): nothing but glibc's own libraries. MAX_GLIBC: no
# symbol version newer than that glibc release (the oldest glibc the binary runs on).
if(NOT BIN)
  message(FATAL_ERROR "usage: cmake -DBIN=<binary> [-DPORTABLE=ON] [-DMAX_GLIBC=2.35] "
    "-P needed_libs.cmake")
endif()
if(NOT READELF)
  set(READELF readelf)
endif()
execute_process(COMMAND ${READELF} -d ${BIN} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} -d ${BIN} failed (${rc})")
endif()
string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]+\\]" entries "${dynamic}")
set(needed "")
foreach(entry IN LISTS entries)
  string(REGEX REPLACE ".*\\[([^]]+)\\]$" "\\1" lib "${entry}")
  list(APPEND needed ${lib})
endforeach()
if(NOT needed)
  message(FATAL_ERROR "${BIN} has no NEEDED entries: not a dynamically linked binary?")
endif()
message(STATUS "${BIN} needs: ${needed}")

foreach(lib IN LISTS needed)
  if(lib MATCHES "^libvulkan")
    message(FATAL_ERROR "${BIN} links ${lib}; it must open the Vulkan loader at run time")
  endif()
  # glibc's libraries: libc, libm, the dynamic linker, and the stubs glibc 2.34+ keeps for
  # old links (libdl, libpthread, librt).
  if(PORTABLE AND NOT lib MATCHES "^(libc|libm|libdl|libpthread|librt)\\.so\\.[0-9]+$|^ld-linux")
    message(FATAL_ERROR "${BIN} needs ${lib}; a portable build needs only glibc's libraries")
  endif()
endforeach()

execute_process(COMMAND ${READELF} -V ${BIN} OUTPUT_VARIABLE versions RESULT_VARIABLE rc)
string(REGEX MATCHALL "Name: GLIBC_[0-9.]+" glibc "${versions}")
set(newest 0)
foreach(v IN LISTS glibc)
  string(REPLACE "Name: GLIBC_" "" v "${v}")
  if(v VERSION_GREATER newest)
    set(newest ${v})
  endif()
endforeach()
message(STATUS "${BIN} needs glibc ${newest} or newer")
if(MAX_GLIBC AND newest VERSION_GREATER MAX_GLIBC)
  message(FATAL_ERROR "${BIN} needs glibc ${newest}, more than MAX_GLIBC=${MAX_GLIBC}")
endif()
