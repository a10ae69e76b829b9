#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Clone benchmark (see clone.sh).  Real libvirtd, QEMU under TCG.

1. Linked-clone time against template size: sparse qcow2 templates of
   1, 10 and 100 GiB (qemu-img create); per size the first clone (which
   copies the template into the pool as its base volume) and the median of
   BENCH_LINKED more (overlays only).  Must stay flat.
2. Full-clone throughput beside `qemu-img convert` of the same template in
   the same run (BENCH_FULL_GIB GiB of data written into it).
3. BENCH_PAR creates from one template at once (synchronous API requests,
   each on its own server thread): time until all are running.
"""
import concurrent.futures as cf
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD, IMAGE = sys.argv[1], sys.argv[2]
N_LINKED = int(os.environ.get("BENCH_LINKED", "5"))
FULL_GIB = int(os.environ.get("BENCH_FULL_GIB", "2"))
N_PAR = int(os.environ.get("BENCH_PAR", "50"))
PAR_MEM = int(os.environ.get("BENCH_PAR_MEMORY", "128"))
PAR_START = os.environ.get("BENCH_PAR_START", "1") == "1"
PORT = 19970 + random.randint(0, 400)
URL = f"http://127.0.0.1:{PORT}"
DATA = tempfile.mkdtemp(prefix="kc-bench-clone-", dir="/var/tmp")
os.chmod(DATA, 0o755)
POOL = "kcbenchc"
PREFIX = "kcbenchc-"
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]


def sh(*cmd, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.decode().strip()}")
    return p


def token():
    with open(f"{DATA}/admin.token") as f:
        return f.read().strip()


def api(method, path, body=None, timeout=600):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {token()}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def create(name, image, **kw):
    """A synchronous create; seconds it took."""
    body = {"name": name, "image": image, "memory_mib": kw.pop("memory", 64),
            "start": kw.pop("start", False)}
    body.update(kw)
    t0 = time.monotonic()
    st, ans = api("POST", "/api/v1/vms", body)
    dt = time.monotonic() - t0
    if st != 201:
        raise RuntimeError(f"create {name}: {st} {ans}")
    return dt


def delete(name):
    api("POST", f"/api/v1/vms/{name}/destroy")
    api("DELETE", f"/api/v1/vms/{name}")


def cleanup():
    out = sh(*VIRSH, "list", "--all", "--name", check=False).stdout.decode()
    for d in out.split():
        if d.startswith(PREFIX):
            sh(*VIRSH, "destroy", d, check=False)
            sh(*VIRSH, "undefine", d, check=False)


def linked_vs_size():
    print("## linked clone time against template size (sparse qcow2 templates, default pool)")
    print(f"{'template':>10s} {'file':>9s} {'first clone':>12s} {'next clones p50':>16s} "
          f"{'max':>8s}")
    rows = []
    for gib in (1, 10, 100):
        name = f"kcbench{gib}g"
        path = f"{DATA}/images/{name}.qcow2"
        sh("qemu-img", "create", "-q", "-f", "qcow2", path, f"{gib}G")
        first = create(f"{PREFIX}l{gib}-0", name)
        nxt = [create(f"{PREFIX}l{gib}-{i}", name) for i in range(1, N_LINKED + 1)]
        size = os.path.getsize(path)
        print(f"{gib:>7d} GiB {size / 1024:>7.0f} KiB {first * 1000:>9.0f} ms "
              f"{statistics.median(nxt) * 1000:>13.0f} ms {max(nxt) * 1000:>5.0f} ms")
        rows.append((gib, first, statistics.median(nxt)))
        for i in range(N_LINKED + 1):
            delete(f"{PREFIX}l{gib}-{i}")
    spread = max(r[2] for r in rows) / min(r[2] for r in rows)
    print(f"next-clone p50, largest / smallest over 1..100 GiB: {spread:.2f}x")


def full_vs_convert():
    print(f"## full clone against qemu-img convert ({FULL_GIB} GiB of data, same run)")
    name = "kcbenchfull"
    path = f"{DATA}/images/{name}.qcow2"
    sh("qemu-img", "create", "-q", "-f", "qcow2", path, f"{FULL_GIB + 1}G")
    # A byte pattern per GiB: data qemu-img must copy (no zero clusters).
    for g in range(FULL_GIB):
        sh("qemu-io", "-f", "qcow2", "-c", f"write -P {0x11 + g} {g}G 1G", path)
    data_mb = FULL_GIB * 1024 ** 3 / 1e6
    out = f"{DATA}/convert.qcow2"
    conv, full = [], []
    for rnd in range(2):
        # Alternated, so that neither always reads a warmer page cache.
        t0 = time.monotonic()
        sh("qemu-img", "convert", "-W", "-f", "qcow2", "-O", "qcow2", path, out)
        conv.append(time.monotonic() - t0)
        os.unlink(out)
        full.append(create(f"{PREFIX}f{rnd}", name, clone="full"))
        delete(f"{PREFIX}f{rnd}")
    c, f = min(conv), min(full)
    print(f"qemu-img convert -W            {c:6.2f} s  {data_mb / c:7.0f} MB/s (best of 2)")
    print(f"kvmcloud full clone (API)      {f:6.2f} s  {data_mb / f:7.0f} MB/s (best of 2; "
          f"the whole create: copy, seed ISO, define)")
    print(f"ratio full clone / convert: {f / c:.2f}x")
    os.unlink(path)


def parallel_creates():
    what = f"started, {PAR_MEM} MiB each" if PAR_START else "not started (--no-start)"
    print(f"## {N_PAR} linked clones of one template at once ({what}), into a fresh base")
    for f in os.listdir(f"{DATA}/pool"):
        if f.startswith("base-kctest-"):
            os.unlink(f"{DATA}/pool/{f}")
    names = [f"{PREFIX}p{i}" for i in range(N_PAR)]
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(N_PAR) as ex:
        lat = list(ex.map(lambda n: create(n, "kctest", memory=PAR_MEM, start=PAR_START), names))
    wall = time.monotonic() - t0
    st, ans = api("GET", "/api/v1/vms")
    states = [v["state"] for v in ans["vms"] if v["name"].startswith(PREFIX + "p")]
    want = "running" if PAR_START else "shutoff"
    ok = sum(1 for s in states if s == want)
    bases = [f for f in os.listdir(f"{DATA}/pool") if f.startswith("base-kctest-")]
    chk = sh("qemu-img", "check", "-q", "-f", "qcow2", "-U", f"{DATA}/pool/{bases[0]}",
             check=False).returncode if len(bases) == 1 else -1
    print(f"time until all {N_PAR} are {want}: {wall:.2f} s "
          f"(each create p50 {statistics.median(lat):.2f} s, max {max(lat):.2f} s)")
    print(f"{ok}/{N_PAR} {want}; base volumes: {len(bases)}; qemu-img check of the base: "
          f"{'clean' if chk == 0 else 'FAILED'}")
    for n in names:
        delete(n)


def main():
    os.makedirs(f"{DATA}/images")
    shutil.copy(IMAGE, f"{DATA}/images/kctest.qcow2")
    srv = subprocess.Popen([f"{BUILD}/src/server/kvmcloud-server", "--all-in-one",
                            "--data-dir", DATA, "--listen", f"127.0.0.1:{PORT}",
                            "--cpu-overcommit", "64", "-o", f"storage.pool={POOL}"],
                           stdout=open(f"{DATA}/server.log", "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            if subprocess.run(["curl", "-fs", "-o", "/dev/null",
                               f"{URL}/api/v1/openapi.json"]).returncode == 0:
                break
            time.sleep(0.1)
        cleanup()
        print(f"# kvmcloud clone benchmark: {os.cpu_count()} CPUs, TCG, data in {DATA}")
        linked_vs_size()
        full_vs_convert()
        parallel_creates()
    finally:
        cleanup()
        srv.terminate()
        srv.wait()
        sh(*VIRSH, "pool-destroy", POOL, check=False)
        sh(*VIRSH, "pool-undefine", POOL, check=False)
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
