#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image URLs over https and redirects (docs/storage.md, "Image library"):
# a local HTTPS server (python3 http.server wrapped in ssl) with a
# certificate from a throwaway CA made here with openssl.  Without
# --image-ca the download fails as untrusted; with --image-ca CA it works;
# a certificate of another CA still fails.  Redirects: http to another
# host (name) followed and checked by sha256; more than 5 refused; https
# to http (a downgrade) refused.  A bad --image-ca file fails the start.
. "$(dirname "$0")/lib.sh"

T=$KC_E2E_DATA/kce2e-im-https
WWW=$T/www
STORE=$KC_E2E_DATA/images
SPORT=$((KC_PORT + 2100)) # https, our CA
OPORT=$((KC_PORT + 2101)) # https, another CA
HPORT=$((KC_PORT + 2102)) # http, redirects
_pids=()
srv_stop() {
	local p
	for p in "${_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	_pids=()
}
trap 'srv_stop; cleanup_all' EXIT

rm -rf "$T"
mkdir -p "$WWW"
cp "$KC_IMAGE" "$WWW/good.qcow2"
GOOD_SHA=$(sha256sum "$WWW/good.qcow2" | cut -c1-64)

# The throwaway CA, a server certificate it signs (127.0.0.1, localhost),
# and a self-made CA of nobody's for the "other" server.
mkcert() { # DIR: ca.crt, srv.crt, srv.key
	local d=$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kce2e-im test CA $(basename "$d")" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null &&
		openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
			-keyout "$d/srv.key" -out "$d/srv.csr" 2>/dev/null &&
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext" &&
		openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
			-CAcreateserial -days 2 -extfile "$d/ext" -out "$d/srv.crt" 2>/dev/null
}
check "make a throwaway CA and a server certificate (openssl)" mkcert "$T/ours"
check "and another CA's" mkcert "$T/other"

cat >"$T/srv.py" <<'EOF'
# python3 srv.py PORT ROOT [CERT KEY]: serves ROOT, over TLS when given a
# certificate; /r/N redirects N more times, then to good.qcow2;
# /to?u=URL redirects to URL.
import http.server, os, ssl, sys, urllib.parse
port, root = int(sys.argv[1]), sys.argv[2]
os.chdir(root)
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
    def go(self, where):
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path.startswith("/r/"):
            n = int(u.path[3:])
            return self.go("/good.qcow2" if n <= 0 else "/r/%d" % (n - 1))
        if u.path == "/to":
            return self.go(urllib.parse.parse_qs(u.query)["u"][0])
        return super().do_GET()
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
if len(sys.argv) > 3:
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(sys.argv[3], sys.argv[4])
    s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
EOF
python3 "$T/srv.py" $SPORT "$WWW" "$T/ours/srv.crt" "$T/ours/srv.key" & _pids+=($!)
python3 "$T/srv.py" $OPORT "$WWW" "$T/other/srv.crt" "$T/other/srv.key" & _pids+=($!)
python3 "$T/srv.py" $HPORT "$WWW" & _pids+=($!)
S=https://127.0.0.1:$SPORT
O=https://127.0.0.1:$OPORT
HU=http://127.0.0.1:$HPORT
for i in $(seq 1 50); do
	curl -fs --cacert "$T/ours/ca.crt" -o /dev/null "$S/good.qcow2" &&
		curl -fs -o /dev/null "$HU/good.qcow2" && break
	sleep 0.1
done
check "the test servers answer (https with our CA, http)" bash -c \
	"curl -fs --cacert '$T/ours/ca.crt' -o /dev/null '$S/good.qcow2' && curl -fs -o /dev/null '$HU/good.qcow2'"

rm -f "$STORE"/kce2e-im-* "$STORE"/.kce2e-im-*
reg() { kc image register "$1" "$2" --format qcow2 --sha256 "$GOOD_SHA"; }
gone() { kc image delete "$1" >/dev/null 2>&1; }

# ---- without --image-ca: the CA is nobody's the system trusts ----
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts (no --image-ca)"
check_err "an https URL whose certificate the server does not trust fails" \
	"certificate is not trusted.*--image-ca" reg kce2e-im-untrusted "$S/good.qcow2"
check "its record says so (state error), no file is left" bash -c \
	"kc --json image show kce2e-im-untrusted | json_get 'd[\"state\"]+\" \"+d[\"error\"]' | grep -q '^error .*not trusted' && ! ls -a $STORE | grep -q kce2e-im-untrusted"
gone kce2e-im-untrusted

# Redirects over http.
check "http redirect to another host name (localhost) is followed, sha256 checked" \
	reg kce2e-im-redir "$HU/to?u=http://localhost:$HPORT/good.qcow2"
check "the image is the one asked for" cmp "$WWW/good.qcow2" "$STORE/kce2e-im-redir.qcow2"
check "5 redirects are followed" reg kce2e-im-r5 "$HU/r/4"
check_err "6 redirects are refused" "more than 5 redirects" reg kce2e-im-r6 "$HU/r/5"
check_err "a redirect to file:// is refused" "download failed" \
	reg kce2e-im-rfile "$HU/to?u=file:///etc/passwd"
for i in kce2e-im-redir kce2e-im-r5 kce2e-im-r6 kce2e-im-rfile; do gone $i; done
server_stop

check_err "a --image-ca file without a certificate fails the start" "no PEM certificate" \
	"$KC_SERVER_BIN" --all-in-one --data-dir "$KC_E2E_DATA" --listen "127.0.0.1:$KC_PORT" \
	--image-ca "$T/ours/srv.csr"
check_err "a missing --image-ca file fails the start" "image-ca" \
	"$KC_SERVER_BIN" --all-in-one --data-dir "$KC_E2E_DATA" --listen "127.0.0.1:$KC_PORT" \
	--image-ca "$T/nothing.pem"

# ---- with --image-ca: our CA is trusted, the other still not ----
server_start --image-ca "$T/ours/ca.crt" || { not_ok "server starts with --image-ca"; finish; exit 1; }
ok "server starts with --image-ca"
check "an https URL signed by the configured CA works" reg kce2e-im-https "$S/good.qcow2"
check "it is ready with the file's sha256" bash -c \
	"kc --json image show kce2e-im-https | json_get 'd[\"state\"]+\" \"+d[\"sha256\"]' | grep -qx 'ready $GOOD_SHA'"
check "its file is in the store" cmp "$WWW/good.qcow2" "$STORE/kce2e-im-https.qcow2"
check_err "a certificate from another CA still fails" "not trusted" \
	reg kce2e-im-other "$O/good.qcow2"
check "https redirect to https (another host name) is followed" \
	reg kce2e-im-hh "$S/to?u=https://localhost:$SPORT/good.qcow2"
check_err "https redirect to http (a downgrade) is refused" "https to another scheme" \
	reg kce2e-im-down "$S/to?u=$HU/good.qcow2"
check "no file of the refused ones is left" bash -c "! ls -a $STORE | grep -Eq 'kce2e-im-(other|down)'"
for i in kce2e-im-https kce2e-im-other kce2e-im-hh kce2e-im-down; do gone $i; done
check "deleted images leave no file" bash -c "! ls -a $STORE | grep -q kce2e-im-"
server_stop
srv_stop
rm -rf "$T"
finish
