#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Start virtlogd and libvirtd (no systemd on this machine) if they are not
# already running in this mount namespace, then wait until the local socket
# /var/run/libvirt/libvirt-sock answers.  Safe to run any number of times.
#
# Security: libvirtd is started without --listen, i.e. it is reachable over its
# local UNIX socket only, and its auth settings are left untouched.
set -euo pipefail

URI=qemu:///system
SOCK=/var/run/libvirt/libvirt-sock
WAIT_SECS=20
LOGDIR=/var/log/libvirt

if [ "$(id -u)" -ne 0 ]; then
    echo "start-libvirt.sh: must run as root" >&2
    exit 1
fi

# True if a process named exactly $1 runs in our own mount namespace.
# (Simulated hosts run their own libvirtd in private mount namespaces;
# those must not be mistaken for the host's daemon.)
running_here() {
    local pid myns
    myns=$(readlink /proc/self/ns/mnt)
    for pid in $(pgrep -x "$1" || true); do
        if [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)" = "$myns" ]; then
            return 0
        fi
    done
    return 1
}

socket_answers() {
    [ -S "$SOCK" ] && timeout 5 virsh -q -c "$URI" version >/dev/null 2>&1
}

if running_here virtlogd && running_here libvirtd && socket_answers; then
    echo "start-libvirt: virtlogd and libvirtd already running, $SOCK answers"
    exit 0
fi

mkdir -p /var/run/libvirt /var/lib/libvirt/qemu "$LOGDIR/qemu"

did=()
if ! running_here virtlogd; then
    LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOGDIR/virtlogd.log}" virtlogd -d
    did+=("started virtlogd")
fi
if ! running_here libvirtd; then
    LIBVIRT_LOG_OUTPUTS="${LIBVIRT_LOG_OUTPUTS:-3:file:$LOGDIR/libvirtd.log}" libvirtd -d
    did+=("started libvirtd")
fi

deadline=$((SECONDS + WAIT_SECS))
until socket_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "start-libvirt: $SOCK did not answer within ${WAIT_SECS}s (see $LOGDIR/libvirtd.log)" >&2
        exit 1
    fi
    sleep 0.2
done

if [ "${#did[@]}" -eq 0 ]; then
    echo "start-libvirt: daemons were running; $SOCK answers now"
else
    msg=$(IFS=,; echo "${did[*]}")
    echo "start-libvirt: ${msg//,/, }; $SOCK answers"
fi
