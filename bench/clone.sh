#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: linked and full clones (docs/storage.md, "Clones").
#   bench/clone.sh [BUILD_DIR] [IMAGE]
# Prints linked-clone times against template size (1, 10, 100 GiB sparse),
# full-clone MB/s beside qemu-img convert of the same template, and the
# time until BENCH_PAR (default 50) parallel creates from one template are
# running (BENCH_PAR_START=0: created without starting; BENCH_PAR_MEMORY
# MiB each, default 128).  Results: docs/benchmarks.md.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
IMAGE=${2:-/var/cache/kvmcloud/test-image/kctest.qcow2}
here=$(cd "$(dirname "$0")/.." && pwd)
exec python3 "$here/bench/clone.py" "$BUILD" "$IMAGE"
