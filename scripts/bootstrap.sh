#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Prepare a fresh Debian 12 machine (as root) for building and testing
# kvmcloud: install the missing Debian packages, create the users, groups and
# folders libvirt needs when libvirt-daemon-system (systemd) is not installed,
# then start libvirt with scripts/start-libvirt.sh.  Idempotent: a second run
# installs nothing and exits 0.
set -euo pipefail

# Keep every package here, one list; others may append to it.
PACKAGES="build-essential meson ninja-build pkg-config
  libvirt-dev libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils
  libsqlite3-dev libpq-dev postgresql libjansson-dev libxml2-dev
  libulfius-dev liborcania-dev libyder-dev libmicrohttpd-dev libwebsockets-dev
  libcurl4-gnutls-dev libsodium-dev libgnutls28-dev
  linux-image-cloud-amd64 busybox-static extlinux syslinux-common
  fdisk e2fsprogs xorriso dnsmasq-base iproute2 procps curl ca-certificates
  python3 time gnutls-bin openssl wrk
  libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra libnfs-dev
  tgt nfs-ganesha nfs-ganesha-vfs rpcbind
  openvswitch-switch nftables libnftables-dev iptables ebtables ethtool iperf3
  iputils-ping tcpdump netcat-openbsd"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap.sh: must run as root" >&2
    exit 1
fi

# --- packages --------------------------------------------------------------
missing=()
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    case "$status" in
        ii*) ;;
        *) missing+=("$pkg") ;;
    esac
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "bootstrap: all packages already installed"
fi

# --- users and groups (normally made by libvirt-daemon-system) --------------
if ! getent group kvm >/dev/null; then
    groupadd --system kvm
    echo "bootstrap: created group kvm"
fi
if ! getent group libvirt >/dev/null; then
    groupadd --system libvirt
    echo "bootstrap: created group libvirt"
fi
# Debian's libvirt runs QEMU as user libvirt-qemu, group libvirt-qemu.
if ! getent group libvirt-qemu >/dev/null; then
    groupadd --system libvirt-qemu
    echo "bootstrap: created group libvirt-qemu"
fi
if ! getent passwd libvirt-qemu >/dev/null; then
    nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    useradd --system --gid kvm --home-dir /var/lib/libvirt --no-create-home \
        --shell "$nologin" --comment "Libvirt Qemu" libvirt-qemu
    echo "bootstrap: created user libvirt-qemu"
fi
if ! id -nG libvirt-qemu | tr ' ' '\n' | grep -qx libvirt-qemu; then
    usermod -a -G libvirt-qemu libvirt-qemu
    echo "bootstrap: added user libvirt-qemu to group libvirt-qemu"
fi

# --- folders ---------------------------------------------------------------
for d in /var/log/libvirt /var/log/libvirt/qemu /var/run/libvirt \
         /var/lib/libvirt /var/lib/libvirt/images /var/lib/libvirt/boot \
         /var/cache/libvirt; do
    if [ ! -d "$d" ]; then
        mkdir -p "$d"
        echo "bootstrap: created $d"
    fi
done
if [ ! -d /var/lib/libvirt/qemu ]; then
    install -d -m 0751 -o libvirt-qemu -g kvm /var/lib/libvirt/qemu
    echo "bootstrap: created /var/lib/libvirt/qemu"
fi

# --- daemons ---------------------------------------------------------------
# libvirtd loads its storage backends at start: one running from before the
# iscsi-direct backend was installed must restart to have it (its guests
# keep running).  start-libvirt.sh below starts it again.
if [[ " ${missing[*]} " == *" libvirt-daemon-driver-storage-iscsi-direct "* ]] &&
    [ -s /var/run/libvirtd.pid ] && kill -0 "$(cat /var/run/libvirtd.pid)" 2>/dev/null; then
    pid=$(cat /var/run/libvirtd.pid)
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "bootstrap: stopped libvirtd to load the iscsi-direct storage backend"
fi
"$HERE/start-libvirt.sh"
