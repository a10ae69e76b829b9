# SPDX-License-Identifier: Apache-2.0
# pidfile.sh - sourced by the start-*.sh scripts of test daemons that
# record their pid in $PIDFILE.

# Answers whether the recorded daemon is alive.
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# Stops the recorded daemon: TERM, up to 10 s, then KILL.
stop() {
	if running; then
		local pid
		pid=$(cat "$PIDFILE")
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
}
