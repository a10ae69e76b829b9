#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs every test of kvmcloud and prints one final line: N passed, N failed.

Every test program (C unit tests, agent/server/CLI tests, end-to-end shell
scripts) speaks TAP on stdout: `ok N - what` / `not ok N - what`.  This
harness counts those lines.  A program that exits non-zero without a failing
line, that prints fewer results than its plan, or that runs past its time
limit counts as one more failure, so a crash can never pass silently.
"""
import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time

OK = re.compile(r"^ok\b")
NOT_OK = re.compile(r"^not ok\b")
PLAN = re.compile(r"^1\.\.(\d+)")


def run_tap(label, cmd, env=None, cwd=None, timeout=600):
    """Runs one TAP program; returns (passed, failed, failure descriptions)."""
    t0 = time.monotonic()
    print(f"# --- {label}", flush=True)
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out, rc, timed_out = p.stdout.decode(errors="replace"), p.returncode, False
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        rc, timed_out = -1, True
    passed = failed = 0
    plan = None
    fails = []
    for line in out.splitlines():
        if OK.match(line):
            passed += 1
        elif NOT_OK.match(line):
            failed += 1
            fails.append(f"{label}: {line}")
        elif PLAN.match(line) and plan is None:
            plan = int(PLAN.match(line).group(1))
    sys.stdout.write(out if out.endswith("\n") or not out else out + "\n")
    if timed_out:
        failed += 1
        fails.append(f"{label}: timed out after {timeout} s")
    elif rc != 0 and failed == 0:
        failed += 1
        fails.append(f"{label}: exited with status {rc} without a failing result")
    elif plan is not None and passed + failed < plan:
        failed += 1
        fails.append(f"{label}: planned {plan} results, saw {passed + failed}")
    print(f"# {label}: {passed} passed, {failed} failed, "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    return passed, failed, fails


def meson_tests(build_dir):
    out = subprocess.run(["meson", "introspect", "--tests", build_dir],
                         check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def reset_e2e_data(data):
    """A clean data folder and storage pool for the end-to-end tests.

    Only the KVM probe's cached verdict (accel.json) survives from an earlier
    run: it is keyed by kernel, QEMU and libvirt versions and would only cost
    the probe's time again."""
    virsh = ["virsh", "-q", "-c", "qemu:///system"]
    for cmd in (["pool-destroy", "kce2e"], ["pool-undefine", "kce2e"]):
        subprocess.run(virsh + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs(data, exist_ok=True)
    for name in os.listdir(data):
        if name == "accel.json":
            continue
        path = os.path.join(data, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    os.chmod(data, 0o755)
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--build-asan", default="build-asan")
    ap.add_argument("--image", required=True)
    ap.add_argument("--only", default="", help="regex: run only matching tests")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    only = re.compile(args.only) if args.only else None

    total_pass = total_fail = 0
    all_fails = []

    def account(res):
        nonlocal total_pass, total_fail
        total_pass += res[0]
        total_fail += res[1]
        all_fails.extend(res[2])

    # 1. Every meson test, built with AddressSanitizer + UBSan.
    asan_env = dict(os.environ)
    asan_env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:halt_on_error=1"
    asan_env["LSAN_OPTIONS"] = f"suppressions={root}/tests/lsan.supp:print_suppressions=0"
    asan_env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    for t in meson_tests(args.build_asan):
        label = f"asan/{t['name']}"
        if only and not only.search(label):
            continue
        env = dict(asan_env)
        env.update(t.get("env") or {})
        env["KC_TEST_IMAGE"] = args.image
        # As `meson test` does: relative paths in a test's command are
        # relative to the build directory.
        account(run_tap(label, t["cmd"], env=env,
                        cwd=t.get("workdir") or os.path.abspath(args.build_asan),
                        timeout=t.get("timeout") or 300))

    # 2. End-to-end scripts against real libvirtd + QEMU (TCG): once with the
    # plain build (what `make run` ships), once with the sanitizer build,
    # whose reports go to files that count as a failure if any appear.
    e2e_dir = os.path.join(root, "tests", "e2e")
    # One e2e run at a time on a machine: they share libvirtd, the kce2e
    # pool and domain names, and the data folder.  A second run waits.
    lock = open("/var/tmp/kvmcloud-e2e.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    scripts = [n for n in sorted(os.listdir(e2e_dir)) if re.match(r"^\d+-.*\.sh$", n)]
    for kind, build in (("e2e", args.build), ("e2e-asan", args.build_asan)):
        labels = [f"{kind}/{n}" for n in scripts]
        if only and not any(only.search(l) for l in labels):
            continue
        data = reset_e2e_data("/var/tmp/kvmcloud-e2e")
        env = dict(os.environ)
        env.update({"KC_BUILD": os.path.abspath(build), "KC_IMAGE": args.image,
                    "KC_E2E_DATA": data, "KC_ROOT": root})
        reports = os.path.join(data, "sanitizer")
        if kind == "e2e-asan":
            env["ASAN_OPTIONS"] = f"detect_leaks=1:halt_on_error=1:log_path={reports}"
            env["UBSAN_OPTIONS"] = f"print_stacktrace=1:halt_on_error=1:log_path={reports}"
            env["LSAN_OPTIONS"] = f"suppressions={root}/tests/lsan.supp:print_suppressions=0"
        for name, label in zip(scripts, labels):
            if only and not only.search(label):
                continue
            account(run_tap(label, ["bash", os.path.join(e2e_dir, name)], env=env,
                            cwd=root, timeout=900))
        if kind == "e2e-asan":
            found = [f for f in os.listdir(data) if f.startswith("sanitizer.")]
            for f in found:
                with open(os.path.join(data, f), errors="replace") as fh:
                    print("".join("# " + l for l in fh.readlines()[:40]))
            account((0, 1, [f"{kind}: sanitizer reports in {data}: {found}"]) if found
                    else (1, 0, []))
            print(f"{'not ok' if found else 'ok'} - {kind}: no sanitizer reports from "
                  "server, agent or CLI processes")

    if all_fails:
        print("# failures:")
        for f in all_fails:
            print(f"#   {f}")
    print(f"{total_pass} passed, {total_fail} failed", flush=True)
    return 1 if total_fail or total_pass == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
