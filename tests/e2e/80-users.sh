#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Users, roles, quotas and audit through the CLI against a real server:
# two users with their own tokens; A's VM is invisible to B (404 on show,
# start, delete); B's quota of one VM makes the second create a clear error
# that creates nothing; the audit log names who did what; a revoked token
# stops working; a password session works and a wrong password is 401.
. "$(dirname "$0")/lib.sh"
cleanup_domains
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"

ua=kce2eusera
ub=kce2euserb
va=${KC_PREFIX}user-a
vb1=${KC_PREFIX}user-b1
vb2=${KC_PREFIX}user-b2
ta=$KC_E2E_DATA/$ua.token
tb=$KC_E2E_DATA/$ub.token
as_a() { "$KC_CLI_BIN" --server "$KC_URL" --token-file "$ta" "$@"; }
as_b() { "$KC_CLI_BIN" --server "$KC_URL" --token-file "$tb" "$@"; }

check "create user A with a password" bash -c "echo 'a-password-123' | \
	'$KC_CLI_BIN' --server '$KC_URL' --token-file '$KC_E2E_DATA/admin.token' \
	user create $ua --password-stdin"
check "create user B" kc user create $ub --role user
check "user list shows both" bash -c "kc user list | grep -q '^$ua ' && kc user list | grep -q '^$ub '"
check "token for A" bash -c "kc --json token create --user $ua | json_get 'd[\"token\"]' >'$ta'"
check "token for B" bash -c "kc --json token create --user $ub --name cli | json_get 'd[\"token\"]' >'$tb'"
check "B's token works" as_b vm list

check "A creates a VM" as_a vm create $va --image kctest --memory 128 --no-start
check "A sees it" bash -c "as_a() { '$KC_CLI_BIN' --server '$KC_URL' --token-file '$ta' \"\$@\"; }; \
	as_a vm list | grep -q '^$va '"
check "B's list does not show it" bash -c "! '$KC_CLI_BIN' --server '$KC_URL' --token-file '$tb' vm list | grep -q '$va'"
check_err "B: show of A's VM is not found" "not found" as_b vm show $va
check_err "B: start of A's VM is not found" "not found" as_b vm start $va
check_err "B: delete of A's VM is not found" "not found" as_b vm delete $va
check "A's VM is still there" kc vm show $va
check_err "B cannot list users" "admin" as_b user list
check_err "B cannot add hosts" "admin" as_b host add kce2e-nohost

check "quota: B may have 1 VM" kc user quota $ub --vms 1
check "B creates one VM" as_b vm create $vb1 --image kctest --memory 128 --no-start
check_err "B's second VM is a quota error" "quota exceeded.*1 VMs" \
	as_b vm create $vb2 --image kctest --memory 128 --no-start
check "the refused VM does not exist anywhere" bash -c \
	"! $VIRSH dominfo $vb2 >/dev/null 2>&1 && ! kc vm list | grep -q '$vb2'"

check "audit: A's create under A" bash -c "kc audit list --user $ua | grep -E ' ok +POST /api/v1/vms +$va'"
check "audit: B's refused create under B" bash -c \
	"kc audit list --user $ub | grep -E ' error +(POST /api/v1/vms|job vm.create) +$vb2 \\(forbidden\\)'"
check "audit: B's delete attempt of A's VM" bash -c \
	"kc audit list --user $ub | grep -E 'DELETE /api/v1/vms/:vm +$va \\(not_found\\)'"
check "audit: the admin's user create under admin" bash -c \
	"kc audit list --user admin | grep -E 'POST /api/v1/users +$ub'"
check_err "B cannot read the audit log" "admin" as_b audit list

id=$(as_b --json token list | json_get 'd["tokens"][0]["id"]')
check "B revokes their token" as_b token revoke "$id"
check_err "the revoked token is refused" "invalid bearer token|401|unauthorized" as_b vm list

check "password session for A" bash -c "curl -sf -X POST -H 'Content-Type: application/json' \
	-d '{\"user\":\"$ua\",\"password\":\"a-password-123\"}' $KC_URL/api/v1/sessions | \
	json_get 'd[\"token\"]' >'$KC_E2E_DATA/session.token'"
check "the session token lists A's VM" bash -c "'$KC_CLI_BIN' --server '$KC_URL' \
	--token-file '$KC_E2E_DATA/session.token' vm list | grep -q '^$va '"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
	-d "{\"user\":\"$ua\",\"password\":\"wrong-password\"}" "$KC_URL/api/v1/sessions")
if [ "$code" = 401 ]; then ok "a wrong password is 401"; else not_ok "a wrong password is 401 (got $code)"; fi

check "delete A's VM" kc vm delete $va
check "delete B's VM" kc vm delete $vb1
check "delete user B" kc user delete $ub
check "user list no longer shows B" bash -c "! kc user list | grep -q '^$ub '"

cleanup_all
rm -f "$ta" "$tb" "$KC_E2E_DATA/session.token"
finish
