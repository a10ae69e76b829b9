#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fleet benchmark: one kvmcloud-server (no embedded agent) on loopback with
# FLEET_N simulated agents (default 1000), each a real agent library link
# (mutual TLS, hello, heartbeats) on its own libvirt test driver holding
# FLEET_VMS domains (default 10).  Hosts enrol through the real flow
# (POST /api/v1/hosts, `kvmcloud-agent join`).  Prints the server's CPU and
# resident memory under steady heartbeats, GET /api/v1/vms through wrk
# (2 connections, requests/s, p50, p99), and the agent's resident memory.
# Figures only, no thresholds.  Everything is removed afterwards
# (FLEET_KEEP=1 keeps the data folder for a look).
#   bench/fleet.sh [BUILD_DIR]
# More knobs: FLEET_HEARTBEAT (s, default 10), FLEET_STEADY_S (30),
# FLEET_WRK_S (20).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
N=${FLEET_N:-1000}
VMS=${FLEET_VMS:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "fleet.sh: wrk is missing (apt-get install wrk)" >&2; exit 2; }
[ -x "$BUILD/bench/kc-simagent" ] || { echo "fleet.sh: $BUILD/bench/kc-simagent is missing: build first" >&2; exit 2; }
# Six threads and a few fds per simulated host, one thread and fd per host in the server.
ulimit -n 65536 2>/dev/null || true
exec python3 "$here/bench/fleet.py" "$BUILD" "$N" "$VMS"
