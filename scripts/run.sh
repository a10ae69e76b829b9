#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make run`: start kvmcloud-server --all-in-one on this machine, make sure
# one VM ("demo") exists and runs from the test image, print where things
# are, and keep running until Ctrl-C.  A second run reuses the data folder
# and the VM.
set -euo pipefail
BUILD=${1:-build}
DATA=${2:-/var/lib/kvmcloud}
IMAGE=${3:-/var/cache/kvmcloud/test-image/kctest.qcow2}
LISTEN=${KC_LISTEN:-127.0.0.1:8470}
URL=http://$LISTEN
here=$(cd "$(dirname "$0")/.." && pwd)
server=$here/$BUILD/src/server/kvmcloud-server
cli=$here/$BUILD/src/cli/kvmcloud

install -d -m 0755 "$DATA" "$DATA/images"
if ! cmp -s "$IMAGE" "$DATA/images/kctest.qcow2"; then
	cp "$IMAGE" "$DATA/images/kctest.qcow2.tmp"
	mv "$DATA/images/kctest.qcow2.tmp" "$DATA/images/kctest.qcow2"
fi

# The server's own lines and its request log go to a file; the start-up
# lines that matter are echoed below.
log=$DATA/server.log
[ -f "$log" ] && mv -f "$log" "$log.1"
install -m 0600 /dev/null "$log"
"$server" --all-in-one --data-dir "$DATA" --listen "$LISTEN" >>"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; echo; echo "kvmcloud-server stopped (VMs keep running; make run again to reattach)."' EXIT
trap 'exit 0' INT TERM

for i in $(seq 1 300); do
	curl -fs -o /dev/null "$URL/api/v1/openapi.json" && break
	kill -0 $pid 2>/dev/null || { echo "kvmcloud-server exited:" >&2; tail -5 "$log" >&2; exit 1; }
	sleep 0.2
done
grep -E '^(kvmcloud-server|accelerator|admin token)' "$log" | grep -Ev '^admin token: [0-9a-f]{64}'

kc() { "$cli" --server "$URL" --token-file "$DATA/admin.token" "$@"; }
if ! kc vm show demo >/dev/null 2>&1; then
	kc vm create demo --image kctest --memory 256 --vcpus 1 --hostname demo
fi
state=$(kc --json vm show demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
[ "$state" = running ] || kc vm start demo
kc vm log demo --follow --until KVMCLOUD-READY --timeout 180 >/dev/null

echo
echo "================================================================"
echo " kvmcloud is running"
echo "   API:          $URL/api/v1   (OpenAPI: $URL/api/v1/openapi.json)"
echo "   admin token:  $(cat "$DATA/admin.token")   (file: $DATA/admin.token)"
echo "   VM 'demo':    $(kc --json vm show demo | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["state"], "accel="+v["accel"])')"
echo "   console:      $(kc vm log demo | grep KVMCLOUD-READY | tail -1 | tr -d '\r')"
echo "   server log:   $log"
echo
echo " Try:  $cli vm list"
echo "       $cli vm console demo        (Ctrl-] to leave)"
echo " Ctrl-C stops the server; the VM keeps running."
echo "================================================================"
wait $pid
