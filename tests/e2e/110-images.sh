#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The image library (docs/storage.md, "Image library"): images registered
# from a URL served by a local HTTP server (python3 -m http.server on
# loopback, started and stopped here) with the right and a wrong sha256,
# uploaded from a file, refused when they have a backing file, a header
# that lies about their format or a path-traversal name; files already in
# the store adopted.  Then a cluster with one simulated host: a VM made
# from a library image the host does not have gets it copied over the
# agent link (once) and boots.
. "$(dirname "$0")/lib.sh"

WWW=$KC_E2E_DATA/www-images
STORE=$KC_E2E_DATA/images
HPORT=$((KC_PORT + 2000))
_http_pid=
http_stop() { [ -z "$_http_pid" ] || kill "$_http_pid" 2>/dev/null; wait "$_http_pid" 2>/dev/null; _http_pid=; }
trap 'http_stop; cleanup_all' EXIT

rm -rf "$WWW"
mkdir -p "$WWW"
cp "$KC_IMAGE" "$WWW/good.qcow2"
qemu-img create -q -f qcow2 -b "$WWW/good.qcow2" -F qcow2 "$WWW/backed.qcow2"
cp "$KC_IMAGE" "$WWW/lying.raw"	# a qcow2 declared raw
echo "not an iso" >"$WWW/bad.iso"
GOOD_SHA=$(sha256sum "$WWW/good.qcow2" | cut -c1-64)
ZERO_SHA=$(printf '0%.0s' $(seq 1 64))
(cd "$WWW" && exec python3 -m http.server "$HPORT" --bind 127.0.0.1 >/dev/null 2>&1) &
_http_pid=$!
URL=http://127.0.0.1:$HPORT
for i in $(seq 1 50); do curl -fs -o /dev/null "$URL/good.qcow2" && break; sleep 0.1; done

# Images of earlier runs: the store is this script's data folder.
rm -f "$STORE"/kce2e-* "$STORE"/.kce2e-*
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
check "kctest, a file already in the store, was adopted (ready, owner admin)" bash -c \
	"kc --json image show kctest | json_get 'd[\"state\"]+\" \"+d[\"owner\"]' | grep -qx 'ready admin'"

check "register by URL with the right sha256" \
	kc image register kce2e-url "$URL/good.qcow2" --format qcow2 --os-type linux --sha256 "$GOOD_SHA"
check "it is ready with that sha256 and its virtual size" bash -c \
	"kc --json image show kce2e-url | json_get 'd[\"state\"]+\" \"+d[\"sha256\"]+\" \"+str(d[\"virtual_size_bytes\"]>0)' | grep -qx 'ready $GOOD_SHA True'"
check "its file is in the store" cmp "$WWW/good.qcow2" "$STORE/kce2e-url.qcow2"
check_err "register by URL with a wrong sha256 fails" "does not match" \
	kc image register kce2e-badsum "$URL/good.qcow2" --format qcow2 --sha256 "$ZERO_SHA"
check "its record says why (state error), no file is left" bash -c \
	"kc --json image show kce2e-badsum | json_get 'd[\"state\"]' | grep -qx error && ! ls -a $STORE | grep -q kce2e-badsum"
check_err "a URL that answers 404 fails" "HTTP 404" \
	kc image register kce2e-404 "$URL/nothing.qcow2" --format qcow2 --sha256 "$ZERO_SHA"
check_err "a file:// URL is refused" "http:// or https://" \
	kc image register kce2e-file "file:///etc/passwd" --format raw --sha256 "$ZERO_SHA"
check_err "a backing-file qcow2 by URL is refused" "backing file" \
	kc image register kce2e-burl "$URL/backed.qcow2" --format qcow2 \
	--sha256 "$(sha256sum "$WWW/backed.qcow2" | cut -c1-64)"

check "upload a qcow2 (chunks, progress, commit)" kc image upload kce2e-up "$WWW/good.qcow2" --format qcow2
check "the upload is ready with the file's sha256" bash -c \
	"kc --json image show kce2e-up | json_get 'd[\"state\"]+\" \"+d[\"sha256\"]' | grep -qx 'ready $GOOD_SHA'"
check_err "an upload with a backing file is refused" "backing file" \
	kc image upload kce2e-backed "$WWW/backed.qcow2" --format qcow2
check_err "an upload whose header lies (qcow2 declared raw) is refused" "starts like a qcow2" \
	kc image upload kce2e-lying "$WWW/lying.raw" --format raw
check_err "an ISO without the ISO 9660 signature is refused" "not an ISO 9660" \
	kc image upload kce2e-iso "$WWW/bad.iso" --format iso
check "refused uploads leave nothing: no record, no file" bash -c \
	"! kc image show kce2e-backed >/dev/null 2>&1 && ! kc image show kce2e-lying >/dev/null 2>&1 && ! ls -a $STORE | grep -Eq 'kce2e-(backed|lying|iso)'"
check_err "a sha256 given that is not the file's is refused before sending" "not the given" \
	kc image upload kce2e-x "$WWW/good.qcow2" --format qcow2 --sha256 "$ZERO_SHA"

TOKEN=$(cat "$KC_E2E_DATA/admin.token")
api() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@"; }
check "path traversal in a name is refused (POST ../x: 400)" test "$(api -X POST -H 'Content-Type: application/json' \
	-d '{"name":"../x","kind":"template","format":"qcow2","size_bytes":1}' "$KC_URL/api/v1/images")" = 400
check "path traversal in the path is refused (..%2Fetc: 400)" test "$(api "$KC_URL/api/v1/images/..%2Fetc")" = 400
check_err "the CLI refuses such a name itself" "image name" kc image show ../etc
check "the list shows the ready images" bash -c "kc image list | grep -q '^kce2e-up '"

# A VM from a library image on the all-in-one host: the agent reads the
# store itself, nothing is copied.
VM=kce2e-img1
check "create $VM from the uploaded image" kc vm create $VM --image kce2e-up --memory 128
check "$VM boots" wait_ready $VM 180
check "nothing was copied for the all-in-one host" bash -c "! grep -q 'copied to host' $KC_E2E_DATA/server.log"
check_err "an image a VM uses cannot be deleted" "used by VMs" kc image delete kce2e-up
check "delete $VM" bash -c "kc vm destroy $VM >/dev/null; kc vm delete $VM >/dev/null"
check "then it can" kc image delete kce2e-up
check "and its file is gone" test ! -e "$STORE/kce2e-up.qcow2"
for i in kce2e-url kce2e-badsum; do kc image delete $i >/dev/null 2>&1; done
server_stop

# ---- a simulated host that does not have the image ----
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"
trap 'http_stop; cluster_cleanup' EXIT
H=kce2e-i1
cluster_init "$H:39"
cluster_server_start
cluster_join $H
check "host $H is Up" wait_host $H Up 60
check "register by URL on the cluster server" \
	kc image register kce2e-lib "$URL/good.qcow2" --format qcow2 --sha256 "$GOOD_SHA"
AIMG=$KC_E2E_DATA/agent-$H/images
check "the host does not have it yet" test ! -e "$AIMG/kce2e-lib.qcow2"
check "create a VM on $H from it" kc vm create kce2e-img2 --image kce2e-lib --memory 128 --host $H
check "the image was copied to $H, verified" bash -c "cmp $WWW/good.qcow2 $AIMG/kce2e-lib.qcow2 && test -e $AIMG/.kce2e-lib.qcow2.verified"
grep 'copied to host' "$SDATA/server.log" | sed 's/^/# /'
check "kce2e-img2 boots on $H" wait_ready kce2e-img2 180
check "a second VM from it (and a third, at once)" bash -c \
	"kc vm create kce2e-img3 --image kce2e-lib --memory 128 --host $H --no-start >/dev/null & kc vm create kce2e-img4 --image kce2e-lib --memory 128 --host $H --no-start >/dev/null; r=\$?; wait \$! && [ \$r = 0 ]"
check "the image was copied once" test "$(grep -c 'image kce2e-lib copied to host' "$SDATA/server.log")" = 1

# ---- clean-up: pool prune, image delete (docs/storage.md, "Clean-up") ----
APOOL=$KC_E2E_DATA/agent-$H/pool
LIBBASE=$(cd "$APOOL" && ls base-kce2e-lib-*.qcow2 2>/dev/null | head -1)
check "the VMs share one base of the image in $H's default pool" test -n "$LIBBASE"
# Left-overs of an image deleted while the host was away: a base nothing
# uses and a cached copy the library no longer lists.
cp "$APOOL/$LIBBASE" "$APOOL/base-kce2e-im-gone-0123456789abcdef.qcow2"
chmod 0444 "$APOOL/base-kce2e-im-gone-0123456789abcdef.qcow2"
cp "$AIMG/kce2e-lib.qcow2" "$AIMG/kce2e-im-gone.qcow2"
touch "$AIMG/.kce2e-im-gone.qcow2.cached"
# A file placed by hand (no .cached mark) and a user's volume of a base's
# name (not read-only) are never pruned.
cp "$AIMG/kce2e-lib.qcow2" "$AIMG/kce2e-im-byhand.qcow2"
cp "$APOOL/$LIBBASE" "$APOOL/base-kce2e-im-mine-0123456789abcdef.qcow2"
chmod 0600 "$APOOL/base-kce2e-im-mine-0123456789abcdef.qcow2"
out=$(kc pool prune default --dry-run 2>&1)
echo "$out" | sed 's/^/# /'
check "prune --dry-run names the unused base and cached copy" bash -c \
	"grep -q 'would remove .*base-kce2e-im-gone-0123456789abcdef.qcow2' <<<'$out' && grep -q 'would remove .*/kce2e-im-gone.qcow2' <<<'$out'"
check "and keeps the base the VMs use, naming them" bash -c \
	"grep -q 'kept .*$LIBBASE, in use by: .*kce2e-img' <<<'$out'"
check "a dry run removes nothing" test -e "$APOOL/base-kce2e-im-gone-0123456789abcdef.qcow2" -a -e "$AIMG/kce2e-im-gone.qcow2"
check "it never names hand-placed files, the library's copy or a user's volume" bash -c \
	"! grep -Eq 'kce2e-im-byhand|base-kce2e-im-mine|remove .*/kce2e-lib.qcow2|remove .*kctest' <<<'$out'"
check_err "prune on a host the pool is not on" "not on host" kc pool prune default --host kce2e-nohost
kc user create kce2e-imu --role user >/dev/null 2>&1
ut=$(kc --json token create --user kce2e-imu | json_get 'd["token"]')
st=$(curl -s --cacert "$KVMCLOUD_CA" -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ut" "$KC_URL/api/v1/pools/default/prune")
check "a user's POST /pools/default/prune is 403" test "$st" = 403
kc user delete kce2e-imu >/dev/null 2>&1
out=$(kc pool prune default --host $H 2>&1)
echo "$out" | sed 's/^/# /'
check "prune removes them and says how much it freed" bash -c \
	"grep -q 'removed .*base-kce2e-im-gone-0123456789abcdef.qcow2' <<<'$out' && grep -q '^freed [0-9.]* [KMG]iB in pool default' <<<'$out'"
check "they are gone, with the cached copy's records" bash -c \
	"! ls -a '$APOOL' '$AIMG' | grep -q kce2e-im-gone"
check "what is used or not ours stays" test -e "$APOOL/$LIBBASE" -a -e "$AIMG/kce2e-lib.qcow2" \
	-a -e "$AIMG/kce2e-im-byhand.qcow2" -a -e "$APOOL/base-kce2e-im-mine-0123456789abcdef.qcow2" -a -e "$AIMG/kctest.qcow2"
check "the VMs still start" bash -c "kc vm start kce2e-img3 >/dev/null && kc vm destroy kce2e-img3 >/dev/null"
rm -f "$AIMG/kce2e-im-byhand.qcow2" "$APOOL/base-kce2e-im-mine-0123456789abcdef.qcow2"

check "delete the VMs" bash -c "kc vm destroy kce2e-img2 >/dev/null; for v in kce2e-img2 kce2e-img3 kce2e-img4; do kc vm delete \$v >/dev/null || exit 1; done"
out=$(kc image delete kce2e-lib 2>&1)
echo "$out" | sed 's/^/# /'
check "delete the image: the host's cached copy and base are removed" bash -c \
	"grep -q 'removed .*/images/kce2e-lib.qcow2' <<<'$out' && grep -q 'removed .*$LIBBASE' <<<'$out'"
check "they are gone from $H" bash -c "! ls -a '$AIMG' '$APOOL' | grep -q kce2e-lib"
cluster_cleanup
http_stop
rm -rf "$WWW"
finish
