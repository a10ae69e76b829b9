#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Guest networks and addresses (docs/networking.md, "Guest networks") with
# real packets, two simulated hosts with joined agents, Open vSwitch
# (userspace datapath) in each and a veth "trunk" between them:
#  - NAT: a TCG guest gets its static address by DHCP (its ready line),
#    reaches a "WAN" namespace behind host 1's uplink (ping and TCP; the
#    WAN sees the uplink's address: masqueraded) and is not reachable
#    from there;
#  - OVS VLAN: guests on VLAN 200 on host 1 and host 2 get their
#    addresses from kvmcloud's DHCP server on their host, ping each other
#    and talk TCP across the trunk; a guest on VLAN 300 (same subnet)
#    cannot reach them;
#  - VXLAN: the agents make the bridge and vxlan device on both hosts and
#    the server gives each the other as flood peer; the endpoints are veth
#    "guests" in namespaces (no fifth TCG guest), ping and TCP across;
#  - addresses are listed and released, a network in use is not deleted,
#    and a VM start makes a lost vxlan device again.
# At most four TCG guests (128 MiB); waits are on ready lines and answers.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-gn1
H2=kce2e-gn2
I1=31
I2=32
WAN=kce2e-gn-wan
NAT=kce2e-gn-nat
V200=kce2e-gn-v200
V300=kce2e-gn-v300
VX=kce2e-gn-vx
VMN=kce2e-gn-natvm
VA=kce2e-gn-va
VB=kce2e-gn-vb
VC=kce2e-gn-vc
X1=kce2e-gn-x1
X2=kce2e-gn-x2
WANOUT=$KC_E2E_DATA/gn-wan.out

gn_cleanup() {
	ip netns pids $WAN 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del $WAN 2>/dev/null
	ip link del kcgnt1 2>/dev/null
	ip link del kcgnw0 2>/dev/null
	rm -f "$WANOUT" "$WANOUT.err"
	cluster_cleanup
}
gn_cleanup >/dev/null 2>&1
cluster_init "$H1:$I1" "$H2:$I2"
trap gn_cleanup EXIT
cluster_server_start
cluster_join $H1
cluster_join $H2
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
export SIMHOST


# ---- the plumbing a real site has: OVS with a trunk, an uplink ----
for h in $H1 $H2; do
	check "Open vSwitch runs in $h" "$SIMHOST" ovs $h
	check "OVS bridge cloudbr (netdev) in $h" sim_exec $h ovs-vsctl --timeout=10 --may-exist \
		add-br cloudbr -- set bridge cloudbr datapath_type=netdev
done
check "a veth trunk between the hosts carries VLANs 200 and 300" bash -c "
	ip link add kcgnt1 type veth peer name kcgnt2 &&
	ip link set kcgnt1 netns kcsim-$H1 && ip link set kcgnt2 netns kcsim-$H2 &&
	ip -n kcsim-$H1 link set kcgnt1 up && ip -n kcsim-$H2 link set kcgnt2 up &&
	$SIMHOST exec $H1 ovs-vsctl --timeout=10 add-port cloudbr kcgnt1 trunks=200,300 &&
	$SIMHOST exec $H2 ovs-vsctl --timeout=10 add-port cloudbr kcgnt2 trunks=200,300"
check "a WAN namespace behind $H1's uplink (198.51.100.0/24)" bash -c "
	ip netns add $WAN && ip link add kcgnw0 type veth peer name kcgnw1 &&
	ip link set kcgnw0 netns kcsim-$H1 && ip link set kcgnw1 netns $WAN &&
	ip -n kcsim-$H1 addr add 198.51.100.2/24 dev kcgnw0 && ip -n kcsim-$H1 link set kcgnw0 up &&
	ip -n $WAN addr add 198.51.100.1/24 dev kcgnw1 && ip -n $WAN link set kcgnw1 up &&
	ip -n $WAN link set lo up"

# ---- networks, through the CLI's virsh-style verbs ----
check "net-create $NAT (nat)" kc net-create $NAT --kind nat --cidr 10.60.7.0/24
check "net-create $V200 (OVS VLAN 200)" kc net-create $V200 --kind vlan --bridge cloudbr \
	--vlan 200 --cidr 10.20.7.0/24
check "net-create $V300 (OVS VLAN 300, same subnet)" kc net-create $V300 --kind vlan \
	--bridge cloudbr --vlan 300 --cidr 10.20.7.0/24
check "net-create $VX (vxlan)" kc net-create $VX --kind vxlan --vni 7107 --underlay eth0 \
	--cidr 10.30.7.0/24
check_err "a VNI is unique" "VNI 7107 is taken" kc net-create kce2e-gn-vx2 --kind vxlan \
	--vni 7107 --underlay eth0
check_err "a VLAN network on a Linux bridge is refused" "backend ovs" \
	kc net-create kce2e-gn-bad --kind vlan --backend linux --bridge br0 --vlan 5
check "net-list shows the four" bash -c "kc net-list | grep -c kce2e-gn- | grep -qx 4"
NATBR=$(kc --json net-show $NAT | json_get 'd["bridge"]')
diag "NAT network bridge: $NATBR"

# ---- four guests, one more defined only (VXLAN) per host ----
check "$VMN on $NAT with 10.60.7.55" kc vm create $VMN --image kctest --memory 128 --host $H1 \
	--nic $NAT,ip=10.60.7.55
check "$VA on $V200 ($H1)" kc vm create $VA --image kctest --memory 128 --host $H1 \
	--nic $V200,ip=10.20.7.11
check "$VB on $V200 ($H2)" kc vm create $VB --image kctest --memory 128 --host $H2 \
	--nic $V200,ip=10.20.7.12
check "$VC on $V300 ($H2)" kc vm create $VC --image kctest --memory 128 --host $H2 \
	--nic $V300,ip=10.20.7.13
check "$X1 on $VX ($H1, not started)" kc vm create $X1 --image kctest --memory 128 --host $H1 \
	--nic $VX --no-start
check "$X2 on $VX ($H2, not started)" kc vm create $X2 --image kctest --memory 128 --host $H2 \
	--nic $VX --no-start
check_err "an address is handed out once" "in use" kc vm create kce2e-gn-dup --image kctest \
	--memory 128 --host $H2 --nic $V200,ip=10.20.7.12
check "net-addresses of $V200: two, one per VM" bash -c \
	"kc net-addresses $V200 | grep -E '10\.20\.7\.1[12] ' | wc -l | grep -qx 2"

check "$VA's domain: OVS port, VLAN tag 200, checksum offload off" bash -c "
	x=\$($SIMHOST exec $H1 virsh -q dumpxml $VA) &&
	grep -q \"<virtualport type='openvswitch'\" <<<\"\$x\" && grep -q \"<tag id='200'/>\" <<<\"\$x\" &&
	grep -q \"csum='off'\" <<<\"\$x\""
check "$X1's domain: bridge kcbr7107, MTU 1450" bash -c "
	x=\$($SIMHOST exec $H1 virsh -q dumpxml $X1) &&
	grep -q \"<source bridge='kcbr7107'/>\" <<<\"\$x\" && grep -q \"<mtu size='1450'/>\" <<<\"\$x\""

# ---- NAT ----
check "$VMN got its static address by DHCP" sim_wait_log "$(log_of $H1 $VMN)" \
	'KVMCLOUD-READY .*ip=10\.60\.7\.55' 240
ip netns exec $WAN nc -n -v -l -p 8080 >"$WANOUT" 2>"$WANOUT.err" &
check "$VMN pings the WAN" gexec $H1 $VMN "ping -c 2 -w 3 198.51.100.1 >/dev/null" natping
check "$VMN talks TCP to the WAN" gexec $H1 $VMN \
	"echo hello-nat-\$((6*7)) | nc -w 3 198.51.100.1 8080" nattcp
check "the WAN got the data" sim_wait_log "$WANOUT" 'hello-nat-42' 10
check "...from the uplink's address (masqueraded)" grep -q 'received on 198.51.100.2 ' "$WANOUT.err"
ip -n $WAN route add 10.60.7.0/24 via 198.51.100.2 2>/dev/null
check "the WAN cannot reach $VMN, even with a route" bash -c \
	"! ip netns exec $WAN ping -c 2 -w 3 10.60.7.55"

# ---- OVS VLANs across hosts ----
for v in "$H1 $VA 10.20.7.11" "$H2 $VB 10.20.7.12" "$H2 $VC 10.20.7.13"; do
	set -- $v
	# From kvmcloud's DHCP server for that network on that host (its
	# port on the OVS bridge carries the network's tag).
	check "$2 boots with $3 from DHCP" sim_wait_log "$(log_of $1 $2)" \
		"KVMCLOUD-READY .*ip=${3//./\\.}\\b" 240
done
check "$H2 has a DHCP port per VLAN network on cloudbr, tagged 200 and 300" bash -c "
	p=\$($SIMHOST exec $H2 ovs-vsctl --timeout=10 list-ports cloudbr | grep -E '^kcd[0-9a-f]{8}h\$') &&
	[ \$(wc -l <<<\"\$p\") -eq 2 ] &&
	for q in \$p; do $SIMHOST exec $H2 ovs-vsctl --timeout=10 get Port \$q tag; done | sort |
		tr '\\n' ' ' | grep -qx '200 300 '"
check "$VB ($H2) pings $VA ($H1) on VLAN 200" gexec $H2 $VB "ping -c 3 -w 5 10.20.7.11 >/dev/null" \
	vbping
check "$VA listens on TCP 9000" gexec $H1 $VA "(nc -l -p 9000 >/tmp/got &)" valisten
check "$VB sends over TCP to $VA across the trunk" gexec $H2 $VB \
	"echo hello-tcp-\$((3*3)) | nc -w 3 10.20.7.11 9000" vbtcp
check "$VA received it" gexec $H1 $VA "grep -q hello-tcp-9 /tmp/got" vagot
check "$VC on VLAN 300 cannot reach $VA (same subnet)" gexec_fails $H2 $VC \
	"ping -c 3 -w 4 10.20.7.11 >/dev/null" vcping

# ---- VXLAN, with veth endpoints ----
for h in "$H1 $I2" "$H2 $I1"; do
	set -- $h
	check "$1: kcvx7107 (VNI 7107) is a port of kcbr7107" bash -c \
		"$SIMHOST exec $1 ip -d link show kcvx7107 | grep -q 'vxlan id 7107' &&
		 $SIMHOST exec $1 ip link show kcvx7107 | grep -q 'master kcbr7107'"
	check "$1 floods to the other host (10.251.0.$2)" bash -c \
		"$SIMHOST exec $1 bridge fdb show dev kcvx7107 | grep -q '00:00:00:00:00:00 dst 10.251.0.$2 '"
done
n=1
for h in $H1 $H2; do
	check "a veth endpoint on $h's kcbr7107 (10.30.7.10$n)" sim_exec $h bash -c "
		ip netns add kcgnvx && ip link add kcgnx0 type veth peer name kcgnx1 &&
		ip link set kcgnx1 netns kcgnvx && ip link set kcgnx0 mtu 1450 master kcbr7107 up &&
		ip -n kcgnvx link set kcgnx1 mtu 1450 up && ip -n kcgnvx addr add 10.30.7.10$n/24 dev kcgnx1"
	n=$((n + 1))
done
check "VXLAN: ping from $H1's endpoint to $H2's" sim_exec $H1 ip netns exec kcgnvx \
	ping -c 3 -w 5 10.30.7.102
sim_exec $H2 ip netns exec kcgnvx timeout 20 nc -n -l -p 9100 >"$WANOUT.vx" 2>/dev/null &
sim_track "$WANOUT.vx"
check "VXLAN: TCP from $H1's endpoint to $H2's" bash -c "
	for i in 1 2 3 4 5 6 7 8 9 10; do
		echo hello-vx | $SIMHOST exec $H1 ip netns exec kcgnvx nc -N -w 3 10.30.7.102 9100 && exit 0
		sleep 0.5
	done; exit 1"
check "...and it arrived" sim_wait_log "$WANOUT.vx" 'hello-vx' 10

# ---- release ----
check_err "a network in use is not deleted" "in use by VM" kc net-delete $V300
check "delete $VMN" bash -c "kc vm destroy $VMN && kc vm delete $VMN"
check "its static DHCP entry left $NATBR" bash -c \
	"! $SIMHOST exec $H1 virsh -q net-dumpxml $NATBR | grep -q 10.60.7.55"
check "its address was released" bash -c "! kc net-addresses $NAT | grep -q 10.60.7.55"
# A host that lost its vxlan device (a reboot): the next start makes it again.
check "$H1 loses kcvx7107" sim_exec $H1 ip link del kcvx7107
check "start $X1 (a fourth guest, $VMN is gone)" kc vm start $X1
check "kcvx7107 is back on $H1, in its bridge, flooding to $H2" bash -c "
	$SIMHOST exec $H1 ip link show kcvx7107 | grep -q 'master kcbr7107' &&
	$SIMHOST exec $H1 bridge fdb show dev kcvx7107 | grep -q 'dst 10.251.0.$I2 '"
check "net-delete $NAT" kc net-delete $NAT
check "the libvirt network is gone from $H1" bash -c \
	"! $SIMHOST exec $H1 virsh -q net-list --all --name | grep -qx $NATBR"
for v in "$H2 $VC" "$H1 $X1" "$H2 $X2"; do
	set -- $v
	check "delete $2" bash -c "kc vm destroy $2 >/dev/null 2>&1; kc vm delete $2"
done
check "net-delete $V300 once unused" kc net-delete $V300
check "net-delete $VX removes its devices" bash -c "kc net-delete $VX &&
	! $SIMHOST exec $H1 ip link show kcvx7107 2>/dev/null &&
	! $SIMHOST exec $H2 ip link show kcbr7107 2>/dev/null"
finish
