#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: networking (docs/networking.md; results in docs/benchmarks.md).
#   bench/net.sh [BUILD_DIR]          (root; `make bench-net`)
# 1. TCP throughput with iperf3 (BENCH_NET_SECS seconds, default 3) between
#    two network namespaces standing in for guests (veth ends, not VMs:
#    under TCG a guest's own CPU would be the bottleneck, not the path):
#      raw veth pair | Linux bridge | NAT (nft masquerade, routed) |
#      VXLAN between two "hosts" (bridge + vxlan per host, MTU 1450) |
#      Open vSwitch, userspace datapath (datapath_type=netdev, with TX
#      checksum offload off on the guests, the fix TCP needs there)
#    and each one's ratio to the raw veth pair of the same run.
# 2. 100 security-group-like rules applied: libnftables in-process
#    (kc-nft-apply) against `nft -f` of the same text (a process each).
# 3. A libvirt NAT network: define + start through the libvirt API
#    (kc-net-define) against `virsh net-define` + `virsh net-start` of the
#    same XML, in a simulated host's own libvirtd (scripts/simhost.sh).
# Everything runs in namespaces named kcbn-* (and simulated host
# kcbench-net) that the script makes and removes; the root namespace's
# links, firewall and libvirtd are not touched.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_NET_SECS:-3}
RUNS=${BENCH_NET_RUNS:-20}
SIMHOST=$here/scripts/simhost.sh
SIM=kcbench-net
SIM_IDX=${BENCH_NET_SIM_INDEX:-49}
NS=(kcbn-a1 kcbn-b1 kcbn-h2 kcbn-a2 kcbn-b2 kcbn-h3 kcbn-a3 kcbn-w3 kcbn-h4a kcbn-h4b kcbn-g4a
	kcbn-g4b kcbn-ovs kcbn-g5a kcbn-g5b kcbn-nft)
OVS_DIR=/run/kcbn-ovs
ovs_holder=

[ "$(id -u)" -eq 0 ] || { echo "bench/net.sh: must run as root" >&2; exit 1; }
for t in iperf3 ip nft ovs-vswitchd ovsdb-server ethtool virsh python3; do
	command -v $t >/dev/null || { echo "bench/net.sh: $t not found" >&2; exit 1; }
done
[ -x "$BUILD/bench/kc-nft-apply" ] || { echo "bench/net.sh: build first ($BUILD)" >&2; exit 1; }

cleanup() {
	local n p
	if [ -n "$ovs_holder" ]; then
		nsenter -t "$ovs_holder" -m -n ovs-appctl -t /run/openvswitch/ovs-vswitchd.ctl exit \
			>/dev/null 2>&1 || true
		p=$(nsenter -t "$ovs_holder" -m cat /run/openvswitch/ovsdb-server.pid 2>/dev/null) &&
			kill "$p" 2>/dev/null || true
		kill "$ovs_holder" 2>/dev/null || true
	fi
	for n in "${NS[@]}"; do
		# iperf3 servers left by an interrupted run: only ours, by namespace.
		for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
		ip netns del "$n" 2>/dev/null || true
	done
	rm -rf "$OVS_DIR"
	"$SIMHOST" stop "$SIM" --purge >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup

nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }
mkns() { local n; for n in "$@"; do ip netns add "$n"; nsx "$n" ip link set lo up; done; }
# veth NS1 IF1 NS2 IF2: a pair with its ends in two namespaces, both up.
veth() {
	ip link add kcbn-tmp1 type veth peer name kcbn-tmp2
	ip link set kcbn-tmp1 netns "$1"
	ip link set kcbn-tmp2 netns "$3"
	nsx "$1" ip link set kcbn-tmp1 name "$2" up
	nsx "$3" ip link set kcbn-tmp2 name "$4" up
}

# iperf NS_CLIENT NS_SERVER ADDR: Gbit/s received.
iperf() {
	nsx "$2" iperf3 -s -1 -B "$3" >/dev/null 2>&1 &
	local srv=$! i
	for i in $(seq 1 50); do nsx "$2" ss -ltn 2>/dev/null | grep -q "$3:5201" && break; sleep 0.1; done
	nsx "$1" iperf3 -c "$3" -t "$SECS" -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' ||
		echo 0
	wait "$srv" 2>/dev/null || true
}

echo "## TCP throughput, iperf3 ${SECS} s, netns stand-ins for guests ($(nproc) cores, $(uname -r))"

# 1. raw veth pair
mkns kcbn-a1 kcbn-b1
veth kcbn-a1 eth0 kcbn-b1 eth0
nsx kcbn-a1 ip addr add 10.99.1.1/24 dev eth0
nsx kcbn-b1 ip addr add 10.99.1.2/24 dev eth0
raw=$(iperf kcbn-a1 kcbn-b1 10.99.1.2)

# 2. Linux bridge in a "host" namespace
mkns kcbn-h2 kcbn-a2 kcbn-b2
nsx kcbn-h2 ip link add br0 type bridge
nsx kcbn-h2 ip link set br0 up
veth kcbn-a2 eth0 kcbn-h2 pa
veth kcbn-b2 eth0 kcbn-h2 pb
nsx kcbn-h2 ip link set pa master br0
nsx kcbn-h2 ip link set pb master br0
nsx kcbn-a2 ip addr add 10.99.2.1/24 dev eth0
nsx kcbn-b2 ip addr add 10.99.2.2/24 dev eth0
bridge=$(iperf kcbn-a2 kcbn-b2 10.99.2.2)

# 3. NAT: guest behind a bridge, masqueraded out of the host's uplink
mkns kcbn-h3 kcbn-a3 kcbn-w3
nsx kcbn-h3 ip link add br0 type bridge
nsx kcbn-h3 ip addr add 10.99.3.1/24 dev br0
nsx kcbn-h3 ip link set br0 up
veth kcbn-a3 eth0 kcbn-h3 pa
nsx kcbn-h3 ip link set pa master br0
nsx kcbn-a3 ip addr add 10.99.3.2/24 dev eth0
nsx kcbn-a3 ip route add default via 10.99.3.1
veth kcbn-h3 up kcbn-w3 eth0
nsx kcbn-h3 ip addr add 198.51.100.2/24 dev up
nsx kcbn-w3 ip addr add 198.51.100.1/24 dev eth0
nsx kcbn-h3 sysctl -qw net.ipv4.ip_forward=1
nsx kcbn-h3 nft -f - <<'EOF'
table ip kcbn_nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "up" ip saddr 10.99.3.0/24 masquerade
	}
}
EOF
nat=$(iperf kcbn-a3 kcbn-w3 198.51.100.1)

# 4. VXLAN: two hosts, an underlay veth, a bridge + vxlan per host
mkns kcbn-h4a kcbn-h4b kcbn-g4a kcbn-g4b
veth kcbn-h4a u kcbn-h4b u
nsx kcbn-h4a ip addr add 172.31.99.1/24 dev u
nsx kcbn-h4b ip addr add 172.31.99.2/24 dev u
for s in a:1:2 b:2:1; do
	h=kcbn-h4${s%%:*}
	me=${s#*:}; me=${me%%:*}; peer=${s##*:}
	nsx $h ip link add vx99 type vxlan id 5099 dstport 4789 local 172.31.99.$me dev u nolearning
	nsx $h ip link add br99 type bridge
	nsx $h ip link set vx99 master br99
	nsx $h ip link set vx99 up
	nsx $h ip link set br99 up
	nsx $h bridge fdb append 00:00:00:00:00:00 dev vx99 dst 172.31.99.$peer
	veth kcbn-g4${s%%:*} eth0 $h p
	nsx $h ip link set p mtu 1450
	nsx $h ip link set p master br99
	nsx kcbn-g4${s%%:*} ip link set eth0 mtu 1450
	nsx kcbn-g4${s%%:*} ip addr add 10.99.4.$me/24 dev eth0
done
vxlan=$(iperf kcbn-g4a kcbn-g4b 10.99.4.2)

# 5. Open vSwitch, userspace datapath, in its own net + mount namespace
mkns kcbn-ovs kcbn-g5a kcbn-g5b
mkdir -p "$OVS_DIR"
ip netns exec kcbn-ovs unshare --mount --propagation private bash -c \
	"mkdir -p /run/openvswitch && mount -t tmpfs -o mode=0750 kcbn-ovs /run/openvswitch && exec sleep infinity" \
	</dev/null >/dev/null 2>&1 &
ovs_holder=$!
sleep 0.3
ovsx() { nsenter -t "$ovs_holder" -m -n "$@"; }
ovsx ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsx ovsdb-server "$OVS_DIR/conf.db" --remote=punix:/run/openvswitch/db.sock \
	--pidfile=/run/openvswitch/ovsdb-server.pid --unixctl=/run/openvswitch/ovsdb-server.ctl \
	--detach --no-chdir --log-file="$OVS_DIR/ovsdb-server.log" >/dev/null 2>&1
ovsx ovs-vsctl --no-wait init
ovsx ovs-vswitchd unix:/run/openvswitch/db.sock --pidfile=/run/openvswitch/ovs-vswitchd.pid \
	--unixctl=/run/openvswitch/ovs-vswitchd.ctl --detach --no-chdir \
	--log-file="$OVS_DIR/ovs-vswitchd.log" >/dev/null 2>&1
ovsx ovs-vsctl --timeout=10 add-br brb -- set bridge brb datapath_type=netdev
for g in a b; do
	veth kcbn-g5$g eth0 kcbn-ovs p$g
	ovsx ovs-vsctl --timeout=10 add-port brb p$g
	# The checksum fix (docs/networking.md): OVS netdev sends what still
	# carries CHECKSUM_PARTIAL with a bad checksum.
	nsx kcbn-g5$g ethtool -K eth0 tx off >/dev/null
done
nsx kcbn-g5a ip addr add 10.99.5.1/24 dev eth0
nsx kcbn-g5b ip addr add 10.99.5.2/24 dev eth0
ovs=$(iperf kcbn-g5a kcbn-g5b 10.99.5.2)

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.2fx' % (a/b) if b else 'n/a')" "$1" "$2"; }
printf '%-44s %8s Gbit/s\n' "raw veth pair" "$raw"
printf '%-44s %8s Gbit/s  %s of raw\n' "Linux bridge" "$bridge" "$(ratio "$bridge" "$raw")"
printf '%-44s %8s Gbit/s  %s of raw\n' "NAT (bridge, routed, nft masquerade)" "$nat" "$(ratio "$nat" "$raw")"
printf '%-44s %8s Gbit/s  %s of raw\n' "VXLAN (bridge + vxlan, two hosts, MTU 1450)" "$vxlan" "$(ratio "$vxlan" "$raw")"
printf '%-44s %8s Gbit/s  %s of raw\n' "OVS netdev (userspace, tx csum off)" "$ovs" "$(ratio "$ovs" "$raw")"

echo "## 100 security-group-like rules (10 chains of 10), applied $RUNS times, p50"
mkns kcbn-nft
RF=$(mktemp /tmp/kcbn-rules.XXXXXX.nft)
lib=$(nsx kcbn-nft "$BUILD/bench/kc-nft-apply" 100 "$RUNS" "$RF" | awk '{print $2}')
cli=$(nsx kcbn-nft python3 - "$RF" "$RUNS" <<'EOF'
import subprocess, sys, time
f, runs = sys.argv[1], int(sys.argv[2])
ms = []
for _ in range(runs):
    t = time.monotonic()
    subprocess.run(["nft", "-f", f], check=True)
    ms.append((time.monotonic() - t) * 1e3)
ms.sort()
print("%.2f" % ms[len(ms) // 2])
EOF
)
rm -f "$RF"
printf '%-44s %8s ms\n' "libnftables, in-process (kc-nft-apply)" "$lib"
printf '%-44s %8s ms  %s of libnftables\n' "nft -f (a process per apply)" "$cli" "$(ratio "$cli" "$lib")"

echo "## libvirt NAT network: define + start, $((RUNS / 2)) runs, p50 (simulated host's libvirtd)"
URI=$("$SIMHOST" start "$SIM" "$SIM_IDX" | awk '{print $2}')
XML=$(mktemp /tmp/kcbn-net.XXXXXX.xml)
cat >"$XML" <<'EOF'
<network>
  <name>kcbn-nat</name>
  <forward mode='nat'/>
  <bridge name='kcbnnat0' stp='off' delay='0'/>
  <ip address='10.98.0.1' netmask='255.255.255.0'>
    <dhcp><range start='10.98.0.100' end='10.98.0.200'/></dhcp>
  </ip>
</network>
EOF
api=$("$BUILD/bench/kc-net-define" "$URI" "$XML" $((RUNS / 2)))
api_def=$(echo "$api" | awk '/define/ {print $2}')
api_start=$(echo "$api" | awk '/start/ {print $2}')
virsh_ms=$(python3 - "$URI" "$XML" $((RUNS / 2)) <<'EOF'
import subprocess, sys, time
uri, xml, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = ["virsh", "-q", "-c", uri]
d, s = [], []
for _ in range(runs):
    t0 = time.monotonic()
    subprocess.run(v + ["net-define", xml], check=True, stdout=subprocess.DEVNULL)
    t1 = time.monotonic()
    subprocess.run(v + ["net-start", "kcbn-nat"], check=True, stdout=subprocess.DEVNULL)
    t2 = time.monotonic()
    d.append((t1 - t0) * 1e3); s.append((t2 - t1) * 1e3)
    subprocess.run(v + ["net-destroy", "kcbn-nat"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(v + ["net-undefine", "kcbn-nat"], check=True, stdout=subprocess.DEVNULL)
d.sort(); s.sort()
print("%.1f %.1f" % (d[len(d) // 2], s[len(s) // 2]))
EOF
)
rm -f "$XML"
vdef=${virsh_ms% *}
vstart=${virsh_ms#* }
api_sum=$(python3 -c "print('%.1f' % ($api_def + $api_start))")
virsh_sum=$(python3 -c "print('%.1f' % ($vdef + $vstart))")
printf '%-44s %8s ms  (define %s + start %s)\n' "libvirt API (kc-net-define)" "$api_sum" "$api_def" "$api_start"
printf '%-44s %8s ms  (define %s + start %s)  %s of the API\n' "virsh net-define + net-start" \
	"$virsh_sum" "$vdef" "$vstart" "$(ratio "$virsh_sum" "$api_sum")"
