#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: VM creates through kvmcloud's API vs raw virsh, in one run.
#   bench/vm_create.sh [BUILD_DIR] [IMAGE]      (N from BENCH_N, default 5)
# Prints p50/p95 time to `running` and to the guest's ready line for
# N sequential and N parallel creates, the same for `virsh define` +
# `virsh start` of the same XML, their ratio, and resident memory.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
IMAGE=${2:-/var/cache/kvmcloud/test-image/kctest.qcow2}
N=${BENCH_N:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$here/bench/vm_create.py" "$BUILD" "$IMAGE" "$N"
