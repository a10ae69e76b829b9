#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A VM's whole life through server, agent and CLI, against real libvirtd and
# QEMU (TCG): create from the test image, see its ready line, shut down,
# start again, reboot, force off, delete with disks; nothing may be left.
. "$(dirname "$0")/lib.sh"
cleanup_domains
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"

vm=${KC_PREFIX}life
check "create $vm from the test image" kc vm create $vm --image kctest --memory 256 --vcpus 1 \
	--hostname kce2e-guest --user-data "$KC_ROOT/tests/e2e/data/user-data.sh"
check "libvirt has the domain" $VIRSH dominfo $vm
check "domain type is qemu (TCG) on this host" \
	bash -c "$VIRSH dumpxml $vm | grep -q \"<domain type='qemu'\""
check "VNC is not on 0.0.0.0" bash -c "! $VIRSH dumpxml $vm | grep -q \"0.0.0.0\""
check "state is running" wait_state $vm running 30
check "guest prints its ready line" wait_ready $vm 120
check "the seed set the hostname" bash -c "kc vm log $vm | grep -q 'KVMCLOUD-READY hostname=kce2e-guest'"
check "user-data ran in the guest" bash -c "kc vm log $vm | grep -q 'kce2e-user-data-ran'"
check "guest got an address by DHCP" bash -c "kc vm log $vm | grep -Eq 'KVMCLOUD-READY .*ip=[0-9]+\\.'"
check "vm list shows it running" bash -c "kc vm list | grep -E \"^$vm +running\""
check "vm show --json names the accelerator" bash -c "kc --json vm show $vm | grep -q '\"accel\": *\"tcg\"'"

check "ACPI shutdown works" kc vm shutdown $vm --timeout 60 --no-force
check "state is shutoff" wait_state $vm shutoff 10
check_err "shutdown of a stopped VM is an error" "not running" kc vm shutdown $vm

size_before=$(kc vm log $vm | wc -c)
check "start again" kc vm start $vm
check "state is running again" wait_state $vm running 30
check "second boot reaches its ready line" bash -c \
	"for i in \$(seq 1 600); do [ \$(kc vm log $vm | grep -c KVMCLOUD-READY) -ge 2 ] && exit 0; sleep 0.2; done; exit 1"
check_err "start of a running VM is an error" "already running|is running" kc vm start $vm
check_err "delete of a running VM is refused" "running|stop" kc vm delete $vm
check "reboot" kc vm reboot $vm
check "third boot after reboot" bash -c \
	"for i in \$(seq 1 600); do [ \$(kc vm log $vm | grep -c KVMCLOUD-READY) -ge 3 ] && exit 0; sleep 0.2; done; exit 1"
check "interactive console: a command typed reaches the guest" bash -c \
	"printf 'echo kce2e-con\$((6*7))\\n' | timeout 20 $KC_CLI_BIN --server $KC_URL --token-file $KC_E2E_DATA/admin.token vm console $vm >/dev/null 2>&1; \
	 for i in \$(seq 1 100); do kc vm log $vm | grep -q kce2e-con42 && exit 0; sleep 0.2; done; exit 1"
# The WebSocket console client test of tests/server, now that a VM runs.
ws_out=$(KC_SERVER_URL=$KC_URL KC_TOKEN_FILE=$KC_E2E_DATA/admin.token KC_VM=$vm \
	KC_CONSOLE_SEND=$'echo kce2e-ws-$((7*6))\r' KC_CONSOLE_EXPECT=kce2e-ws-42 \
	"$KC_BUILD/tests/server/test_server_console_ws" 2>&1)
echo "$ws_out" >>"$KC_LOG"
if echo "$ws_out" | grep -q '^ok' && ! echo "$ws_out" | grep -q '^not ok\|SKIP'; then
	ok "console WebSocket: a line sent over the API comes back from the guest; no token is refused"
else
	not_ok "console WebSocket test"; echo "$ws_out" | sed 's/^/# /'
fi
check "destroy (force off)" kc vm destroy $vm
check "state is shutoff after destroy" wait_state $vm shutoff 10

disks=$(kc --json vm show $vm | json_get '" ".join(x["path"] for x in d["disks"])')
diag "disks: $disks"
check "delete with its disks" kc vm delete $vm
check "libvirt no longer has the domain" bash -c "! $VIRSH dominfo $vm"
check "the API no longer has the VM" bash -c "! kc vm show $vm"
check "no disk of the VM is left on disk" bash -c "for p in $disks; do [ ! -e \"\$p\" ] || exit 1; done"
check "no volume of the VM is left in the pool" bash -c "! $VIRSH vol-list $KC_POOL | grep -q $vm"
check "the template image is untouched" test -s "$KC_E2E_DATA/images/kctest.qcow2"

check "create with --keep-disks keeps them" kc vm create ${vm}2 --image kctest --memory 128 --no-start
disks=$(kc --json vm show ${vm}2 | json_get '" ".join(x["path"] for x in d["disks"] if x["device"]=="disk")')
check "delete --keep-disks" kc vm delete ${vm}2 --keep-disks
check "the kept disk is still there" bash -c "for p in $disks; do [ -e \"\$p\" ] || exit 1; done"
rm -f $disks; $VIRSH pool-refresh $KC_POOL >/dev/null 2>&1
finish
