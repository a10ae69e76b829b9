#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""VM create benchmark (see vm_create.sh).  Real libvirtd, QEMU under TCG."""
import concurrent.futures as cf
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

BUILD, IMAGE, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
PORT = 19470 + random.randint(0, 500)
URL = f"http://127.0.0.1:{PORT}"
DATA = tempfile.mkdtemp(prefix="kc-bench-", dir="/var/tmp")
os.chmod(DATA, 0o755)
POOL = "kcbench"
PREFIX = "kcbench-"
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]
READY = b"KVMCLOUD-READY"


def sh(*cmd, check=True, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {p.stderr.decode().strip()}")
    return p


def kc(*args):
    return sh(f"{BUILD}/src/cli/kvmcloud", "--server", URL, "--token-file",
              f"{DATA}/admin.token", *args)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def wait_file_has(path, needle, timeout=300):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{needle!r} not in {path}")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                yield line.split()[0].rstrip(":"), int(line.split()[1])


def api_create(name):
    t0 = time.monotonic()
    kc("vm", "create", name, "--image", "kctest", "--memory", "128")
    t_run = time.monotonic()
    wait_file_has(f"{DATA}/console/{name}.log", READY)
    return t_run - t0, time.monotonic() - t0


def virsh_xml_template(src_vm):
    """The XML kvmcloud made, minus its seed CD-ROM, as a raw-virsh baseline."""
    xml = sh(*VIRSH, "dumpxml", "--inactive", src_vm).stdout.decode()
    root = ET.fromstring(xml)
    devs = root.find("devices")
    for d in list(devs.findall("disk")):
        src = d.find("source")
        seed = src is not None and (src.get("file") or "").endswith("-seed.iso")
        if d.get("device") == "cdrom" or seed:
            devs.remove(d)
    for tag in ("uuid",):
        e = root.find(tag)
        if e is not None:
            root.remove(e)
    for iface in devs.findall("interface"):
        mac = iface.find("mac")
        if mac is not None:
            iface.remove(mac)
    return root


def virsh_create(root_tmpl, name, workdir):
    root = ET.fromstring(ET.tostring(root_tmpl))
    root.find("name").text = name
    disk = os.path.join(workdir, f"{name}.qcow2")
    log = os.path.join(workdir, f"{name}.log")
    for d in root.find("devices").findall("disk"):
        if d.get("device") == "disk":
            d.find("source").set("file", disk)
            bs = d.find("backingStore")
            if bs is not None:
                d.remove(bs)
    for s in root.find("devices").findall("serial"):
        lg = s.find("log")
        if lg is not None:
            lg.set("file", log)
    xmlpath = os.path.join(workdir, f"{name}.xml")
    with open(xmlpath, "wb") as f:
        f.write(ET.tostring(root))
    t0 = time.monotonic()
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
       f"{DATA}/images/kctest.qcow2", disk)
    sh(*VIRSH, "define", xmlpath)
    sh(*VIRSH, "start", name)
    t_run = time.monotonic()
    wait_file_has(log, READY)
    return t_run - t0, time.monotonic() - t0


def cleanup():
    out = sh(*VIRSH, "list", "--all", "--name", check=False).stdout.decode()
    for d in out.split():
        if d.startswith(PREFIX):
            sh(*VIRSH, "destroy", d, check=False)
            sh(*VIRSH, "undefine", d, check=False)


def report(label, rows):
    run = [r[0] for r in rows]
    ready = [r[1] for r in rows]
    print(f"{label:34s} running p50 {pct(run,50)*1000:7.0f} ms  p95 {pct(run,95)*1000:7.0f} ms"
          f" | ready p50 {pct(ready,50)*1000:7.0f} ms  p95 {pct(ready,95)*1000:7.0f} ms")
    return pct(run, 50), pct(ready, 50)


def main():
    os.makedirs(f"{DATA}/images")
    shutil.copy(IMAGE, f"{DATA}/images/kctest.qcow2")
    srv = subprocess.Popen([f"{BUILD}/src/server/kvmcloud-server", "--all-in-one",
                            "--data-dir", DATA, "--listen", f"127.0.0.1:{PORT}",
                            "-o", f"storage.pool={POOL}"],
                           stdout=open(f"{DATA}/server.log", "w"), stderr=subprocess.STDOUT)
    work = tempfile.mkdtemp(prefix="virsh-", dir=DATA)
    os.chmod(work, 0o755)
    try:
        for _ in range(600):
            if subprocess.run(["curl", "-fs", "-o", "/dev/null", f"{URL}/api/v1/openapi.json"]).returncode == 0:
                break
            time.sleep(0.1)
        cleanup()
        print(f"# kvmcloud VM create benchmark: N={N}, test image under TCG, "
              f"{os.cpu_count()} CPUs")
        seq_api = [api_create(f"{PREFIX}s{i}") for i in range(N)]
        tmpl = virsh_xml_template(f"{PREFIX}s0")
        seq_virsh = [virsh_create(tmpl, f"{PREFIX}v{i}", work) for i in range(N)]
        cleanup()
        with cf.ThreadPoolExecutor(N) as ex:
            t0 = time.monotonic()
            par_api = list(ex.map(api_create, [f"{PREFIX}p{i}" for i in range(N)]))
            wall_api = time.monotonic() - t0
        cleanup()
        with cf.ThreadPoolExecutor(N) as ex:
            t0 = time.monotonic()
            par_virsh = list(ex.map(lambda i: virsh_create(tmpl, f"{PREFIX}w{i}", work), range(N)))
            wall_virsh = time.monotonic() - t0
        cleanup()
        a = report("sequential  kvmcloud API", seq_api)
        b = report("sequential  virsh define+start", seq_virsh)
        print(f"{'sequential  ratio kvmcloud/virsh':34s} running {a[0]/b[0]:5.2f}x            "
              f"| ready {a[1]/b[1]:5.2f}x")
        c = report(f"parallel {N} kvmcloud API", par_api)
        d = report(f"parallel {N} virsh define+start", par_virsh)
        print(f"{'parallel    ratio kvmcloud/virsh':34s} running {c[0]/d[0]:5.2f}x            "
              f"| ready {c[1]/d[1]:5.2f}x")
        print(f"parallel wall time to all ready: kvmcloud {wall_api:.2f} s, virsh {wall_virsh:.2f} s")
        mem = dict(rss_kib(srv.pid))
        print(f"server (all-in-one, with embedded agent) RSS {mem.get('VmRSS',0)/1024:.1f} MiB, "
              f"peak {mem.get('VmHWM',0)/1024:.1f} MiB")
        t = subprocess.run(["/usr/bin/time", "-f", "%M", f"{BUILD}/src/agent/kvmcloud-agent",
                            "facts", "-o", f"data.dir={DATA}", "-o", f"storage.pool={POOL}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = t.stderr.decode().strip().splitlines()[-1] if t.stderr else "?"
        print(f"kvmcloud-agent facts: peak RSS {int(peak)/1024:.1f} MiB" if peak.isdigit()
              else f"kvmcloud-agent peak RSS: unavailable ({peak})")
        print("note: the kvmcloud path also builds and attaches a NoCloud seed ISO; "
              "the virsh baseline boots the same XML without it.")
    finally:
        cleanup()
        srv.terminate()
        srv.wait()
        sh(*VIRSH, "pool-destroy", POOL, check=False)
        sh(*VIRSH, "pool-undefine", POOL, check=False)
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    main()
