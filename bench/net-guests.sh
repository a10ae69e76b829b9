#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: TCP throughput between real TCG guests on kvmcloud's guest
# networks (docs/networking.md; results in docs/benchmarks.md).
#   bench/net-guests.sh [BUILD_DIR] [IMAGE]      (root; `make bench-net-guests`)
# An all-in-one kvmcloud-server (embedded agent, accel=tcg) runs inside one
# simulated host (scripts/simhost.sh: its own libvirtd, network namespace
# and Open vSwitch), so the root namespace's libvirtd, links and firewall
# are not touched.  Two kctest guests (busybox, 128 MiB, one vCPU), each
# with three NICs made through the API:
#   (a) an isolated network: guest to guest through its Linux bridge;
#   (b) a NAT network: guest 1 to a "WAN" namespace behind the host's
#       uplink, masqueraded by libvirt's iptables-nft rules;
#   (c) an OVS VLAN network (userspace datapath, checksum offload off):
#       guest to guest through ovs-vswitchd.
# Each path: `dd if=/dev/zero bs=64k count=N | nc IP PORT` in the sending
# guest, timed there with /proc/uptime (10 ms steps) until the receiver,
# `nc -l -p PORT | wc -c`, has closed; the receiver's byte count must be
# the sent one.  Beside them, in the same run: a raw veth pair between two
# namespaces with iperf3 and with the same busybox dd | nc.
# TCG emulates every guest instruction on the host's CPU: these numbers are
# the guests' CPU limit, not the network path's.  No pass/fail thresholds.
# Knobs: BENCH_NG_MB (MiB per transfer, default 48), BENCH_NG_RUNS
# (transfers per path, median shown, default 3), BENCH_NG_SECS (iperf3
# seconds, default 3), BENCH_NG_SIM_INDEX (default 27).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
IMAGE=${2:-/var/cache/kvmcloud/test-image/kctest.qcow2}
here=$(cd "$(dirname "$0")/.." && pwd)
MB=${BENCH_NG_MB:-48}
SECS=${BENCH_NG_SECS:-3}
RUNS=${BENCH_NG_RUNS:-3}
SIMHOST=$here/scripts/simhost.sh
SIM=kcbench-ng
SIM_IDX=${BENCH_NG_SIM_INDEX:-27}
PORT=$((19470 + RANDOM % 500))
SRV=$BUILD/src/server/kvmcloud-server
CLI=$BUILD/src/cli/kvmcloud
D=/var/tmp/kc-netguests.$$
WAN=kcbng-wan
NS=(kcbng-ra kcbng-rb $WAN)
G1=kcbng-g1
G2=kcbng-g2
COUNT=$((MB * 16))
BYTES=$((COUNT * 65536))
srv_pid=
t_start=$(date +%s)

[ "$(id -u)" -eq 0 ] || { echo "bench/net-guests.sh: must run as root" >&2; exit 1; }
for t in iperf3 ip busybox virsh ovs-vsctl python3 flock; do
	command -v $t >/dev/null || { echo "bench/net-guests.sh: $t not found" >&2; exit 1; }
done
[ -x "$SRV" ] && [ -x "$CLI" ] || { echo "bench/net-guests.sh: build first ($BUILD)" >&2; exit 1; }
[ -r "$IMAGE" ] || { echo "bench/net-guests.sh: no test image $IMAGE (make image)" >&2; exit 1; }

# TCG guests on two cores: an e2e run at the same time would skew both.
exec 8>/var/tmp/kvmcloud-e2e.lock
flock -n 8 || { echo "# waiting for the e2e lock (/var/tmp/kvmcloud-e2e.lock)"; flock 8; }

cleanup() {
	local n p
	for n in "${NS[@]}"; do
		for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
		ip netns del "$n" 2>/dev/null || true
	done
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		for i in $(seq 1 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
	fi
	# Destroys the guests and networks with the host's libvirtd and OVS.
	"$SIMHOST" stop "$SIM" --purge >/dev/null 2>&1 || true
	rm -rf "$D"
}
trap cleanup EXIT

nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }
sx() { "$SIMHOST" exec "$SIM" "$@"; }
kc() { sx "$CLI" --server "http://127.0.0.1:$PORT" --token-file "$D/admin.token" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print('"$1"')'; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.3f' % (a/b) if b else 'n/a')" "$1" "$2"; }
elapsed() { echo $(($(date +%s) - t_start)); }

# ---- 0. the raw veth pair (iperf3, then busybox dd | nc) ----
for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
"$SIMHOST" stop "$SIM" --purge >/dev/null 2>&1 || true
mkdir -p "$D/images"
chmod 755 "$D" "$D/images"
ip netns add kcbng-ra
ip netns add kcbng-rb
ip link add kcbng-r0 type veth peer name kcbng-r1
ip link set kcbng-r0 netns kcbng-ra
ip link set kcbng-r1 netns kcbng-rb
nsx kcbng-ra ip addr add 10.97.9.1/24 dev kcbng-r0
nsx kcbng-rb ip addr add 10.97.9.2/24 dev kcbng-r1
nsx kcbng-ra ip link set kcbng-r0 up
nsx kcbng-rb ip link set kcbng-r1 up
nsx kcbng-rb iperf3 -s -1 -B 10.97.9.2 >/dev/null 2>&1 &
for i in $(seq 1 50); do nsx kcbng-rb ss -ltn | grep -q '10.97.9.2:5201' && break; sleep 0.1; done
raw_iperf=$(nsx kcbng-ra iperf3 -c 10.97.9.2 -t "$SECS" -J |
	python3 -c 'import json,sys; print("%.0f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))')
wait
# The same tool the guests use, on the same pair (1 GiB: fast here).
nsx kcbng-rb sh -c "sleep 60 | busybox nc -l -p 5301 | wc -c >$D/raw.rx" 2>/dev/null &
disown
for i in $(seq 1 50); do nsx kcbng-rb ss -ltn | grep -q ':5301' && break; sleep 0.1; done
raw_nc=$(nsx kcbng-ra python3 - <<'EOF'
import subprocess, time
t = time.monotonic()
subprocess.run("busybox dd if=/dev/zero bs=64k count=16384 2>/dev/null | busybox nc 10.97.9.2 5301",
               shell=True, check=True)
print("%.0f" % (16384 * 65536 * 8 / (time.monotonic() - t) / 1e6))
EOF
)
sleep 0.5
[ "$(cat "$D/raw.rx" 2>/dev/null)" = $((16384 * 65536)) ] || raw_nc="0 (short read)"
rm -f "$D/raw.rx"
for p in $(ip netns pids kcbng-rb); do kill "$p" 2>/dev/null || true; done

# ---- 1. the host: a simulated host, OVS, a WAN behind its uplink ----
"$SIMHOST" start "$SIM" "$SIM_IDX" >/dev/null
"$SIMHOST" ovs "$SIM" >/dev/null
sx ovs-vsctl --timeout=10 --may-exist add-br cloudbr -- set bridge cloudbr datapath_type=netdev
ip netns add $WAN
ip link add kcbngw0 type veth peer name kcbngw1
ip link set kcbngw0 netns "kcsim-$SIM"
ip link set kcbngw1 netns $WAN
sx ip addr add 198.51.100.2/24 dev kcbngw0
sx ip link set kcbngw0 up
nsx $WAN ip addr add 198.51.100.1/24 dev kcbngw1
nsx $WAN ip link set kcbngw1 up
nsx $WAN ip link set lo up

cp "$IMAGE" "$D/images/kctest.qcow2"
# The server's own pid (simhost.sh exec may not exec it), for the clean-up.
sx bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$D/server.pid" "$SRV" --all-in-one \
	--data-dir "$D" --listen "127.0.0.1:$PORT" -o accel=tcg -o storage.pool=kcbng \
	>"$D/server.log" 2>&1 &
for i in $(seq 1 50); do [ -s "$D/server.pid" ] && break; sleep 0.1; done
srv_pid=$(cat "$D/server.pid")
for i in $(seq 1 300); do
	sx curl -fs -o /dev/null "http://127.0.0.1:$PORT/api/v1/openapi.json" && break
	kill -0 $srv_pid 2>/dev/null || { tail -5 "$D/server.log"; exit 1; }
	sleep 0.2
done
for i in $(seq 1 120); do
	[ "$(kc --json host list 2>/dev/null | jget '[h["state"] for h in d["hosts"]]')" = "['Up']" ] && break
	sleep 0.5
done

kc net-create kcbng-iso --kind isolated --cidr 10.97.1.0/24 >/dev/null
kc net-create kcbng-nat --kind nat --cidr 10.97.2.0/24 >/dev/null
kc net-create kcbng-v200 --kind vlan --bridge cloudbr --vlan 200 --cidr 10.97.3.0/24 >/dev/null
t0=$(date +%s.%N)
for g in $G1 $G2; do
	kc vm create $g --image kctest --memory 128 --nic kcbng-iso --nic kcbng-nat \
		--nic kcbng-v200 >/dev/null 2>"$D/create.err" || { cat "$D/create.err" >&2; exit 1; }
done

# addr NET VM: "IP MAC" the API allocated.
addr() {
	kc --json net-addresses "$1" |
		jget "' '.join([(a['ip'], a['mac']) for a in d['addresses'] if a['vm'] == '$2'][0])"
}

# ---- the guests' consoles ----
# con VM COMMAND TAG [SECONDS]: types COMMAND once, then waits for the
# guest's "TAG rc=N" line and prints the line.  Once only: a transfer must
# not run twice (sim_console_run in the tests types again every 3 s).
con() {
	local log=$D/console/$1.log pts fd i rc=1
	pts=$(sx virsh -q ttyconsole "$1") && [ -c "$pts" ] || return 1
	exec {fd}<>"$pts"
	stty -F "$pts" raw -echo 2>/dev/null
	printf '%s; echo %s rc=$?\r' "$2" "$3" >&"$fd"
	for i in $(seq 1 $((${4:-60} * 10))); do
		if grep -aEq "$3 rc=[0-9]" "$log"; then rc=0; break; fi
		sleep 0.1
	done
	exec {fd}>&-
	[ $rc = 0 ] && grep -aE "$3 rc=[0-9]" "$log" | tail -n 1
}
# hello VM: until the shell answers (typed again every 3 s, harmless).
hello() {
	local i
	for i in $(seq 1 20); do
		con "$1" "echo" "hi$i-$1" 3 >/dev/null && return 0
	done
	return 1
}

for g in $G1 $G2; do
	for i in $(seq 1 480); do
		grep -aq KVMCLOUD-READY "$D/console/$g.log" 2>/dev/null && break
		sleep 0.5
	done
	grep -aq KVMCLOUD-READY "$D/console/$g.log" || { echo "$g did not boot" >&2; exit 1; }
	hello $g || { echo "$g: no shell on the console" >&2; exit 1; }
done
boot=$(python3 -c "import time; print('%.0f' % (time.time() - $t0))")

# Each NIC takes the API's address (found by MAC: NIC order in the guest
# is not promised); the NAT NIC routes to the WAN through its gateway.
setup_nics() {
	local g=$1 net ip mac cmd=""
	for net in kcbng-iso kcbng-nat kcbng-v200; do
		read -r ip mac < <(addr $net $g)
		cmd="$cmd i=\$(grep -l $mac /sys/class/net/*/address | cut -d/ -f5);"
		cmd="$cmd ip addr flush dev \$i; ip addr add $ip/24 dev \$i && ip link set \$i up &&"
		[ $net != kcbng-nat ] || cmd="$cmd ip route replace 198.51.100.0/24 via 10.97.2.1 &&"
		IPS[$net/$g]=$ip
	done
	con $g "$cmd true" "nics-$g" 20 >/dev/null
}
declare -A IPS
setup_nics $G1
setup_nics $G2
ip_iso_2=${IPS[kcbng-iso/$G2]}
ip_v200_2=${IPS[kcbng-v200/$G2]}

# xfer PATH DEST_IP PORT RECEIVER: Mbit/s from guest 1 to DEST_IP:PORT,
# RECEIVER is g2 (a guest) or wan (the namespace).  Prints "0" with a
# reason on stderr when the bytes do not all arrive.
xfer() {
	local tag=$1 ip=$2 port=$3 rx=$4 line got
	if [ "$rx" = wan ]; then
		rm -f "$D/wan.rx"
		nsx $WAN sh -c "sleep 300 | busybox nc -l -p $port | wc -c >$D/wan.rx" 2>/dev/null &
		disown
		for i in $(seq 1 50); do nsx $WAN ss -ltn | grep -q ":$port" && break; sleep 0.1; done
	else
		con $G2 "rm -f /tmp/rx; (sleep 300 | nc -l -p $port | wc -c >/tmp/rx &)" "l-$tag" 10 \
			>/dev/null
		sleep 0.5
	fi
	line=$(con $G1 "a=\$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero bs=64k count=$COUNT 2>/dev/null | nc $ip $port; r=\$?; b=\$(cut -d' ' -f1 /proc/uptime); echo t-$tag \$a \$b; (exit \$r)" \
		"x-$tag" 300) || { echo "$tag: no answer" >&2; echo 0; return; }
	local ts
	ts=$(grep -aE "^t-$tag [0-9.]+ [0-9.]+" "$D/console/$G1.log" | tail -n 1)
	if [ "$rx" = wan ]; then
		sleep 0.5
		got=$(cat "$D/wan.rx" 2>/dev/null || echo 0)
		for p in $(ip netns pids $WAN); do kill "$p" 2>/dev/null || true; done
	else
		con $G2 "sleep 0.5; echo got-$tag \$(cat /tmp/rx)" "g-$tag" 10 >/dev/null
		got=$(grep -aEo "^got-$tag [0-9]+" "$D/console/$G2.log" | tail -n 1 | awk '{print $2}')
	fi
	if [ "${got:-0}" != "$BYTES" ] || [[ "$line" != *"rc=0"* ]]; then
		echo "$tag: received ${got:-?} of $BYTES bytes ($line)" >&2
		echo 0
		return
	fi
	python3 -c "import sys; a,b=map(float, sys.argv[1:3]); print('%.0f' % ($BYTES * 8 / (b - a) / 1e6))" \
		$(echo "$ts" | awk '{print $2, $3}')
}

# runs PATH IP PORT RECEIVER: RUNS transfers; prints "median min max".
runs() {
	local r v=()
	for r in $(seq 1 "$RUNS"); do v+=("$(xfer "$1$r" "$2" $(($3 + r)) "$4")"); done
	python3 -c 'import sys; v=sorted(float(x) for x in sys.argv[1:]); print("%.0f %.0f %.0f" % (v[len(v)//2], v[0], v[-1]))' "${v[@]}"
}
read -r bridge bridge_min bridge_max < <(runs iso "$ip_iso_2" 7000 g2)
read -r nat nat_min nat_max < <(runs nat 198.51.100.1 7100 wan)
read -r ovs ovs_min ovs_max < <(runs ovs "$ip_v200_2" 7200 g2)

echo "## TCP throughput from real TCG guests ($(nproc) cores, $(uname -r), kctest busybox guests, 128 MiB, 1 vCPU)"
echo "# TCG emulates every guest instruction: these numbers are the guests' CPU limit, not the path's."
echo "# Guests: busybox dd bs=64k | nc, $MB MiB per transfer, timed in the sending guest (10 ms steps);"
echo "# median of $RUNS transfers per path [min-max]."
echo "# Both guests booted in ${boot} s (in parallel)."
printf '%-52s %8s Mbit/s\n' "raw veth pair, iperf3 ${SECS} s (host, no guest)" "$raw_iperf"
printf '%-52s %8s Mbit/s  %s of iperf3\n' "raw veth pair, busybox dd | nc (host, 1 GiB)" "$raw_nc" \
	"$(ratio "${raw_nc%% *}" "$raw_iperf")"
for p in "guest -> guest, isolated network (Linux bridge):$bridge:$bridge_min-$bridge_max" \
	"guest -> WAN namespace, NAT network (masquerade):$nat:$nat_min-$nat_max" \
	"guest -> guest, OVS VLAN 200 (netdev, csum off):$ovs:$ovs_min-$ovs_max"; do
	IFS=: read -r name v range <<<"$p"
	printf '%-52s %8s Mbit/s  [%s]  %s of veth iperf3, %s of veth dd|nc\n' "$name" "$v" "$range" \
		"$(ratio "$v" "$raw_iperf")" "$(ratio "$v" "${raw_nc%% *}")"
done
echo "## ratios between the guest paths"
printf '%-52s %8s\n' "NAT / bridge" "$(ratio "$nat" "$bridge")"
printf '%-52s %8s\n' "OVS VLAN / bridge" "$(ratio "$ovs" "$bridge")"
echo "# total run time: $(elapsed) s"
