#!/bin/sh
# NoCloud user-data of tests/e2e/140-snapshots.sh: counts the guest's boots
# in a file on its own root disk and prints the count on the serial
# console, so that a snapshot revert can be seen to bring the disk back.
mkdir -p /mnt/kcd
if mount -t ext4 /dev/vda1 /mnt/kcd; then
	n=$(cat /mnt/kcd/kcsnap-boots 2>/dev/null || echo 0)
	n=$((n + 1))
	echo $n >/mnt/kcd/kcsnap-boots
	sync
	umount /mnt/kcd
	echo "KCSNAP-BOOT=$n"
else
	echo "KCSNAP-BOOT=mount-failed"
fi
