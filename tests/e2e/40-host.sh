#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Host facts and the host check: KVM present but not usable here, so the
# product must say so and run guests under TCG.
. "$(dirname "$0")/lib.sh"
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
check "the server said loudly which accelerator it uses" grep -Eiq "accelerator: *(TCG|KVM)" "$KC_E2E_DATA/server.log"

out=$("$KC_AGENT_BIN" check -o data.dir="$KC_E2E_DATA" -o storage.pool=$KC_POOL 2>&1)
echo "$out" >>"$KC_LOG"
for item in cpu_virt_flags kvm_device kvm_usable libvirt_version qemu_version fqdn time_sync memory nic security_module; do
	if echo "$out" | grep -Eq "^(PASS|WARN|FAIL) +$item:"; then ok "agent check reports $item"; else not_ok "agent check reports $item"; fi
done
if [ -e /dev/kvm ]; then
	check "kvm_usable is judged by a real boot, not by /dev/kvm alone" bash -c \
		"echo \"\$1\" | grep -E '^(PASS|WARN|FAIL) +kvm_usable:' | grep -Eiq 'probe|boot|guest'" _ "$out"
fi
host=$(kc --json host list | json_get 'd["hosts"][0]["name"]')
check "host list has the local host" test -n "$host"
check "host show has facts" bash -c "kc --json host show '$host' | grep -q '\"libvirt_version\"'"
check "host facts match virsh nodeinfo CPU count" bash -c \
	"[ \"\$(kc --json host show '$host' | json_get 'd[\"facts\"][\"cpus\"]')\" = \"\$($VIRSH nodeinfo | awk -F: '/^CPU\\(s\\)/{gsub(/ /,\"\",\$2); print \$2}')\" ]"
check "host check through the API stores a result" bash -c "kc host check '$host' >/dev/null; kc --json host show '$host' | json_get 'd[\"check\"][\"summary\"]' | grep -Eq 'pass|warn|fail'"
check "the accelerator is shown with the host" bash -c "kc host list | grep -Eiq 'tcg|kvm'"
finish
