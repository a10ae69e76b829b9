#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# libvirtd restarted under a running VM: the VM keeps running, the agent
# reconnects and sees it again, and operations work afterwards.
. "$(dirname "$0")/lib.sh"
cleanup_domains
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"

vm=${KC_PREFIX}restart
check "create and boot $vm" kc vm create $vm --image kctest --memory 128
check "guest is ready" wait_ready $vm 120
qemu_pid=$(pgrep -f "guest=$vm," | head -1)
diag "qemu pid: $qemu_pid"

check "stop libvirtd" bash -c "pkill -TERM -x libvirtd; for i in \$(seq 1 50); do pgrep -x libvirtd >/dev/null || exit 0; sleep 0.2; done; exit 1"
check "the API says libvirtd is unreachable, clearly" bash -c \
	"kc vm show $vm 2>&1 | grep -Eiq 'unreachable|not reachable|unavailable|running'"
check "start libvirtd again" "$KC_ROOT/scripts/start-libvirt.sh"
check "the QEMU process kept running" kill -0 "$qemu_pid"
check "the agent sees the VM running again" wait_state $vm running 60
check "the guest still answers on its console" bash -c \
	"printf 'echo kce2e-alive\$((5*5))\\n' | timeout 20 $KC_CLI_BIN --server $KC_URL --token-file $KC_E2E_DATA/admin.token vm console $vm >/dev/null 2>&1; \
	 for i in \$(seq 1 100); do kc vm log $vm | grep -q kce2e-alive25 && exit 0; sleep 0.2; done; exit 1"
check "operations work after the reconnect: destroy" kc vm destroy $vm
check "delete" kc vm delete $vm
check "nothing left in libvirt" bash -c "! $VIRSH dominfo $vm"
finish
