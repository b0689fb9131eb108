# xen-patches/xen.mk - Xen targets, included by the top-level Makefile.
#
#   make xen        fetch Debian's Xen 4.17 source, apply xen-patches/series, build the
#                   hypervisor (cached by the series' hash in .cache/xen/out/)
#   make test-xen   boot stock Debian Xen, then the patched build, in QEMU (software
#                   emulation) with two on/off workload guests; see docs/xen.md
#
# Host packages these targets need (the second and third lines: configuring Xen's
# tools for the xl patch) (installed here when missing, as root), kept apart
# from the Makefile's PACKAGES so that `make test` does not pull in QEMU.
PKG_XEN := qemu-system-x86 busybox-static cpio xz-utils bison flex quilt dpkg-dev \
           autoconf automake autotools-dev acpica-tools uuid-dev zlib1g-dev liblzma-dev \
           libyajl-dev libglib2.0-dev libpixman-1-dev libncurses-dev python3-dev
XEN_TOOLS_DIR := $(BUILD)/xen-tools
XEN_CXX := g++ -std=c++20 -Wall -Wextra -Werror -O2 -I.

.PHONY: xen test-xen xen-deps xen-tools xen-payload

# The Makefile's own `deps` logic, asked for our packages only.
xen-deps:
	@$(MAKE) --no-print-directory deps PACKAGES="$(PKG_XEN)"

xen: deps xen-deps
	bash xen-patches/build-xen.sh --jobs 2

# The dom0 probe (payload of the test dom0) and its unit test, built apart from the
# CMake tree so that test-xen needs nothing else of it.
xen-tools: deps
	@mkdir -p $(XEN_TOOLS_DIR)/payload/bin
	gcc -std=gnu11 -Wall -Wextra -Werror -O2 -I. -c dom0/xen_glue.c -o $(XEN_TOOLS_DIR)/xen_glue.o
	$(XEN_CXX) tests/xen/lull_xen_probe.cpp tests/xen/tel_reader.cpp $(XEN_TOOLS_DIR)/xen_glue.o \
	  -lxenctrl -lxencall -lxenforeignmemory -o $(XEN_TOOLS_DIR)/payload/bin/lull-xen-probe
	$(XEN_CXX) tests/xen/tel_reader_test.cpp tests/xen/tel_reader.cpp -lgtest -lgtest_main -pthread \
	  -o $(XEN_TOOLS_DIR)/lull-xen-tel-test
	$(XEN_TOOLS_DIR)/lull-xen-tel-test --gtest_brief=1

# Programs of the CMake build that go into the test dom0 as /payload/bin/<name> (their
# shared libraries follow them; see tests/xen/xen-harness.sh). Paths are relative to
# $(BUILD); a part adds its own with `XEN_PAYLOAD_BINS += dom0/<part>/<program>`.
XEN_PAYLOAD_BINS += dom0/lulld dom0/lullctl

xen-payload: build xen-tools
	@for b in $(XEN_PAYLOAD_BINS); do cp $(BUILD)/$$b $(XEN_TOOLS_DIR)/payload/bin/ || exit 1; done

test-xen: deps xen-deps xen-payload
	bash tests/xen/test-xen.sh --payload $(XEN_TOOLS_DIR)/payload
