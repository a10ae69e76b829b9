#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Fleet benchmark (see fleet.sh): one server, N simulated agents, N*VMS VMs."""
import concurrent.futures as cf
import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD, N, VMS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
HB = int(os.environ.get("FLEET_HEARTBEAT", "10"))
STEADY_S = int(os.environ.get("FLEET_STEADY_S", "30"))
WRK_S = int(os.environ.get("FLEET_WRK_S", "20"))
PORT = 20470 + random.randint(0, 500)
APORT = PORT + 1000
URL = f"https://127.0.0.1:{PORT}"
DATA = tempfile.mkdtemp(prefix="kc-fleet-", dir="/var/tmp")
SDATA = f"{DATA}/server"
HOSTS = f"{DATA}/hosts"
AGENT = f"{BUILD}/src/agent/kvmcloud-agent"
REAL_POOL = "kcfleet"
EMPTY_CONF = f"{DATA}/empty.conf"  # not /etc/kvmcloud/agent.conf
TICK = os.sysconf("SC_CLK_TCK")
PER_PROC = 64  # src/agent/conn.c: at most 64 agents in one process
procs = []


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


def api(method, path, body=None, ctx=None, token=None):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, context=ctx, timeout=600) as r:
        return r.read()


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def proc_mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(line.split()[1])
    return out


def wait_for(pred, timeout, what):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        time.sleep(0.5)
    raise TimeoutError(what)


def join(ctx, token, fp, name, pki):
    os.makedirs(pki, exist_ok=True)
    r = json.loads(api("POST", "/api/v1/hosts", {"name": name}, ctx, token))
    p = subprocess.run([AGENT, "-c", EMPTY_CONF, "-o", f"pki.dir={pki}",
                        "-o", f"host.name={name}", "join", URL, r["join_token"],
                        "--ca-sha256", fp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError(f"join {name}: {p.stdout.decode().strip()}")


def host_states(ctx, token):
    hosts = json.loads(api("GET", "/api/v1/hosts", None, ctx, token))["hosts"]
    states = {}
    for h in hosts:
        states[h.get("state")] = states.get(h.get("state"), 0) + 1
    return states


def wrk(token, path="/api/v1/vms"):
    lua = f"{DATA}/auth.lua"
    with open(lua, "w") as f:
        f.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
    p = subprocess.run(["wrk", "-t", "2", "-c", "2", "-d", f"{WRK_S}s", "--timeout", "60s",
                        "--latency", "-s", lua, f"{URL}{path}"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    nreq = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    if not rps:
        log("wrk output:\n" + out)
    return (rps.group(1) if rps else "?", p50.group(1) if p50 else "?",
            p99.group(1) if p99 else "?", nreq.group(1) if nreq else "?",
            non2xx.group(1) if non2xx else "0", errs.group(1) if errs else "none")


def real_agent(ctx, token, fp):
    """One real `kvmcloud-agent run` on qemu:///system: its RSS once Up."""
    d = f"{DATA}/real"
    for sub in ("pool", "images", "console"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
    os.chmod(DATA, 0o755)
    os.chmod(d, 0o755)
    os.chmod(f"{d}/pool", 0o755)
    join(ctx, token, fp, "fleet-real", f"{d}/pki")
    opts = ["-c", EMPTY_CONF, "-o", f"data.dir={d}", "-o", f"pki.dir={d}/pki",
            "-o", "accel=tcg", "-o", f"storage.pool={REAL_POOL}", "-o", "host.name=fleet-real"]
    a = subprocess.Popen([AGENT, *opts, "run"], stdout=open(f"{d}/agent.log", "w"),
                         stderr=subprocess.STDOUT)
    procs.append(a)

    def up():
        hosts = json.loads(api("GET", "/api/v1/hosts", None, ctx, token))["hosts"]
        return any(h.get("name") == "fleet-real" and h.get("state") == "Up" for h in hosts)
    wait_for(up, 120, "the real agent is not Up")
    time.sleep(2 * HB + 1)  # a few heartbeats
    api("GET", "/api/v1/vms", None, ctx, token)  # and one vm.list
    return proc_mem(a.pid)


def stop(p, timeout=60):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    os.makedirs(SDATA)
    open(EMPTY_CONF, "w").close()
    os.makedirs(HOSTS)
    srv = subprocess.Popen([f"{BUILD}/src/server/kvmcloud-server", "--data-dir", SDATA,
                            "--listen", f"127.0.0.1:{PORT}", "--agent-listen",
                            f"127.0.0.1:{APORT}", "--advertise", "127.0.0.1",
                            "--heartbeat", str(HB)],
                           stdout=open(f"{DATA}/server.log", "w"), stderr=subprocess.STDOUT)
    procs.append(srv)
    ca = f"{SDATA}/pki/ca.crt"
    wait_for(lambda: os.path.exists(f"{SDATA}/admin.token") and os.path.exists(ca)
             and subprocess.run(["curl", "-fs", "--cacert", ca, "-o", "/dev/null",
                                 f"{URL}/api/v1/ca"]).returncode == 0, 60, "server start")
    ctx = ssl.create_default_context(cafile=ca)
    token = open(f"{SDATA}/admin.token").read().strip()
    fp = subprocess.run(["openssl", "x509", "-in", ca, "-noout", "-fingerprint", "-sha256"],
                        stdout=subprocess.PIPE, check=True).stdout.decode()
    fp = fp.split("=", 1)[1].strip().replace(":", "").lower()
    print(f"# kvmcloud fleet benchmark: {N} simulated agents x {VMS} VMs, heartbeat {HB} s, "
          f"{os.cpu_count()} CPUs, loopback", flush=True)

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: join(ctx, token, fp, f"fleet-{i:05d}", f"{HOSTS}/h{i:05d}/pki"),
                    range(N)))
    t_join = time.monotonic() - t0
    log(f"{N} hosts joined in {t_join:.1f} s")

    t0 = time.monotonic()
    sims, started = [], 0
    for first in range(0, N, PER_PROC):  # the agent library's limit per process
        count = min(PER_PROC, N - first)
        sim = subprocess.Popen([f"{BUILD}/bench/kc-simagent", HOSTS, str(first), str(count),
                                str(VMS)], stdout=subprocess.PIPE,
                               stderr=open(f"{DATA}/simagent-{first}.log", "w"))
        procs.append(sim)
        sims.append(sim)
        line = sim.stdout.readline().decode().split()
        started += int(line[1]) if len(line) == 2 and line[0] == "SIMAGENT-READY" else 0
    log(f"{len(sims)} simagent processes started {started} of {N} links "
        f"in {time.monotonic() - t0:.1f} s")
    if started == 0:
        raise RuntimeError("simagent started no link; see simagent-*.log")

    def all_up():
        s = host_states(ctx, token)
        return s.get("Up", 0) >= started
    wait_for(all_up, 900, f"not all hosts Up: {host_states(ctx, token)}")
    t_up = time.monotonic() - t0
    log(f"all {started} Up after {t_up:.1f} s; steady state {STEADY_S} s")
    time.sleep(max(2 * HB, 5))  # past the hello burst

    # The simulated domains become VM records through the real import
    # route, so that GET /api/v1/vms (served from the records) lists them.
    t0 = time.monotonic()
    names = [(f"fleet-{i:05d}", f"f{i:05d}-vm-{j}") for i in range(N) for j in range(VMS)]
    def imp(hv):
        try:
            api("POST", f"/api/v1/vms/{hv[1]}/import", {"host": hv[0]}, ctx, token)
            return True
        except Exception as e:  # counted, not fatal
            log(f"import {hv[1]}: {e}")
            return False
    with cf.ThreadPoolExecutor(8) as ex:
        imported = sum(ex.map(imp, names))
    t_import = time.monotonic() - t0
    log(f"{imported} of {len(names)} VMs imported in {t_import:.1f} s")

    c0, s0, w0 = proc_cpu_s(srv.pid), sum(proc_cpu_s(p.pid) for p in sims), time.monotonic()
    time.sleep(STEADY_S)
    c1, s1, w1 = proc_cpu_s(srv.pid), sum(proc_cpu_s(p.pid) for p in sims), time.monotonic()
    srv_cpu = 100 * (c1 - c0) / (w1 - w0)
    sim_cpu = 100 * (s1 - s0) / (w1 - w0)
    states = host_states(ctx, token)
    mem_idle = proc_mem(srv.pid)
    sim_mem = {"VmRSS": 0, "Threads": 0}
    for p in sims:
        m = proc_mem(p.pid)
        sim_mem["VmRSS"] += m.get("VmRSS", 0)
        sim_mem["Threads"] += m.get("Threads", 0)

    t = time.monotonic()
    body = api("GET", "/api/v1/vms", None, ctx, token)
    t_one = time.monotonic() - t
    vms = json.loads(body)["vms"]
    rps, p50, p99, nreq, non2xx, errs = wrk(token)
    mem_wrk = proc_mem(srv.pid)
    # The older view that asks every host, for comparison.
    t = time.monotonic()
    body_live = api("GET", "/api/v1/vms?live=true", None, ctx, token)
    t_one_live = time.monotonic() - t
    n_live = len(json.loads(body_live)["vms"])
    lrps, lp50, lp99, lnreq, lnon2xx, lerrs = wrk(token, "/api/v1/vms?live=true")

    real = {}
    try:
        real = real_agent(ctx, token, fp)
    except Exception as e:  # reported, not fatal: the fleet figures stand
        log(f"real agent: {e}")
    facts = subprocess.run(["/usr/bin/time", "-f", "%M", AGENT, "-c", EMPTY_CONF,
                            "-o", f"data.dir={DATA}/real", "-o", f"storage.pool={REAL_POOL}",
                            "-o", "accel=tcg", "facts"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = facts.stderr.decode().strip().splitlines()[-1] if facts.stderr else "?"

    hb_rate = started / HB
    rows = [
        ("hosts Up / joined", f"{states.get('Up', 0)} / {N} ({t_join:.0f} s to join, "
                              f"{t_up:.0f} s to all Up)"),
        ("VMs imported", f"{imported} of {len(names)} in {t_import:.0f} s"),
        ("VMs in GET /api/v1/vms", f"{len(vms)} ({len(body) / 1048576:.1f} MiB JSON, "
                                   f"single request {t_one * 1000:.0f} ms)"),
        ("heartbeats in (agent->server)", f"{hb_rate:.0f}/s (+{hb_rate:.0f}/s sent back)"),
        ("server CPU, steady heartbeats", f"{srv_cpu:.1f} % of one core over {STEADY_S} s"
                                          f" ({srv_cpu * 10 / max(hb_rate, 1):.2f} ms CPU"
                                          f" per heartbeat pair)"),
        ("server RSS idle / after wrk", f"{mem_idle.get('VmRSS', 0) / 1024:.1f} / "
                                        f"{mem_wrk.get('VmRSS', 0) / 1024:.1f} MiB (peak "
                                        f"{mem_wrk.get('VmHWM', 0) / 1024:.1f} MiB, "
                                        f"{mem_idle.get('Threads', 0)} threads)"),
        ("GET /vms wrk 2 conn", f"{rps} req/s, {nreq} requests in {WRK_S} s, "
                                f"non-2xx {non2xx}, socket errors {errs}"),
        ("GET /vms latency p50 / p99", f"{p50} / {p99}"),
        ("GET /vms?live=true", f"{n_live} VMs, single request {t_one_live * 1000:.0f} ms; "
                               f"wrk {lrps} req/s ({lnreq} requests, non-2xx {lnon2xx}), "
                               f"p50 / p99 {lp50} / {lp99}"),
        (f"{len(sims)} simagents CPU / RSS", f"{sim_cpu:.1f} % / {sim_mem['VmRSS'] / 1024:.1f} "
                                           f"MiB ({sim_mem['VmRSS'] / max(started, 1):.0f} KiB"
                                           f" per host, {sim_mem['Threads']} threads)"),
        ("real agent run RSS (qemu:///system)",
         f"{real.get('VmRSS', 0) / 1024:.1f} MiB (peak {real.get('VmHWM', 0) / 1024:.1f} MiB,"
         f" {real.get('Threads', 0)} threads)" if real else "unavailable (see log)"),
        ("kvmcloud-agent facts peak RSS", f"{int(peak) / 1024:.1f} MiB" if peak.isdigit()
         else f"unavailable ({peak})"),
    ]
    for k, v in rows:
        print(f"{k:38s} {v}")


def cleanup():
    for p in reversed(procs):
        stop(p)
    virsh = ["virsh", "-q", "-c", "qemu:///system"]
    subprocess.run([*virsh, "pool-destroy", REAL_POOL], capture_output=True)
    subprocess.run([*virsh, "pool-undefine", REAL_POOL], capture_output=True)
    if os.environ.get("FLEET_KEEP"):
        log(f"kept {DATA}")
    else:
        shutil.rmtree(DATA, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
