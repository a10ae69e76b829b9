#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A cluster of two simulated hosts (scripts/simhost.sh) and one server with
# no embedded agent: `host add`, `kvmcloud-agent join` and `run` inside each
# host, a VM created on each through the API boots (ready line read through
# the API), then `host remove` of one host: its live link is closed, its
# agent cannot reconnect (refused at the handshake), the other host stays
# Up.  Everything is cleaned up: agents, hosts, server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-c1
H2=kce2e-c2
VM1=kce2e-cl1
VM2=kce2e-cl2

cluster_init "$H1:43" "$H2:44"
cluster_server_start
for h in $H1 $H2; do
	cluster_join $h
done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
kc host list | sed 's/^/# /'

check "create $VM1 on $H1" kc vm create $VM1 --image kctest --memory 128 --host $H1
check "create $VM2 on $H2" kc vm create $VM2 --image kctest --memory 128 --host $H2
check "$VM1 boots (ready line through the API)" wait_ready $VM1 180
check "$VM2 boots (ready line through the API)" wait_ready $VM2 180
check "$VM1 runs in $H1's libvirtd" test "$(sim_virsh $H1 domstate $VM1)" = running
# The console of a VM on a remote host: a console stream from its agent
# (docs/protocol.md) behind the API's WebSocket, through `kvmcloud vm
# console` over HTTPS (the cluster CA from KVMCLOUD_CA), piped as in
# 10-lifecycle.sh.  cli_console VM SEND EXPECT: types SEND, up to 5 times
# (the guest may still be busy), until the answer shows EXPECT.
cli_console() {
	local i out
	for i in 1 2 3 4 5; do
		out=$(printf '%s' "$2" | timeout 20 "$KC_CLI_BIN" --server "$KC_URL" \
			--token-file "$SDATA/admin.token" vm console "$1" 2>&1)
		echo "$out" | tail -n 5 >>"$KC_LOG"
		printf '%s' "$out" | grep -q -- "$3" && return 0
	done
	return 1
}
check "kvmcloud vm console of $VM1 on $H1 over HTTPS: a command typed comes back" \
	cli_console $VM1 $'echo kce2e-rc$((6*7))\r' kce2e-rc42
check "and it reached the guest (its serial log)" bash -c \
	"for i in \$(seq 1 50); do kc vm log $VM1 | grep -q kce2e-rc42 && exit 0; sleep 0.2; done; exit 1"
check "the server logged no refused stream" bash -c "! grep -q 'console stream refused' $SDATA/server.log"
check "$VM2 runs in $H2's libvirtd" test "$(sim_virsh $H2 domstate $VM2)" = running
check "the VM list shows each on its host" test "$(vm_host $VM1) $(vm_host $VM2)" = "$H1 $H2"
check "a state change reaches the server" bash -c "kc vm destroy $VM2 >/dev/null && wait_state $VM2 shutoff 30"

check_err "the console of a stopped VM on a remote host: 409, not running" "not running" \
	timeout 20 "$KC_CLI_BIN" --server "$KC_URL" --token-file "$SDATA/admin.token" \
	vm console $VM2
# A CA that did not sign the server's certificate: refused before the
# upgrade request (and so before the token is sent), with OpenSSL's reason.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=kce2e-wrong-ca -keyout "$SDATA/wrong-ca.key" -out "$SDATA/wrong-ca.crt" \
	>>"$KC_LOG" 2>&1
check_err "a console with the wrong CA is refused, saying why" \
	"cannot open the console of $VM1 at $KC_URL: the server.s certificate is not trusted" \
	timeout 20 env KVMCLOUD_CA="$SDATA/wrong-ca.crt" "$KC_CLI_BIN" --server "$KC_URL" \
	--token-file "$SDATA/admin.token" vm console $VM1
check_err "so is one with no CA but the system's" \
	"cannot open the console of $VM1 at $KC_URL: the server.s certificate is not trusted" \
	timeout 20 env -u KVMCLOUD_CA "$KC_CLI_BIN" --server "$KC_URL" \
	--token-file "$SDATA/admin.token" vm console $VM1

# Remove host 2: its VM record first, then the host.
check_err "a host with VMs cannot be removed" "still has" kc host remove $H2
check "delete $VM2" kc vm delete $VM2
check "host remove $H2" kc host remove $H2
check "its link is closed and its agent is refused when it reconnects" \
	sim_wait_log "$SDATA/server.log" "handshake refused: certificate of \"$H2\".*is revoked" 90
kc host list | sed 's/^/# /'
check_err "$H2 is gone from the inventory" "not found" kc host show $H2
check "$H1 is still Up" test "$(host_state $H1)" = Up
check "$VM1 still answers through $H1" test "$(vm_state $VM1)" = running
check "delete $VM1" bash -c "kc vm destroy $VM1 >/dev/null; kc vm delete $VM1"

cluster_cleanup
check "no agent process is left" bash -c "! pgrep -f '[k]vmcloud-agent .*agent-kce2e-c' >/dev/null"
check "no simulated host is left" test ! -e "$SIM_ROOT/$H1" -a ! -e "$SIM_ROOT/$H2"
finish
