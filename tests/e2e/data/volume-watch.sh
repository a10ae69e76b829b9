#!/bin/sh
# NoCloud user-data for tests/e2e/120-volumes.sh: prints the guest's
# virtio disks (name:sectors:serial) on the console whenever they change,
# so that the test sees a hot-plugged volume appear, grow and go.
(
	last=
	while :; do
		now=
		for d in /sys/block/vd*; do
			[ -e "$d" ] || continue
			now="$now ${d##*/}:$(cat "$d/size"):$(cat "$d/serial" 2>/dev/null)"
		done
		if [ "$now" != "$last" ]; then
			echo "kce2e-disks:$now"
			last=$now
		fi
		sleep 1
	done
) </dev/null >/dev/console 2>&1 &
echo "kce2e-volume-watch started"
