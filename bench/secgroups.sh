#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Security group apply time (docs/benchmarks.md): 100 rules (or $1) through
# libnftables in-process, as the agent applies them, and the same ruleset
# with `nft -f`, in one run, inside a private network namespace.
#   bench/secgroups.sh [RULES] [ROUNDS]      (needs root; BUILD=build by default)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/${BUILD:-build}/bench/kc-sg-bench" "${1:-100}" "${2:-20}"
