#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Long operations as jobs: `vm create --async` prints a job id that
# `job show` follows to succeeded while the guest boots; the default verbs
# wait for their job; two concurrent creates with one Idempotency-Key make
# one VM and the same job; the key with another body is 409.
. "$(dirname "$0")/lib.sh"
cleanup_domains
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
TOKEN=$(cat "$KC_E2E_DATA/admin.token")

vm=${KC_PREFIX}job
job=$(kc vm create $vm --image kctest --memory 256 --async 2>>"$KC_LOG")
diag "job: $job"
if [[ $job =~ ^[0-9a-f-]{36}$ ]]; then ok "vm create --async prints a job id"; else not_ok "vm create --async prints a job id (got '$job')"; fi
check "job show reaches succeeded" bash -c \
	"for i in \$(seq 1 600); do s=\$(kc --json job show $job | json_get 'd[\"state\"]'); [ \"\$s\" = succeeded ] && exit 0; [ \"\$s\" = failed ] && exit 1; sleep 0.2; done; exit 1"
check "the job's result is the VM" bash -c "kc --json job show $job | json_get 'd[\"result\"][\"name\"]' | grep -qx $vm"
check "job show prints its progress" bash -c "kc job show $job | grep -Eq '^progress +100$'"
check "job list shows it" bash -c "kc job list | grep -q $job"
check "the VM boots" wait_ready $vm 180
check "waiting verb: destroy prints job progress lines on a non-terminal" bash -c \
	"kc vm destroy $vm 2>&1 >/dev/null | grep -Eq '^job [0-9a-f-]{36}: 100% succeeded'"
check "state is shutoff" wait_state $vm shutoff 10
check "waiting verb: delete" kc vm delete $vm
check "libvirt no longer has the domain" bash -c "! $VIRSH dominfo $vm"

# Two concurrent creates with one key.
vm2=${KC_PREFIX}idem
key=kce2e-idem-$RANDOM$RANDOM
body="{\"name\":\"$vm2\",\"image\":\"kctest\",\"memory_mib\":128,\"start\":false}"
post() {
	curl -s -o "$KC_E2E_DATA/idem-$1.json" -w '%{http_code}' -X POST "$KC_URL/api/v1/vms" \
		-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
		-H "Idempotency-Key: $key" -d "$2" >"$KC_E2E_DATA/idem-$1.code"
}
post a "$body" & pa=$!; post b "$body" & pb=$!; wait $pa $pb
ca=$(cat "$KC_E2E_DATA/idem-a.code"); cb=$(cat "$KC_E2E_DATA/idem-b.code")
diag "codes: $ca $cb"
if [ "$ca" = 201 ] && [ "$cb" = 201 ]; then ok "both concurrent creates with one key answer 201"; else not_ok "both creates 201 (got $ca $cb)"; fi
check "both answers are the same VM" bash -c \
	"[ \"\$(json_get 'd[\"uuid\"]' <$KC_E2E_DATA/idem-a.json)\" = \"\$(json_get 'd[\"uuid\"]' <$KC_E2E_DATA/idem-b.json)\" ]"
check "libvirt has exactly one such domain" bash -c "[ \$($VIRSH list --all --name | grep -cx $vm2) = 1 ]"
check "one job carries the key" bash -c \
	"[ \$(kc --json job list --limit 1000 | json_get 'sum(1 for j in d[\"jobs\"] if j[\"idempotency_key\"]==\"$key\")') = 1 ]"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$KC_URL/api/v1/vms?async=true" \
	-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
	-H "Idempotency-Key: $key" -d "{\"name\":\"$vm2\",\"image\":\"kctest\",\"memory_mib\":256}")
if [ "$code" = 409 ]; then ok "the key with another body is 409"; else not_ok "the key with another body is 409 (got $code)"; fi
code=$(curl -s -D "$KC_E2E_DATA/idem-h.txt" -o "$KC_E2E_DATA/idem-c.json" -w '%{http_code}' \
	-X POST "$KC_URL/api/v1/vms?async=true" -H "Authorization: Bearer $TOKEN" \
	-H "Idempotency-Key: $key" -d "$body")
check "an async retry answers 202 with the same finished job and a Location" bash -c \
	"[ $code = 202 ] && grep -qi '^Location: /api/v1/jobs/' $KC_E2E_DATA/idem-h.txt && \
	 [ \"\$(json_get 'd[\"job\"][\"state\"]' <$KC_E2E_DATA/idem-c.json)\" = succeeded ]"
check "delete it" kc vm delete $vm2
finish
