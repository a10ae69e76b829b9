#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The simulated-host infrastructure itself (scripts/simhost.sh): two hosts,
# each its own libvirtd with its own host UUID, namespaces and folders; a
# TCG guest on host 1 live-migrates to host 2 and keeps answering on its
# console; afterwards nothing is left (namespaces, mounts, processes, links).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

H1=kce2e-h1
H2=kce2e-h2
I1=41
I2=42
DOM=kcsim-e2e-mig
DISK=$SIM_SHARED/$DOM.qcow2
CLOG=$SIM_SHARED/$DOM.console.log
XML=$KC_E2E_DATA/$DOM.xml

ms() { date +%s%3N; }
# Live libvirtd and virtlogd outside our own mount namespace (the root
# daemons are in ours; the root daemon's QEMUs are in their own, and other
# engineers' guests come and go), and QEMUs using the simulated hosts'
# folders.  Zombies are dead already: PID 1 here reaps lazily.
sim_processes() {
	local me p n=0
	me=$(readlink /proc/self/ns/mnt)
	for p in $(ps -eo pid=,stat=,comm= | awk '$2 !~ /^Z/ && $3 ~ /^(libvirtd|virtlogd)$/ { print $1 }'); do
		[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null || echo "$me")" = "$me" ] || n=$((n + 1))
	done
	n=$((n + $(ps -eo stat=,args= | awk '$1 !~ /^Z/ && /qemu-system/ && /kvmcloud-sim/' | wc -l)))
	echo $n
}

# What this test must leave as it found it.
snapshot() {
	{
		echo "netns: $(ip netns list 2>/dev/null | grep -c '^kcsim-')"
		echo "links: $(ip -o link show | grep -Ec 'kcsimbr0|kcsv')"
		echo "mounts: $(grep -Ec 'kvmcloud-sim|/run/kcsim' /proc/self/mountinfo)"
		echo "simulated hosts' processes: $(sim_processes)"
		echo "root-libvirtd: $(cat /run/libvirtd.pid 2>/dev/null)"
	}
}

# Leftovers of an earlier run that was killed (SIGKILL skips traps).
"$SIMHOST" stop "$H1" --purge >/dev/null 2>&1
"$SIMHOST" stop "$H2" --purge >/dev/null 2>&1
rm -f "$DISK" "$CLOG"
sim_track "$DISK" "$CLOG" "$XML" "$SIM_SHARED/.probe"
before=$(snapshot)
# The root daemon's configuration: other engineers may define domains there
# meanwhile, so compare only what a simulated host could have written.
root_etc() { md5sum /etc/libvirt/libvirtd.conf /etc/libvirt/qemu.conf /etc/libvirt/virtlogd.conf 2>&1; }
root_etc_before=$(root_etc)

t=$(ms)
if sim_start $H1 $I1; then ok "simulated host 1 starts"; else not_ok "simulated host 1 starts"; finish; exit 1; fi
start_ms=$(($(ms) - t))
diag "start of a simulated host: $start_ms ms"
if sim_start $H2 $I2; then ok "simulated host 2 starts"; else not_ok "simulated host 2 starts"; finish; exit 1; fi
check "start again is idempotent and prints the same URI" \
	test "$("$SIMHOST" start $H1 $I1)" = "$H1 $SIM_URI_kce2e_h1"
check_err "a second host cannot take a used index" "index $I1 is used" "$SIMHOST" start kce2e-h3 $I1
check_err "a bad name is refused" "bad name" "$SIMHOST" start 'Bad/Name' 3
check "list shows both running" bash -c "\"$SIMHOST\" list | grep -q '^$H1 $I1 10.251.0.$I1 running' &&
	\"$SIMHOST\" list | grep -q '^$H2 $I2 10.251.0.$I2 running'"

host_uuid() { sim_virsh "$1" capabilities | sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n 1; }
u1=$(host_uuid $H1)
u2=$(host_uuid $H2)
u0=$(virsh -q -c qemu:///system capabilities 2>/dev/null | sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' | head -n 1)
diag "host UUIDs: $u1 $u2 (root daemon: ${u0:-none})"
check "each host reports a host UUID" test -n "$u1" -a -n "$u2"
check "the two host UUIDs differ" test "$u1" != "$u2"
check "neither is the root daemon's UUID" test "$u1" != "$u0" -a "$u2" != "$u0"
check "host 1's socket inside is the one its URI names" test \
	"$(sim_exec $H1 stat -c %i /run/libvirt/libvirt-sock)" = "$(stat -c %i $SIM_ROOT/$H1/run/libvirt/libvirt-sock)"
check "host 1 has its own /etc/libvirt" bash -c "\"$SIMHOST\" exec $H1 grep -q '$u1' /etc/libvirt/libvirtd.conf"
check "host 1 has its own address" bash -c "\"$SIMHOST\" exec $H1 ip -4 -o addr show eth0 | grep -q ' 10.251.0.$I1/24'"
check "host 1 has no default route (traffic stays on 10.251.0.0/24)" \
	bash -c "! \"$SIMHOST\" exec $H1 ip route | grep -q default"
# A refused connection proves the address answers (nothing listens on port 9).
check "host 1 reaches host 2's address" sim_exec $H1 bash -c \
	"timeout 5 bash -c 'exec 3<>/dev/tcp/10.251.0.$I2/9' 2>&1 | grep -q refused"
echo "kcsim-shared-$$" >"$SIM_SHARED/.probe"
check "the shared folder is the same inside both hosts" bash -c \
	"\"$SIMHOST\" exec $H1 grep -q kcsim-shared-$$ $SIM_SHARED/.probe && \"$SIMHOST\" exec $H2 grep -q kcsim-shared-$$ $SIM_SHARED/.probe"
rm -f "$SIM_SHARED/.probe"

# A small TCG guest from the test image, disk and console log shared.
qemu-img create -q -f qcow2 -F qcow2 -b "$KC_IMAGE" "$DISK"
cat >"$XML" <<EOF
<domain type='qemu'>
  <name>$DOM</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$DISK'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><log file='$CLOG' append='on'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
check "define the guest on host 1" sim_virsh $H1 define "$XML"
check "start it on host 1" sim_virsh $H1 start $DOM
check "the guest's ready line is in its serial log" sim_wait_log "$CLOG" '^KVMCLOUD-READY' 60
check "the guest runs on host 1 only" bash -c "[ \"\$(virsh -q -c '$SIM_URI_kce2e_h1' domstate $DOM)\" = running ] &&
	! virsh -q -c '$SIM_URI_kce2e_h2' dominfo $DOM"
check "the root daemon does not see it" bash -c "! $VIRSH dominfo $DOM"
check "the guest answers on host 1" sim_console_run $H1 $DOM "$CLOG" 'echo kcsim-$((6*7))' 'kcsim-42'

t=$(ms)
check "live migration host 1 -> host 2 (p2p)" sim_virsh $H1 migrate --live --p2p --unsafe \
	--persistent --undefinesource $DOM "$SIM_URI_kce2e_h2"
mig_ms=$(($(ms) - t))
diag "live migration: $mig_ms ms (virsh migrate, whole command)"
sim_virsh $H2 domjobinfo $DOM --completed 2>/dev/null | grep -E '^(Time elapsed|Total downtime):' | sed 's/^/# /'
check "the guest runs on host 2" test "$(sim_virsh $H2 domstate $DOM 2>/dev/null)" = running
check "host 1 no longer has it" bash -c "! virsh -q -c '$SIM_URI_kce2e_h1' dominfo $DOM"
# The source QEMU may take a moment to exit after the hand-over, so wait
# until exactly one QEMU is left for the guest, then ask where it runs
# (the [t] keeps pgrep from matching this very bash command line).
check "its QEMU runs in host 2's network namespace" bash -c \
	"for i in \$(seq 50); do n=\$(pgrep -c -f 'gues[t]=$DOM'); [ \"\$n\" = 1 ] && break; sleep 0.1; done
	p=\$(pgrep -f 'gues[t]=$DOM'); [ -n \"\$p\" ] && [ \"\$(ip netns identify \$p)\" = kcsim-$H2 ]"
size=$(stat -c %s "$CLOG")
check "the guest still answers on host 2, into the same console log" \
	sim_console_run $H2 $DOM "$CLOG" 'echo kcsim-$((6*9))' 'kcsim-54'
check "the console log grew after the migration" test "$(stat -c %s "$CLOG")" -gt "$size"

check "destroy and undefine on host 2" bash -c "virsh -q -c '$SIM_URI_kce2e_h2' destroy $DOM && virsh -q -c '$SIM_URI_kce2e_h2' undefine $DOM"
rm -f "$DISK" "$CLOG" "$XML"
t=$(ms)
sim_stop_all
diag "stop of both hosts: $(($(ms) - t)) ms"
after=$(snapshot)
echo "before: $before" >>"$KC_LOG"
echo "after: $after" >>"$KC_LOG"
check "no namespace, link, mount or process is left; the root libvirtd is the same" test "$before" = "$after"
if [ "$before" != "$after" ]; then diff <(echo "$before") <(echo "$after") | sed 's/^/# /'; fi
check "no state folder is left" test ! -e "$SIM_ROOT/$H1" -a ! -e "$SIM_ROOT/$H2"
check "the root namespace's /etc/libvirt is untouched" bash -c \
	"[ \"\$1\" = \"\$2\" ] && ! grep -rqs -e '$u1' -e '$u2' -e '$DOM' /etc/libvirt" _ "$root_etc_before" "$(root_etc)"
finish
