# The layers of hook/, lowest first, and what each may include. A back-edge (engine including
# steps/, profile including engine/, ...) fails the build: this script runs before the core
# library compiles (hook/CMakeLists.txt, target gpuhook_layers).
#
#   host      the effect boundary: Fs, Runner, Clock, Signals, Locker (real implementations)
#   sysinfo   read-only facts of the host (PCI, IOMMU groups, modules, MUX)
#   profile   profiles and the global config (toml++ only here)
#   domain    the domain XML reader (pugixml)
#   engine    journal, steps' interface, engine, session; handed the step kinds, never calls steps/
#   steps     one family of step kinds per file, and their registry
#   plan      the planner: chooses the steps from profile, host and domain
#   app       the hook path and the CLI verbs
#   fake      the fake host, for tests (host interfaces only)
#
# Usage: cmake -DSRC=<hook dir> -DSTAMP=<file> -P check_layers.cmake
cmake_policy(SET CMP0057 NEW)  # if(... IN_LIST ...)
set(allowed_host    host)
set(allowed_sysinfo host sysinfo)
set(allowed_profile host sysinfo profile)
set(allowed_domain  host domain)
set(allowed_engine  host sysinfo profile domain engine)
set(allowed_steps   host sysinfo profile domain engine steps)
set(allowed_plan    host sysinfo profile domain engine steps plan)
set(allowed_app     host sysinfo profile domain engine steps plan app)
set(allowed_fake    host fake)
set(layers host sysinfo profile domain engine steps plan app fake)

set(problems "")
foreach(layer IN LISTS layers)
  file(GLOB files "${SRC}/${layer}/*.h" "${SRC}/${layer}/*.cpp")
  foreach(f IN LISTS files)
    file(STRINGS "${f}" incs REGEX "^[ \t]*#[ \t]*include[ \t]+\"[a-z_]+/")
    set(n 0)
    foreach(line IN LISTS incs)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([a-z_]+)/.*" "\\1" dep "${line}")
      if(NOT dep IN_LIST allowed_${layer})
        file(RELATIVE_PATH rel "${SRC}" "${f}")
        string(APPEND problems "  hook/${rel}: ${line}\n    layer '${layer}' may include only: ${allowed_${layer}}\n")
      endif()
    endforeach()
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "gpuhook: an include crosses the layers upwards (hook/check_layers.cmake says why "
                      "each layer sits where it does; pass what is needed down as an argument instead):\n${problems}")
endif()
file(WRITE "${STAMP}" "ok\n")
