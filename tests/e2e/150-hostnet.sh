#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Declared host networks (docs/networking.md "Host networks"): two
# simulated hosts with Open vSwitch (userspace datapath) and a veth pair
# between them as each host's "eth1" trunk.  The seeds' declaration (VLAN
# 100 management with an address, 200 public cloudbr0, 300 guest cloudbr1)
# is applied on both through the API and the agents; `kvmcloud-agent check`
# is clean; the management addresses ping each other over VLAN 100 (tagged
# on the trunk).  A wrong declaration (management on VLAN 101) is applied
# without confirmation: the ping fails, the agent rolls it back within its
# timer, the ping works again; the same with the agent stopped during the
# window (the marker file rolls it back at its next start).  A manual
# confirmation works; the linux backend reports what this kernel lacks and
# leaves nothing behind; a bridge deleted by hand shows up as a difference.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-hn1
H2=kce2e-hn2
D=$KC_E2E_DATA/hostnet
mkdir -p "$D"

hn_cleanup() {
	local h
	for h in $H1 $H2; do
		tail -n 20 "$KC_E2E_DATA/agent-$h/agent.log" 2>/dev/null | sed "s/^/$h agent: /" >>"$KC_LOG"
	done
	ip link del kchnt1 2>/dev/null
	cluster_cleanup
	rm -rf "$D"
}

# decl FILE MGMT_IP [MGMT_VLAN]: the seeds' declaration for one host.
decl() {
	cat >"$1" <<EOF
{"backend": "ovs", "datapath": "netdev", "nics": ["eth1"], "switch": "cloudbr",
 "bridges": [{"name": "mgmt0", "vlan": ${3:-100}, "addresses": ["$2/24"]},
             {"name": "cloudbr0", "vlan": 200}, {"name": "cloudbr1", "vlan": 300}]}
EOF
}
net_state() { kc --json host net-show "$1" | json_get 'd["state"]'; }
ndiff() { kc --json host net-show "$1" | json_get 'len(d["agent"]["differences"])'; }
ping_mgmt() { sim_exec $H1 ping -c "${1:-3}" -W 1 -i 0.3 192.168.42.12; }
no_ping() { ! ping_mgmt "$@"; }
# agent_check H: `kvmcloud-agent check` inside the host, its host_network item.
agent_check() {
	# shellcheck disable=SC2046
	sim_exec "$1" "$KC_AGENT_BIN" $(agent_opts "$1") check --no-probe --json 2>/dev/null |
		json_get '[i["status"] + " " + i["reason"] for i in d["items"] if i["name"] == "host_network"][0]'
}
wait_for() {
	local secs=$1 i
	shift
	for i in $(seq 1 $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
	return 1
}
stop_agent() {
	local p i
	p=$(cat "$KC_E2E_DATA/agent-$1.pid" 2>/dev/null) && [ -n "$p" ] || return 1
	kill "$p"
	for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	rm -f "$KC_E2E_DATA/agent-$1.pid"
	! kill -0 "$p" 2>/dev/null
}

ip link del kchnt1 2>/dev/null
cluster_init "$H1:35" "$H2:36"
trap hn_cleanup EXIT
for h in $H1 $H2; do
	check "Open vSwitch runs in $h" "$SIMHOST" ovs $h
done
check "a veth pair is each host's eth1" bash -c "
	ip link add kchnt1 type veth peer name kchnt2 &&
	ip link set kchnt1 netns kcsim-$H1 && ip link set kchnt2 netns kcsim-$H2 &&
	ip -n kcsim-$H1 link set kchnt1 name eth1 && ip -n kcsim-$H2 link set kchnt2 name eth1"
cluster_server_start
for h in $H1 $H2; do cluster_join $h; done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60

decl "$D/h1.json" 192.168.42.11
decl "$D/h2.json" 192.168.42.12
sed 's/"vlan": 300/"vlan": 5000/' "$D/h1.json" >"$D/bad-vlan.json"
check_err "a declaration with VLAN 5000 is refused by the API" '"vlan"' \
	kc host net-apply $H1 "$D/bad-vlan.json"
sed 's/"cloudbr1"/"cloud br1"/' "$D/h1.json" >"$D/bad-name.json"
check_err "so is a bridge name with a space" 'interface name' \
	kc host net-apply $H1 "$D/bad-name.json"
check "net-apply the seeds' declaration on $H1 (auto-confirmed)" kc host net-apply $H1 "$D/h1.json"
check "net-apply the seeds' declaration on $H2 (auto-confirmed)" kc host net-apply $H2 "$D/h2.json"
check "$H1's state is confirmed" test "$(net_state $H1)" = confirmed
check "$H2's state is confirmed" test "$(net_state $H2)" = confirmed
check "OVS in $H1: mgmt0 is a fake bridge of cloudbr on VLAN 100" \
	test "$(sim_exec $H1 ovs-vsctl --timeout=10 br-to-parent mgmt0) $(sim_exec $H1 ovs-vsctl --timeout=10 br-to-vlan mgmt0)" = "cloudbr 100"
check "OVS in $H2: the trunk eth1 carries 100, 200, 300" \
	test "$(sim_exec $H2 ovs-vsctl --timeout=10 get Port eth1 trunks)" = "[100, 200, 300]"
check "OVS in $H1: datapath netdev" test "$(sim_exec $H1 ovs-vsctl --timeout=10 get Bridge cloudbr datapath_type)" = netdev
r=$(agent_check $H1)
diag "$H1 check: $r"
check "kvmcloud-agent check on $H1: host_network pass" bash -c "[[ '$r' == pass\ matches* ]]"
check "the API shows no difference on $H2" test "$(ndiff $H2)" = 0
sim_exec $H2 timeout 8 tcpdump -c 2 -nn -e -i eth1 icmp >"$D/tcpdump.txt" 2>/dev/null &
tcpd=$!
sleep 1.5
check "mgmt ping $H1 -> $H2 over VLAN 100 on the trunk" ping_mgmt 3
wait $tcpd
diag "tcpdump on $H2's eth1: $(head -1 "$D/tcpdump.txt")"
check "the trunk shows the frames tagged 802.1Q vlan 100" grep -q "vlan 100" "$D/tcpdump.txt"

# A wrong declaration (management on VLAN 101), not confirmed.
decl "$D/h1-wrong.json" 192.168.42.11 101
check "net-apply a wrong declaration (mgmt on VLAN 101) with no auto-confirm, 8 s timer" \
	kc host net-apply $H1 "$D/h1-wrong.json" --confirm-timeout 8 --no-auto-confirm
check "its state is pending" test "$(net_state $H1)" = pending
check "the agent's marker file exists" test -s "$KC_E2E_DATA/agent-$H1/net-pending.json"
check "while pending, mgmt0 is on VLAN 101" test "$(sim_exec $H1 ovs-vsctl --timeout=10 br-to-vlan mgmt0)" = 101
check "while pending, the mgmt ping fails" no_ping 2
t0=$(date +%s)
check "the agent rolls it back: the ping works again within 8 s + 6 s" wait_for 14 ping_mgmt 1
diag "ping back after $(($(date +%s) - t0)) s"
check "mgmt0 is on VLAN 100 again" test "$(sim_exec $H1 ovs-vsctl --timeout=10 br-to-vlan mgmt0)" = 100
check "the API records rolled_back" test "$(net_state $H1)" = rolled_back
check "the marker file is gone" test ! -e "$KC_E2E_DATA/agent-$H1/net-pending.json"
check_err "a late confirm is refused" "no host network change|rolled back|no network change" \
	kc host net-confirm $H1
check "the agent check still matches the confirmed declaration" bash -c "[[ '$(agent_check $H1)' == pass* ]]"

# The same with the agent stopped in the window: its next start rolls back.
check "net-apply the wrong declaration again, 6 s timer" \
	kc host net-apply $H1 "$D/h1-wrong.json" --confirm-timeout 6 --no-auto-confirm
check "stop $H1's agent while it is pending" stop_agent $H1
sleep 7
check "past the deadline with no agent, the ping still fails" no_ping 1
agent_run $H1
check "the restarted agent rolls back at start: the ping works" wait_for 20 ping_mgmt 1
check "its marker file is gone" wait_for 5 test ! -e "$KC_E2E_DATA/agent-$H1/net-pending.json"
check "host $H1 is Up again" wait_host $H1 Up 60

# A manual confirmation: an address added to cloudbr0.
sed 's/{"name": "cloudbr0", "vlan": 200}/{"name": "cloudbr0", "vlan": 200, "addresses": ["10.20.0.11\/24"]}/' \
	"$D/h1.json" >"$D/h1-addr.json"
check "net-apply with an address on cloudbr0, no auto-confirm" \
	kc host net-apply $H1 "$D/h1-addr.json" --confirm-timeout 30 --no-auto-confirm
check "host net-confirm $H1" kc host net-confirm $H1
check "its state is confirmed" test "$(net_state $H1)" = confirmed
check "cloudbr0 has 10.20.0.11/24" bash -c "$SIMHOST exec $H1 ip -br addr show cloudbr0 | grep -q 10.20.0.11/24"
check "no difference on $H1" test "$(ndiff $H1)" = 0

# The linux backend: 802.1Q sub-interfaces are not in this kernel.
cat >"$D/linux.json" <<EOF
{"backend": "linux", "nics": ["eth1"], "bridges": [{"name": "kcbr200", "vlan": 200}]}
EOF
check_err "the linux backend says this kernel lacks 802.1Q" "unsupported_on_this_kernel" \
	kc host net-apply $H2 "$D/linux.json"
check "and the bridge it made before the refusal was removed" bash -c "! $SIMHOST exec $H2 ip link show kcbr200"
check "$H2's recorded state is failed" test "$(net_state $H2)" = failed
check "$H2 still matches its confirmed declaration" test "$(ndiff $H2)" = 0

# Someone deletes a bridge by hand.
check "delete cloudbr1 by hand on $H2" sim_exec $H2 ovs-vsctl --timeout=10 del-br cloudbr1
r=$(agent_check $H2)
diag "$H2 check: $r"
check "kvmcloud-agent check on $H2 fails naming cloudbr1 missing" bash -c "[[ '$r' == fail*cloudbr1:\ missing\ bridge* ]]"
check "the API lists the difference" bash -c \
	"kc --json host net-show $H2 | grep -q 'missing bridge'"

hn_cleanup
trap - EXIT
check "no simulated host is left" test ! -e "$SIM_ROOT/$H1" -a ! -e "$SIM_ROOT/$H2"
check "no trunk veth is left" bash -c "! ip link show kchnt1"
finish
