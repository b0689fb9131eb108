# lull_xen_memory: a Xen PV domain's memory from dom0 (dom0/xen_memory.h), the Xen
# backend of the migrate and snapshot modules. Included by each module's CMakeLists.txt
# (whichever is built first defines the target), so either module builds on its own.
if(NOT TARGET lull_xen_memory)
  pkg_check_modules(LULL_XENMEM REQUIRED IMPORTED_TARGET xencontrol xenforeignmemory)
  add_library(lull_xen_memory STATIC
    ${PROJECT_SOURCE_DIR}/dom0/xen_memory.cc ${PROJECT_SOURCE_DIR}/dom0/xen_memory_xc.c)
  # xenctrl.h needs GNU C: the Xen calls are compiled as C.
  set_source_files_properties(${PROJECT_SOURCE_DIR}/dom0/xen_memory_xc.c PROPERTIES
    COMPILE_OPTIONS "-std=gnu11")
  target_include_directories(lull_xen_memory PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(lull_xen_memory PUBLIC lull_forecast PRIVATE PkgConfig::LULL_XENMEM)
endif()
