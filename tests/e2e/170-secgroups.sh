#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Security groups (docs/networking.md, "Security groups") with real packets:
# one simulated host with a joined agent, a NAT guest network (WP2's, made
# through the API) and a TCG guest on it with a fixed address, plus a
# "client": a veth into a network namespace of its own, plugged into the
# same Linux bridge inside the simulated host.  With group web on the VM:
# the allowed port answers, another port and ping are dropped; a
# connection the VM opens gets its answers (stateful); a rule added live
# opens a port; a spoofed source IP and a spoofed MAC from the guest never
# reach the client (and the anti-spoofing counters show the drops); a VM
# restart (new tap) is protected again by the agent on its own; removing
# the groups removes the tables.  Then the same on Open vSwitch (the
# hybrid plug; the refusal for a running VM: tests/server/test_secgroups.c).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

. "$(dirname "$0")/lib-cluster.sh"

H=kce2e-sg1
VM=kce2e-sgvm
NET=kce2e-sgnet
GIP=10.61.0.55
CIP=10.61.0.77
CNS=kce2esgc

# Leftovers of a killed run in the host die with the host (cluster_init).
cluster_init "$H:37"
cluster_server_start
cluster_join $H
check "host $H is Up" wait_host $H Up 60
export SIMHOST

TOKEN=$(cat "$SDATA/admin.token")
# api METHOD PATH [BODY]: the JSON answer on stdout; fails on HTTP >= 400.
api() {
	curl -sS --fail-with-body --cacert "$KVMCLOUD_CA" -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' -X "$1" "$KC_URL$2" ${3:+--data "$3"}
}
api_status() {
	curl -sS -o /dev/null -w '%{http_code}' --cacert "$KVMCLOUD_CA" \
		-H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
		-X "$1" "$KC_URL$2" ${3:+--data "$3"}
}
in_client() { sim_exec $H ip netns exec $CNS "$@"; }
LOG=$KC_E2E_DATA/agent-$H/console/$VM.log

check "NAT guest network $NET is created" api POST /api/v1/networks \
	"{\"name\":\"$NET\",\"kind\":\"nat\",\"cidr\":\"10.61.0.0/24\"}"
check "VM $VM is created on it with address $GIP" api POST /api/v1/vms \
	"{\"name\":\"$VM\",\"image\":\"kctest\",\"memory_mib\":128,\"nics\":[{\"network\":\"$NET\",\"ip\":\"$GIP\"}]}"
check "guest boots with $GIP" sim_wait_log "$LOG" "KVMCLOUD-READY .*ip=$GIP" 120
BR0=$(sim_virsh $H domiflist $VM | awk '/network/ {print $3; exit}')
BR0=$(sim_virsh $H net-info "$BR0" 2>/dev/null | awk '/^Bridge:/ {print $2}')
diag "guest bridge: $BR0"

# The client: a veth pair, one end on the guest's bridge, the other in $CNS.
check "client namespace on bridge $BR0" sim_exec $H bash -c "
	ip netns add $CNS &&
	ip link add kcsgc0 type veth peer name kcsgc1 &&
	ip link set kcsgc1 netns $CNS &&
	ip link set kcsgc0 master $BR0 up &&
	ip netns exec $CNS ip addr add $CIP/24 dev kcsgc1 &&
	ip netns exec $CNS ip link set kcsgc1 up &&
	ip netns exec $CNS ip link set lo up"
check "client pings the guest before any group" in_client ping -c 2 -W 2 $GIP

# Guest listeners on 2222 and 8080: each answers one line per connection.
check "guest listens on 2222 and 8080" sim_console_run $H $VM "$LOG" \
	"[ -e /tmp/lsn ] || { touch /tmp/lsn; for p in 2222 8080; do (while true; do echo hello-\$p | nc -l -p \$p || sleep 1; done) & done; }; echo LSN rc=\$?" \
	'LSN rc=[0-9]'
# probe PORT: does the guest's line come back within 3 s?
probe() { in_client timeout 5 nc -w 3 $GIP "$1" </dev/null 2>/dev/null | grep -q "hello-$1"; }
no_probe() { ! probe "$1"; }
export -f probe no_probe in_client sim_exec
export H CNS GIP
check "before any group: 8080 answers" probe 8080

check "group web is created (tcp 2222 in)" api POST /api/v1/security-groups \
	'{"name":"web","rules":[{"direction":"in","protocol":"tcp","port_min":2222,"cidr":"0.0.0.0/0"}]}'
out=$(api PUT /api/v1/vms/$VM/security-groups '{"security_groups":["web"]}')
echo "$out" >>"$KC_LOG"
check "set-sg pushes the ruleset to $H" bash -c "echo '$out' | grep -q '\"applied\": *true'"
TAP=$(sim_virsh $H domiflist $VM | awk '/network/ {print $1; exit}')
check "the bridge table guards tap $TAP" bash -c \
	"\"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$TAP | grep -q 'ether saddr != '"
check "bridge-nf-call-iptables is on in the host" bash -c \
	"[ \"\$(\"$SIMHOST\" exec $H cat /proc/sys/net/bridge/bridge-nf-call-iptables)\" = 1 ]"

check "allowed port 2222 answers" probe 2222
check "port 8080 is dropped" no_probe 8080
check "ping is dropped" bash -c "! in_client ping -c 2 -W 2 $GIP"
check "the VM's inbound drop counter counts" bash -c \
	"\"$SIMHOST\" exec $H nft list table inet kvmcloud_sg | grep -A20 'vm0_in' | grep -Eq 'counter packets [1-9][0-9]* bytes [0-9]+ drop'"

# Stateful: the guest connects out to the client on a port no rule opens;
# the answers (SYN-ACK, data) come back through the VM's inbound chain.
in_client bash -c "timeout 40 nc -l 9999 >'$KC_E2E_DATA/sg-client.out' 2>/dev/null" &
sleep 0.5
check "guest-initiated TCP to the client works (stateful return)" sim_console_run $H $VM "$LOG" \
	"echo from-guest | nc -w 2 $CIP 9999; echo OUT rc=\$?" 'OUT rc=[0-9]'
check "the client received the guest's data" grep -q from-guest "$KC_E2E_DATA/sg-client.out"

# A rule added live opens 8080 and ICMP.
check "rule tcp 8080 added live" kc sg rule-add web --in --proto tcp --port 8080-8081 --cidr 10.61.0.0/24
check "rule icmp added live" kc sg rule-add web --in --proto icmp
check "8080 answers after the live rule" probe 8080
check "ping answers after the live rule" in_client ping -c 2 -W 2 $GIP

# Anti-spoofing: a second address in the guest, used as the source.
# tcpdump ends by itself (timeout); nothing is killed by name.
in_client bash -c "timeout 25 tcpdump -n -U -i kcsgc1 -w '$KC_E2E_DATA/sg-spoof.pcap' icmp >/dev/null 2>&1" &
TD_PID=$!
sleep 1
check "guest pings the client with its own address" sim_console_run $H $VM "$LOG" \
	"ping -c 2 -W 2 $CIP >/dev/null; echo REAL rc=\$?" 'REAL rc=0'
check "guest pings with a spoofed source 10.61.0.66: no answer" sim_console_run $H $VM "$LOG" \
	"ip addr add 10.61.0.66/32 dev eth0; ping -c 2 -W 2 -I 10.61.0.66 $CIP >/dev/null; echo SPOOFIP rc=\$?" \
	'SPOOFIP rc=[1-9]'
sim_console_run $H $VM "$LOG" "ip addr del 10.61.0.66/32 dev eth0; echo DELIP rc=\$?" 'DELIP rc=[0-9]' >/dev/null
check "the spoof chain's IPv4 source counter counts" bash -c \
	"\"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$TAP | grep 'ip saddr !=' | grep -Eq 'packets [1-9]'"
wait $TD_PID
check "the client saw the real source and never 10.61.0.66" bash -c \
	"tcpdump -n -r '$KC_E2E_DATA/sg-spoof.pcap' 2>/dev/null | grep -q '$GIP >' &&
	 ! tcpdump -n -r '$KC_E2E_DATA/sg-spoof.pcap' 2>/dev/null | grep -q '10.61.0.66 >'"

# A spoofed MAC: the guest changes its own, then cannot reach the client.
check "guest with a spoofed MAC cannot ping the client" sim_console_run $H $VM "$LOG" \
	"ip link set eth0 down; ip link set eth0 address 52:54:00:de:ad:01; ip link set eth0 up; ping -c 2 -W 2 $CIP >/dev/null; echo SPOOFMAC rc=\$?" \
	'SPOOFMAC rc=[1-9]' 40
check "the spoof chain's MAC counter counts" bash -c \
	"\"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$TAP | grep 'ether saddr !=' | grep -Eq 'packets [1-9]'"

# A restart gives a new tap; the agent applies the ruleset again by itself.
check "VM is destroyed and started again" bash -c "kc vm destroy $VM && kc vm start $VM"
check "guest boots again" bash -c "for i in \$(seq 1 600); do [ \$(grep -c 'KVMCLOUD-READY .*ip=$GIP' '$LOG') -ge 2 ] && exit 0; sleep 0.2; done; exit 1"
TAP2=$(sim_virsh $H domiflist $VM | awk '/network/ {print $1; exit}')
diag "tap after restart: $TAP2"
check "the agent re-applied the ruleset for tap $TAP2" bash -c \
	"for i in \$(seq 1 50); do \"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$TAP2 >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
check "after the restart the guest listens on 2222 and 9090" sim_console_run $H $VM "$LOG" \
	"[ -e /tmp/lsn2 ] || { touch /tmp/lsn2; for p in 2222 9090; do (while true; do echo hello-\$p | nc -l -p \$p || sleep 1; done) & done; }; echo LSN2 rc=\$?" 'LSN2 rc=[0-9]'
check "after the restart 2222 answers" probe 2222
check "after the restart 9090 is still dropped" no_probe 9090

# An agent restart applies the last ruleset it was sent (its state file),
# here after the tables were lost (as after a host reboot).
stop_agents
check "our tables are removed by hand while the agent is down" sim_exec $H bash -c \
	"nft delete table inet kvmcloud_sg && nft delete table bridge kvmcloud_sg"
check "with no tables 9090 answers" probe 9090
agent_run $H
check "host $H is Up again" wait_host $H Up 60
check "the restarted agent applied its saved ruleset" bash -c \
	"for i in \$(seq 1 50); do \"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$TAP2 >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
check "after the agent restart 9090 is dropped" no_probe 9090
check "after the agent restart 2222 answers" probe 2222

# Removing the group opens the VM again.
check "the VM's groups are removed" kc vm set-sg $VM none
check "without groups our tables are gone" bash -c \
	"t=\$(\"$SIMHOST\" exec $H nft list tables) && ! echo \"\$t\" | grep -q kvmcloud_sg"
check "without groups 9090 answers" probe 9090

check "the unused group is deleted" kc sg delete web

# ---- Security groups on Open vSwitch: the hybrid plug (H4) ----
# A VM on an OVS VLAN network (VLAN 300 on netdev bridge kcsgovs) and a
# client veth tagged 300 on the same bridge.  A running VM's first group
# is refused (its NIC sits straight on OVS, where nft sees nothing); given
# at create (or set while it is stopped), the agent moves the NIC to tap -> kcq<MAC> ->
# kcv<MAC>/kco<MAC> -> OVS port tag 300, and the rules above apply as on
# a Linux bridge.  Deleting the VM removes the three links and the port.
ONET=kce2e-sgovs
OVM=kce2e-sgovm
OVM2=kce2e-sgovm2
OIP=10.62.0.55
OCIP=10.62.0.77
OCNS=kce2esgo
OLOG=$KC_E2E_DATA/agent-$H/console/$OVM.log
check "Open vSwitch runs in $H" "$SIMHOST" ovs $H
check "OVS bridge kcsgovs (netdev) in $H" sim_exec $H ovs-vsctl --timeout=10 --may-exist \
	add-br kcsgovs -- set bridge kcsgovs datapath_type=netdev
check "OVS network $ONET (VLAN 300)" kc net-create $ONET --kind vlan --bridge kcsgovs \
	--vlan 300 --cidr 10.62.0.0/24
check "group ovsweb is created (tcp 2222 in)" api POST /api/v1/security-groups \
	'{"name":"ovsweb","rules":[{"direction":"in","protocol":"tcp","port_min":2222,"cidr":"0.0.0.0/0"}]}'
check "VM $OVM2 (no group) is created on it" kc vm create $OVM2 --image kctest --memory 128 \
	--nic $ONET
check_err "a running OVS VM's first group is refused" "stop it" kc vm set-sg $OVM2 ovsweb
check "VM $OVM2 is deleted" bash -c "kc vm destroy $OVM2 && kc vm delete $OVM2"
# Created with its group: made stopped, grouped (the agent moves the NIC
# to the hybrid plug), then started (vm_sg.h).
check "VM $OVM is created on it with group ovsweb" kc vm create $OVM --image kctest --memory 128 \
	--nic $ONET,ip=$OIP --sg ovsweb
has_ovsweb() { api GET /api/v1/vms/$OVM/security-groups | grep -q '"ovsweb"'; }
check "...and has it" has_ovsweb
OMAC=$(sim_virsh $H domiflist $OVM | awk '$5 ~ /:/ {print $5; exit}')
OHEX=$(echo "$OMAC" | tr -d :)
diag "NIC $OMAC: kcq$OHEX"
check "the NIC's MAC is known" test ${#OHEX} -eq 12
check "the definition now plugs into kcq$OHEX, no virtualport, csum off kept" bash -c "
	x=\$(\"$SIMHOST\" exec $H virsh -q dumpxml --inactive $OVM) &&
	grep -q \"<source bridge='kcq$OHEX'/>\" <<<\"\$x\" && ! grep -q virtualport <<<\"\$x\" &&
	grep -q \"csum='off'\" <<<\"\$x\" && grep -Eq \"bridge=.kcsgovs. vlan=.300.\" <<<\"\$x\""
check "kco$OHEX is an OVS port with tag 300" bash -c \
	"[ \"\$(\"$SIMHOST\" exec $H ovs-vsctl --timeout=10 get Port kco$OHEX tag)\" = 300 ]"
check "the tap is a port of kcq$OHEX" bash -c \
	"\"$SIMHOST\" exec $H ip -o link show master kcq$OHEX | grep -q vnet"
check "$OVM boots" sim_wait_log "$OLOG" 'KVMCLOUD-READY' 240
# From kvmcloud's DHCP server of the network (its offer passes the VM's
# inbound chain, which returns DHCP answers).
check "$OVM got $OIP by DHCP through the hybrid plug" sim_wait_log "$OLOG" \
	"KVMCLOUD-READY .*ip=${OIP//./\\.}\\b" 5
check "client namespace on kcsgovs, VLAN 300" sim_exec $H bash -c "
	ip netns add $OCNS &&
	ip link add kcsgo0 type veth peer name kcsgo1 &&
	ip link set kcsgo1 netns $OCNS && ip link set kcsgo0 up &&
	ethtool -K kcsgo0 tx off >/dev/null &&
	ip netns exec $OCNS ethtool -K kcsgo1 tx off >/dev/null &&
	ovs-vsctl --timeout=10 add-port kcsgovs kcsgo0 tag=300 &&
	ip netns exec $OCNS ip addr add $OCIP/24 dev kcsgo1 &&
	ip netns exec $OCNS ip link set kcsgo1 up && ip netns exec $OCNS ip link set lo up"
in_oclient() { sim_exec $H ip netns exec $OCNS "$@"; }
oprobe() { in_oclient timeout 5 nc -w 3 $OIP "$1" </dev/null 2>/dev/null | grep -q "hello-$1"; }
no_oprobe() { ! oprobe "$1"; }
export -f oprobe no_oprobe in_oclient
export OCNS OIP
check "guest listens on 2222 and 8080" sim_console_run $H $OVM "$OLOG" \
	"[ -e /tmp/lsn ] || { touch /tmp/lsn; for p in 2222 8080; do (while true; do echo hello-\$p | nc -l -p \$p || sleep 1; done) & done; }; echo LSN rc=\$?" \
	'LSN rc=[0-9]'
OTAP=$(sim_virsh $H domiflist $OVM | awk '$5 ~ /:/ {print $1; exit}')
check "the bridge table guards tap $OTAP" bash -c "for i in \$(seq 1 50); do
	\"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$OTAP >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1"
check "OVS: allowed port 2222 answers through the hybrid plug" oprobe 2222
check "OVS: port 8080 is dropped" no_oprobe 8080
check "OVS: the guest pings the client with its own address" sim_console_run $H $OVM "$OLOG" \
	"ping -c 2 -W 2 $OCIP >/dev/null; echo OREAL rc=\$?" 'OREAL rc=0' 30
check "OVS: a spoofed source 10.62.0.66 gets no answer" sim_console_run $H $OVM "$OLOG" \
	"ip addr add 10.62.0.66/32 dev eth0; ping -c 2 -W 2 -I 10.62.0.66 $OCIP >/dev/null; echo OSPOOF rc=\$?" \
	'OSPOOF rc=[1-9]' 30
check "OVS: the spoof chain's IPv4 source counter counts" bash -c \
	"\"$SIMHOST\" exec $H nft list chain bridge kvmcloud_sg spoof_$OTAP | grep 'ip saddr !=' | grep -Eq 'packets [1-9]'"
check "VM $OVM is stopped and deleted" bash -c "kc vm destroy $OVM && kc vm delete $OVM"
check "no kcq/kcv/kco link is left" bash -c \
	"l=\$(\"$SIMHOST\" exec $H ip -o link show) && ! grep -E 'kc[qvo]$OHEX' <<<\"\$l\""
check "no kco port is left on kcsgovs" bash -c \
	"p=\$(\"$SIMHOST\" exec $H ovs-vsctl --timeout=10 list-ports kcsgovs) && ! grep -q kco$OHEX <<<\"\$p\""
check "group ovsweb and network $ONET are deleted" bash -c \
	"kc sg delete ovsweb && kc net delete $ONET"

# The client namespace and its processes go with the simulated host.
finish
