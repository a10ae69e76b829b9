# SPDX-License-Identifier: Apache-2.0
# The two commands a newcomer needs: `make run` and `make check`.
# Both do all set-up on a fresh Debian 12 machine (as root) first.

BUILD      ?= build
BUILD_ASAN ?= build-asan
DATA_DIR   ?= /var/lib/kvmcloud
CACHE_DIR  ?= /var/cache/kvmcloud
IMAGE      := $(CACHE_DIR)/test-image/kctest.qcow2

.PHONY: all bootstrap build build-asan image run check check-long bench bench-fleet bench-clone bench-net bench-net-guests format clean

all: build

bootstrap:
	scripts/bootstrap.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug

build-asan: $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

image:
	scripts/build-test-image.sh $(CACHE_DIR)/test-image

# Set up, build, start the all-in-one server, boot one VM; runs until Ctrl-C.
run: bootstrap
	$(MAKE) build image
	scripts/run.sh $(BUILD) $(DATA_DIR) $(IMAGE)

# Set up, build (plain and with sanitizers), run every test.
check: bootstrap
	$(MAKE) build build-asan image
	python3 tests/harness.py --build $(BUILD) --build-asan $(BUILD_ASAN) --image $(IMAGE)

# Long scenarios and benchmarks (not part of `make check`).
check-long bench: bootstrap
	$(MAKE) build image
	bench/vm_create.sh $(BUILD) $(IMAGE)

# Linked and full clones, 50 parallel creates from one template (BENCH_PAR).
bench-clone: bootstrap
	$(MAKE) build image
	bench/clone.sh $(BUILD) $(IMAGE)

# One server, 1,000 simulated agents, 10,000 VMs on loopback (FLEET_N, FLEET_VMS).
bench-fleet: bootstrap
	$(MAKE) build
	bench/fleet.sh $(BUILD)

# Networking: iperf3 over bridge / NAT / VXLAN / OVS netdev beside a raw veth
# pair, 100 nft rules via libnftables vs nft -f, a libvirt NAT network via
# the API vs virsh (docs/benchmarks.md).
bench-net: bootstrap
	$(MAKE) build
	bench/net.sh $(BUILD)

# TCP throughput between real TCG guests (isolated bridge, NAT, OVS VLAN)
# beside a raw veth pair; TCG bounds the guest numbers (docs/benchmarks.md).
bench-net-guests: bootstrap
	$(MAKE) build image
	bench/net-guests.sh $(BUILD) $(IMAGE)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
