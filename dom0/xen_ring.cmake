# lulld's end of the patched hypervisor's lull region (dom0/xen_ring.*) and the C glue
# for Xen's toolstack headers (dom0/xen_glue.c; Debian's xenctrl.h needs GNU C).
# Included by dom0/CMakeLists.txt.
pkg_check_modules(LULL_XENRING REQUIRED IMPORTED_TARGET xencontrol xencall xenforeignmemory)
add_library(lull_xen_ring STATIC xen_ring.cc xen_glue.c)
set_source_files_properties(xen_glue.c PROPERTIES COMPILE_OPTIONS "-std=gnu11")
target_include_directories(lull_xen_ring PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(lull_xen_ring PUBLIC lull_shm lull_forecast PkgConfig::LULL_XENRING Threads::Threads)
# lulld attaches it with --xen-ring.
target_link_libraries(lulld PRIVATE lull_xen_ring)
