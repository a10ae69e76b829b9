#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# build-test-image.sh [CACHE_DIR]
#
# Build "kctest", the tiny guest image the kvmcloud tests boot under QEMU/TCG:
#   CACHE_DIR/kctest.qcow2          bootable disk (MBR + extlinux + ext4 /boot)
#   CACHE_DIR/kctest-vmlinuz        the same kernel, for direct kernel boot
#   CACHE_DIR/kctest-initramfs.gz   the same initramfs, for direct kernel boot
#   CACHE_DIR/inputs.sha256         stamp of the inputs the image was built from
# CACHE_DIR defaults to ${KVMCLOUD_CACHE:-/var/cache/kvmcloud}/test-image.
#
# The guest: Debian cloud kernel + a busybox initramfs that is the whole
# userland.  At boot it loads the virtio/cdrom/ACPI modules, runs DHCP on eth0
# (never hangs without a server), applies a NoCloud seed (iso9660, label
# "cidata", on /dev/sr* or /dev/vd[b-z]: hostname from meta-data, user-data
# run if it starts with "#!"), starts acpid so the ACPI power button
# (virsh shutdown) powers it off, prints on the serial console
#   KVMCLOUD-READY hostname=<hostname> ip=<ipv4|none>
# and then keeps a root shell on ttyS0.
#
# Rebuilds only when an input changes (this script, the kernel, the modules,
# busybox, extlinux/mbr.bin); otherwise it says so and exits 0.
set -euo pipefail

CACHE_DIR=${1:-${KVMCLOUD_CACHE:-/var/cache/kvmcloud}/test-image}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
BUSYBOX=/bin/busybox
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin
DISK_MIB=128
PART_START=2048                       # sectors (1 MiB)
KCMDLINE="console=ttyS0 quiet loglevel=3 panic=10"
# Modules the guest wants (built-in ones are skipped, dependencies added).
WANT_MODULES="virtio_pci virtio_blk virtio_net virtio_console virtio_scsi
  ext4 cdrom sr_mod isofs libata ata_piix button evdev"

log() { echo "build-test-image: $*"; }
die() { echo "build-test-image: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mount)"
for tool in sfdisk mkfs.ext4 extlinux qemu-img losetup mount flock gzip sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/bootstrap.sh)"
done
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (package busybox-static)"
[ -f "$MBR_BIN" ] || die "$MBR_BIN not found (package syslinux-common)"

# --- inputs ----------------------------------------------------------------
KERNEL=$(find /boot -maxdepth 1 -name "vmlinuz-*-cloud-amd64" | sort -V | tail -n 1)
[ -n "$KERNEL" ] || die "no /boot/vmlinuz-*-cloud-amd64 (package linux-image-cloud-amd64)"
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/lib/modules/$KVER
[ -f "$MODDIR/modules.dep" ] || die "$MODDIR/modules.dep missing"

# Resolve WANT_MODULES against modules.dep into an ordered load list
# (dependencies first).  MOD_FILES: relative paths under $MODDIR.
declare -A MOD_PATH=() SEEN=()
MOD_FILES=()
while IFS= read -r line; do
    p=${line%%:*}
    n=${p##*/}; n=${n%%.ko*}; n=${n//-/_}
    MOD_PATH[$n]=$p
done < "$MODDIR/modules.dep"
declare -A BUILTIN=()
if [ -f "$MODDIR/modules.builtin" ]; then
    while IFS= read -r p; do
        n=${p##*/}; n=${n%%.ko*}; n=${n//-/_}
        BUILTIN[$n]=1
    done < "$MODDIR/modules.builtin"
fi
add_module() {
    local n=${1//-/_} p dep deps
    [ -z "${SEEN[$n]:-}" ] || return 0
    SEEN[$n]=1
    if [ -n "${BUILTIN[$n]:-}" ]; then return 0; fi
    p=${MOD_PATH[$n]:-}
    if [ -z "$p" ]; then log "warning: module $n is neither built in nor in modules.dep; skipped"; return 0; fi
    deps=$(grep -m1 "^${p}:" "$MODDIR/modules.dep" | cut -d: -f2)
    for dep in $deps; do
        dep=${dep##*/}; add_module "${dep%%.ko*}"
    done
    MOD_FILES+=("$p")
}
for m in $WANT_MODULES; do add_module "$m"; done

stamp() {
    echo "kctest image format 1, disk ${DISK_MIB}MiB, cmdline: $KCMDLINE"
    echo "kernel $KVER"
    "$BUSYBOX" 2>/dev/null | head -n 1 || true
    dpkg-query -W -f='${Package} ${Version}\n' busybox-static extlinux syslinux-common 2>/dev/null || true
    (cd "$MODDIR" && sha256sum "${MOD_FILES[@]}")
    sha256sum "$SELF" "$KERNEL" "$BUSYBOX" "$MBR_BIN" "$(command -v extlinux)"
}

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.lock"
flock 9                                 # one builder at a time per cache dir
WANT_STAMP=$(stamp | sha256sum | cut -d' ' -f1)
OUT=$CACHE_DIR/kctest.qcow2
if [ -f "$OUT" ] && [ -f "$CACHE_DIR/inputs.sha256" ] &&
   [ "$(cat "$CACHE_DIR/inputs.sha256")" = "$WANT_STAMP" ]; then
    log "$OUT is up to date"
    exit 0
fi
log "building $OUT (kernel $KVER)"

# --- build area and cleanup --------------------------------------------------
WORK=$(mktemp -d "$CACHE_DIR/.build.XXXXXX")
MNT=$WORK/mnt
LOOP=
cleanup() {
    set +e
    if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || umount -l "$MNT"; fi
    if [ -n "$LOOP" ]; then losetup -d "$LOOP"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# --- initramfs (the whole guest userland) ------------------------------------
R=$WORK/initramfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,mnt/seed,root,var/log,etc/init.d,etc/acpi/PWRF,usr/share/udhcpc,lib/modules/kctest}
chmod 1777 "$R/tmp"
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list-full); do
    [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
ln -s bin/busybox "$R/init"            # busybox init runs as /init
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3

: > "$R/etc/kctest-modules"
for p in "${MOD_FILES[@]}"; do
    n=${p##*/}; n=${n%%.ko*}
    case "$p" in
        *.ko)     cp "$MODDIR/$p" "$R/lib/modules/kctest/$n.ko" ;;
        *.ko.xz)  xz -dc "$MODDIR/$p" > "$R/lib/modules/kctest/$n.ko" ;;
        *.ko.zst) zstd -qdc "$MODDIR/$p" > "$R/lib/modules/kctest/$n.ko" ;;
        *.ko.gz)  gzip -dc "$MODDIR/$p" > "$R/lib/modules/kctest/$n.ko" ;;
        *) die "unknown module format: $p" ;;
    esac
    echo "$n" >> "$R/etc/kctest-modules"
done
echo "$KVER" > "$R/etc/kctest-kernel"

cat > "$R/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
::restart:/sbin/init
EOF

cat > "$R/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# kctest boot: mounts, modules, acpid, network, NoCloud seed, ready line.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
HOST=kctest
hostname "$HOST"

for m in $(cat /etc/kctest-modules); do
    insmod "/lib/modules/kctest/$m.ko" 2>/dev/null ||
        grep -q "^$m " /proc/modules || echo "kctest: insmod $m failed"
done

# ACPI power button -> /etc/acpi/PWRF/00000080 -> poweroff.
i=0
while [ ! -e /dev/input/event0 ] && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done
acpid -l /var/log/acpid.log || echo "kctest: acpid failed to start"

ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up
    udhcpc -i eth0 -t 5 -T 1 -n -q -s /usr/share/udhcpc/default.script >/dev/null 2>&1 ||
        echo "kctest: no DHCP lease on eth0"
fi

# NoCloud seed: iso9660 with volume id "cidata" on a cdrom or a virtio disk.
find_seed() {
    for dev in /dev/sr[0-9]* /dev/vd[b-z]; do
        [ -b "$dev" ] || continue
        dd if="$dev" of=/run/pvd bs=2048 skip=16 count=1 2>/dev/null || continue
        [ "$(dd if=/run/pvd bs=1 skip=1 count=5 2>/dev/null)" = CD001 ] || continue
        label=$(dd if=/run/pvd bs=1 skip=40 count=32 2>/dev/null | tr -d ' \000' | tr A-Z a-z)
        [ "$label" = cidata ] && { echo "$dev"; return 0; }
    done
    return 1
}
if SEED=$(find_seed) && mount -t iso9660 -o ro "$SEED" /mnt/seed 2>/dev/null; then
    if [ -f /mnt/seed/meta-data ]; then
        hn=$(sed -n 's/^[[:space:]]*local-hostname:[[:space:]]*//p' /mnt/seed/meta-data | head -n 1)
        [ -n "$hn" ] || hn=$(sed -n 's/^[[:space:]]*hostname:[[:space:]]*//p' /mnt/seed/meta-data | head -n 1)
        hn=$(echo "$hn" | tr -d "\r\"'" | sed 's/[[:space:]]*$//')
        case "$hn" in
            ""|*[!A-Za-z0-9.-]*) [ -z "$hn" ] || echo "kctest: ignoring bad hostname '$hn'" ;;
            *) HOST=$hn; hostname "$HOST" ;;
        esac
        echo "kctest: NoCloud seed on $SEED"
        if [ -f /mnt/seed/user-data ] && [ "$(head -c 2 /mnt/seed/user-data)" = "#!" ]; then
            cp /mnt/seed/user-data /run/user-data
            chmod 700 /run/user-data
            interp=$(head -n 1 /run/user-data | sed 's/^#![[:space:]]*//; s/[[:space:]].*//')
            echo "kctest: running user-data"
            if [ -x "$interp" ]; then
                (cd / && /run/user-data) </dev/null >/dev/console 2>&1
            else
                (cd / && sh /run/user-data) </dev/null >/dev/console 2>&1
            fi
            echo "kctest: user-data exited with status $?"
        fi
    else
        echo "kctest: seed $SEED has no meta-data; ignored"
        umount /mnt/seed
    fi
fi
echo "$HOST" > /etc/hostname
echo "127.0.0.1 localhost $HOST" > /etc/hosts

IP=$(ip -4 -o addr show dev eth0 2>/dev/null | sed -n 's/.* inet \([0-9.]*\)\/.*/\1/p' | head -n 1)
printf '\nKVMCLOUD-READY hostname=%s ip=%s\n' "$HOST" "${IP:-none}"
EOF

cat > "$R/etc/init.d/rcK" <<'EOF'
#!/bin/sh
echo "kctest: shutting down"
umount /mnt/seed 2>/dev/null
sync
EOF

cat > "$R/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
# The userland lives in RAM: nothing to save, so skip init's slow
# SIGTERM/SIGKILL rounds and power off at once.
echo "kctest: ACPI power button pressed, powering off" > /dev/console
/etc/init.d/rcK > /dev/console 2>&1
poweroff -f
EOF

cat > "$R/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
# Minimal udhcpc hook: configure address, default route and DNS.
case "$1" in
    deconfig)
        ip -4 addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip -4 addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
        for r in $router; do
            ip route replace default via "$r" dev "$interface"
            break
        done
        : > /etc/resolv.conf
        [ -z "$domain" ] || echo "search $domain" >> /etc/resolv.conf
        for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
        ;;
esac
exit 0
EOF

cat > "$R/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PS1='\h:\w\$ '
EOF
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"
chmod 755 "$R/etc/init.d/rcS" "$R/etc/init.d/rcK" "$R/etc/acpi/PWRF/00000080" \
    "$R/usr/share/udhcpc/default.script"

(cd "$R" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) | gzip -9n > "$WORK/initramfs.gz"

# --- raw disk: MBR, one active partition, ext4 /boot, extlinux ---------------
RAW=$WORK/disk.raw
truncate -s "${DISK_MIB}M" "$RAW"
printf 'label: dos\nstart=%s, type=83, bootable\n' "$PART_START" | sfdisk -q "$RAW" >/dev/null
PART_SECTORS=$(sfdisk -d "$RAW" | sed -n 's/.*size= *\([0-9]*\).*/\1/p' | head -n 1)
[ -n "$PART_SECTORS" ] || die "could not read the partition size back"
LOOP=$(losetup -f --show -o $((PART_START * 512)) --sizelimit $((PART_SECTORS * 512)) "$RAW")
# extlinux 6.04 cannot boot from ext4 with 64bit; keep the fs simple.
mkfs.ext4 -q -F -L kctest -O ^64bit,^metadata_csum,^has_journal -E root_owner=0:0 "$LOOP"
mkdir -p "$MNT"
mount -t ext4 "$LOOP" "$MNT"
mkdir -p "$MNT/boot/extlinux"
cp "$KERNEL" "$MNT/boot/vmlinuz-$KVER"
cp "$WORK/initramfs.gz" "$MNT/boot/initramfs-kctest.gz"
cat > "$MNT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT kctest
PROMPT 0
TIMEOUT 0
LABEL kctest
  LINUX /boot/vmlinuz-$KVER
  INITRD /boot/initramfs-kctest.gz
  APPEND $KCMDLINE
EOF
extlinux --install "$MNT/boot/extlinux" >/dev/null 2>&1 || die "extlinux --install failed"
umount "$MNT"
losetup -d "$LOOP"
LOOP=
dd if="$MBR_BIN" of="$RAW" bs=440 count=1 conv=notrunc status=none

# --- publish atomically --------------------------------------------------------
qemu-img convert -f raw -O qcow2 "$RAW" "$WORK/kctest.qcow2"
cp "$KERNEL" "$WORK/kctest-vmlinuz"
mv -f "$WORK/kctest-vmlinuz" "$CACHE_DIR/kctest-vmlinuz"
mv -f "$WORK/initramfs.gz" "$CACHE_DIR/kctest-initramfs.gz"
mv -f "$WORK/kctest.qcow2" "$OUT"
echo "$WANT_STAMP" > "$WORK/inputs.sha256"
mv -f "$WORK/inputs.sha256" "$CACHE_DIR/inputs.sha256"
log "built $OUT ($(du -h "$OUT" | cut -f1); modules: $(tr '\n' ' ' < "$R/etc/kctest-modules"))"
