#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Bad input: each is one clear error, and nothing is created anywhere
# (libvirt, the storage pool, the database).
. "$(dirname "$0")/lib.sh"
cleanup_domains
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
token=$(cat "$KC_E2E_DATA/admin.token")

snapshot() {
	{
		$VIRSH list --all --name | grep "^$KC_PREFIX" | sort
		ls "$KC_E2E_DATA/pool" 2>/dev/null | sort
		kc --json vm list | json_get '"\n".join(sorted(v["name"] for v in d["vms"] if v["name"].startswith("kce2e-")))'
	} 2>&1
}
before=$(snapshot)
unchanged() { [ "$(snapshot)" = "$before" ]; }

long=$(printf 'a%.0s' $(seq 1 65))
check_err "name with /" "VM name.*(only contain|forbidden)" kc vm create 'kce2e-a/b' --image kctest --memory 128
check_err "name with .." "VM name.*\"\\.\\.\"|VM name" kc vm create 'kce2e-a..b' --image kctest --memory 128
check_err "name that is .." "VM name" kc vm create '..' --image kctest --memory 128
check_err "name with a space" "VM name" kc vm create 'kce2e a' --image kctest --memory 128
check_err "name with XML metacharacters" "VM name" kc vm create "kce2e-<x>&'\"" --image kctest --memory 128
check_err "name over 64 characters" "longer than 64" kc vm create "$long" --image kctest --memory 128
check_err "memory 0" "memory" kc vm create kce2e-m0 --image kctest --memory 0
check_err "memory above the host's" "memory.*host|host.*memory" kc vm create kce2e-mbig --image kctest --memory 100000000
check_err "vCPUs above the host's" "vcpu|CPU" kc vm create kce2e-cbig --image kctest --memory 128 --vcpus 64
check_err "a missing image" "image.*not found|not found.*image" kc vm create kce2e-noimg --image nosuchimage --memory 128
check_err "an image name with a path" "image name" kc vm create kce2e-path --image ../../etc/passwd --memory 128
check_err "a missing libvirt network" "network.*not found|not found" kc vm create kce2e-nonet --image kctest --memory 128 --nic network=kce2e-nosuchnet
check "nothing was created by the bad requests" unchanged

check "a good VM for the duplicate test" kc vm create kce2e-dup --image kctest --memory 128 --no-start
before=$(snapshot)
check_err "a duplicate name" "exists|conflict" kc vm create kce2e-dup --image kctest --memory 128 --no-start
check "the duplicate changed nothing" unchanged

# Straight at the API, with curl.
code() { curl -s -o /tmp/kce2e-body.$$ -w '%{http_code}' "$@"; }
check "malformed JSON is 400 invalid_argument" bash -c \
	"[ \$(curl -s -o /tmp/kce2e-b.$$ -w '%{http_code}' -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' -d '{\"name\": \"kce2e-x\", ' $KC_URL/api/v1/vms) = 400 ] && grep -q invalid_argument /tmp/kce2e-b.$$"
check "an unknown field is 400" bash -c \
	"[ \$(curl -s -o /tmp/kce2e-b.$$ -w '%{http_code}' -H 'Authorization: Bearer $token' -d '{\"name\":\"kce2e-x\",\"memroy_mib\":128,\"image\":\"kctest\"}' $KC_URL/api/v1/vms) = 400 ] && grep -q memroy /tmp/kce2e-b.$$"
check "a body over 1 MiB is 413" bash -c \
	"head -c 2000000 /dev/zero | tr '\\0' a > /tmp/kce2e-big.$$; [ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $token' --data-binary @/tmp/kce2e-big.$$ $KC_URL/api/v1/vms) = 413 ]"
check "no token is 401" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $KC_URL/api/v1/vms) = 401 ]"
check "a wrong token is 401" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer 00$token' $KC_URL/api/v1/vms) = 401 ]"
check "a wrong token cannot create" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' -d '{\"name\":\"kce2e-tok\",\"memory_mib\":128,\"image\":\"kctest\"}' $KC_URL/api/v1/vms) = 401 ]"
check_err "the CLI says so in one line" "unauthorized|token" "$KC_CLI_BIN" --server "$KC_URL" --token wrong vm list
check "nothing was created by the bad API calls" unchanged
rm -f /tmp/kce2e-b.$$ /tmp/kce2e-big.$$ /tmp/kce2e-body.$$
check "delete the duplicate-test VM" kc vm delete kce2e-dup

# A CPU model libvirt does not know stops the server at start-up.
server_stop
out=$(timeout 60 "$KC_SERVER_BIN" --all-in-one --data-dir "$KC_E2E_DATA" --listen "127.0.0.1:$KC_PORT" \
	-o storage.pool=$KC_POOL -o guest.cpu.mode=custom -o guest.cpu.model=NoSuchCPU 2>&1); rc=$?
echo "$out" >>"$KC_LOG"
if [ $rc -ne 0 ] && echo "$out" | grep -q "NoSuchCPU"; then ok "an unknown CPU model is a clear start-up error"; else not_ok "an unknown CPU model is a clear start-up error"; diag "rc=$rc $out"; fi
finish
