#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# VXLAN guest networks (docs/networking.md, "Guest networks") with real TCG
# guests: two simulated hosts joined to one server, their eth0 on the
# simulated bridge (10.251.0.0/24) is the underlay.
#  - guest A on host 1 and guest B on host 2 on one vxlan network: MTU 1450
#    on eth0, the address the API allocated (by DHCP from kvmcloud's
#    server on their own host), ping and TCP across
#    hosts (a known line and 256 KiB, counted on the receiver: segments of
#    full MTU size must pass the tunnel);
#  - guest C on another vxlan network (other VNI, same CIDR) next to B
#    cannot reach A or B;
#  - tcpdump on host 1's underlay sees UDP 4789 carrying A's VNI;
#  - everything is deleted again (VMs, networks and their devices, hosts).
# Three TCG guests (128 MiB), booted at once; waits are on ready lines and
# answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-vx1
H2=kce2e-vx2
I1=25
I2=26
VX=kce2e-vxg-a
VY=kce2e-vxg-b
VNI=7165
VNI2=7166
GA=kce2e-vxg-ga
GB=kce2e-vxg-gb
GC=kce2e-vxg-gc
CIDR=10.31.65.0/24
IPC=10.31.65.50
TD=$KC_E2E_DATA/vxg-tcpdump.out

vx_cleanup() {
	rm -f "$TD" "$TD.err"
	cluster_cleanup
}
vx_cleanup >/dev/null 2>&1
cluster_init "$H1:$I1" "$H2:$I2"
trap vx_cleanup EXIT
cluster_server_start
cluster_join $H1
cluster_join $H2
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
export SIMHOST

# addr_of NET VM: the address the API allocated to VM on NET.
addr_of() {
	kc --json net-addresses "$1" | json_get "[a['ip'] for a in d['addresses'] if a['vm'] == '$2'][0]"
}

check "net-create $VX (vxlan $VNI, $CIDR)" kc net-create $VX --kind vxlan --vni $VNI \
	--underlay eth0 --cidr $CIDR
check "net-create $VY (vxlan $VNI2, the same CIDR)" kc net-create $VY --kind vxlan --vni $VNI2 \
	--underlay eth0 --cidr $CIDR
check "$VX has MTU 1450" bash -c "kc --json net-show $VX | json_get 'd[\"mtu\"]' | grep -qx 1450"

check "$GA on $VX ($H1)" kc vm create $GA --image kctest --memory 128 --host $H1 --nic $VX
check "$GB on $VX ($H2)" kc vm create $GB --image kctest --memory 128 --host $H2 --nic $VX
check "$GC on $VY ($H2), $IPC" kc vm create $GC --image kctest --memory 128 --host $H2 \
	--nic $VY,ip=$IPC
IPA=$(addr_of $VX $GA 2>/dev/null)
IPB=$(addr_of $VX $GB 2>/dev/null)
diag "API addresses: $GA=$IPA $GB=$IPB $GC=$IPC"
check "the API allocated two distinct addresses in $CIDR" bash -c \
	"[[ '$IPA' == 10.31.65.* && '$IPB' == 10.31.65.* && '$IPA' != '$IPB' ]]"
check "both hosts run kcvx$VNI in kcbr$VNI, with MTU 1450" bash -c "
	for h in $H1 $H2; do
		$SIMHOST exec \$h ip -d link show kcvx$VNI | grep -q 'vxlan id $VNI .*dstport 4789' &&
		$SIMHOST exec \$h ip link show kcvx$VNI | grep -q 'mtu 1450 .*master kcbr$VNI' || exit 1
	done"
check "$H1 floods VNI $VNI to $H2 (10.251.0.$I2) and back" bash -c "
	$SIMHOST exec $H1 bridge fdb show dev kcvx$VNI | grep -q '00:00:00:00:00:00 dst 10.251.0.$I2 ' &&
	$SIMHOST exec $H2 bridge fdb show dev kcvx$VNI | grep -q '00:00:00:00:00:00 dst 10.251.0.$I1 '"

# kvmcloud's DHCP server for each network on each host: its own address
# from the pool (the highest free one), in a namespace of its own.
dhcp_of() {
	kc --json net-show "$1" | json_get "[h['dhcp_ip'] for h in d['hosts'] if h['host'] == '$2'][0]"
}
D1=$(dhcp_of $VX $H1 2>/dev/null)
D2=$(dhcp_of $VX $H2 2>/dev/null)
diag "DHCP servers of $VX: $H1=$D1 $H2=$D2"
check "$VX has a DHCP server address per host, from the top of the pool" bash -c \
	"[[ '$D1' == 10.31.65.25[34] && '$D2' == 10.31.65.25[34] && '$D1' != '$D2' ]]"
check "net-show lists each host with its VTEP and DHCP address" bash -c \
	"kc net-show $VX | grep -qx 'host        $H1 (vtep 10.251.0.$I1) (dhcp $D1)' &&
	 kc net-show $VX | grep -qx 'host        $H2 (vtep 10.251.0.$I2) (dhcp $D2)'"
check "the DHCP servers' addresses are not the guests'" bash -c \
	"[[ '$D1' != '$IPA' && '$D1' != '$IPB' && '$D2' != '$IPA' && '$D2' != '$IPB' ]]"
# dnsmasq_in_ns HOST: a dnsmasq runs in one of HOST's kcdhcp-* namespaces.
dnsmasq_in_ns() {
	$SIMHOST exec "$1" bash -c 'for n in $(ip netns list | grep -o "^kcdhcp-[0-9a-f]*"); do
		ip netns pids "$n"; done' | xargs -r ps -o comm= -p | grep -qx dnsmasq
}
for h in $H1 $H2; do
	check "$h runs dnsmasq in a namespace of its own" dnsmasq_in_ns $h
	check "$h has no route into the guest subnet" bash -c "! $SIMHOST exec $h ip route | grep -q 10.31.65"
done

# Each guest: booted, MTU 1450 from the host (virtio MTU feature), and the
# API's address from its own host's DHCP server (a server answers only
# its host's VMs: B's address can only have come from $H2's).
for v in "$H1 $GA $IPA" "$H2 $GB $IPB" "$H2 $GC $IPC"; do
	set -- $v
	check "$2 boots" sim_wait_log "$(log_of $1 $2)" 'KVMCLOUD-READY' 240
	got=$(grep -aEo 'KVMCLOUD-READY .*ip=[0-9.a-z]+' "$(log_of $1 $2)" | head -n 1 | sed 's/.*ip=//')
	diag "$2's ready line: ip=${got:-?}"
	check "$2 got $3 by DHCP at boot" test "$got" = "$3"
	check "$2 has $3/24 on eth0" gexec $1 $2 "ip -4 addr show dev eth0 | grep -q 'inet $3/24 '" \
		"addr-$2"
	check "$2's eth0 has MTU 1450" gexec $1 $2 "ip link show dev eth0 | grep -q ' mtu 1450 '" \
		"mtu-$2"
done

# The underlay carries UDP 4789 with this network's VNI while A pings B.
sim_exec $H1 timeout 25 tcpdump -i eth0 -nn -l -c 4 udp port 4789 >"$TD" 2>"$TD.err" &
tdpid=$!
sleep 1
check "$GA ($H1) pings $GB ($H2) across the tunnel" gexec $H1 $GA \
	"ping -c 3 -w 6 $IPB >/dev/null" vxping
wait $tdpid
diag "tcpdump: $(head -n 1 "$TD")"
check "tcpdump on $H1's underlay: UDP 4789 between the hosts, VNI $VNI" bash -c "
	grep -E '10\.251\.0\.$I1\.[0-9]+ > 10\.251\.0\.$I2\.4789: VXLAN.* vni $VNI\$' '$TD' &&
	grep -E '10\.251\.0\.$I2\.[0-9]+ > 10\.251\.0\.$I1\.4789: VXLAN.* vni $VNI\$' '$TD'"
MACB=$(kc --json net-addresses $VX | json_get "[a['mac'] for a in d['addresses'] if a['vm'] == '$GB'][0]")
check "$H1's device learned that $GB ($MACB) is behind $H2" bash -c \
	"$SIMHOST exec $H1 bridge fdb show dev kcvx$VNI | grep -qi '^$MACB dst 10\.251\.0\.$I2 '"

check "$GB listens on TCP 9000" gexec $H2 $GB "rm -f /tmp/got; (sleep 60 | nc -l -p 9000 >/tmp/got &)" \
	vxlisten
check "$GA sends a line and 256 KiB over TCP to $GB" gexec $H1 $GA \
	"{ echo hello-vx-\$((6*7)); dd if=/dev/zero bs=1024 count=256 2>/dev/null; } | nc $IPB 9000" \
	vxtcp
check "$GB received the line and every byte (262156)" gexec $H2 $GB \
	"sleep 1; head -n 1 /tmp/got | grep -qx hello-vx-42 && test \$(wc -c </tmp/got) -eq 262156" \
	vxgot

# Another VNI, same subnet: nothing gets through, on either host.  A ping
# into the void takes longer than the console helper's 3 s before it types
# again, so both run in the background and print their own result lines.
check "$GC is up (it pings its own address)" gexec $H2 $GC "ping -c 1 -w 2 $IPC >/dev/null" vcself
check "$GC starts pinging $GB and $GA" gexec $H2 $GC \
	"(ping -c 2 -w 3 $IPB >/dev/null 2>&1; echo vcping1 rc=\$?) & (ping -c 2 -w 3 $IPA >/dev/null 2>&1; echo vcping2 rc=\$?) & true" \
	vcbg
# bg_failed LOG TAG: the guest printed "TAG rc=N" with N other than 0.
bg_failed() { sim_wait_log "$1" "$2 rc=[0-9]" 40 && ! grep -aq "$2 rc=0" "$1"; }
check "$GC (VNI $VNI2) cannot reach $GB on its own host" bg_failed "$(log_of $H2 $GC)" vcping1
check "$GC (VNI $VNI2) cannot reach $GA across hosts" bg_failed "$(log_of $H2 $GC)" vcping2

# ---- clean up through the API ----
for v in $GA $GB $GC; do
	check "delete $v" bash -c "kc vm destroy $v >/dev/null 2>&1; kc vm delete $v"
done
check "the addresses were released" bash -c \
	"! kc net-addresses $VX | grep -q 10.31.65 && ! kc net-addresses $VY | grep -q 10.31.65"
check "net-delete $VX and $VY remove their devices on both hosts" bash -c "
	kc net-delete $VX && kc net-delete $VY &&
	for h in $H1 $H2; do
		for d in kcvx$VNI kcbr$VNI kcvx$VNI2 kcbr$VNI2; do
			! $SIMHOST exec \$h ip link show \$d 2>/dev/null || exit 1
		done
		! $SIMHOST exec \$h ip netns list | grep -q '^kcdhcp-' || exit 1
	done
	! pgrep -f '^/usr/sbin/dnsmasq .*--dhcp-range=10\\.31\\.65\\.0,'"
finish
