#!/usr/bin/env python3
"""Runs one example against a snapshot written by example_write_snapshot and checks its output.

Usage: check_examples.py coroutine|thread_pool|http BIN_DIR

Each check writes snapshot v1 (keys 0..999 -> "v1:value-<k>", 8 shards) into a fresh temporary
directory, runs the example on it, and (coroutine, http) publishes v2 ("v2:value-<k>") while the
example runs, then checks that the example's refresh picked it up. Everything is bounded in time;
servers listen on 127.0.0.1 only.
"""
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

RECORDS = 1000
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, flush=True)


def write_snapshot(bin_dir, prefix, tag):
    p = subprocess.run([os.path.join(bin_dir, "example_write_snapshot"), prefix, "--records",
                        str(RECORDS), "--num-dbs", "8", "--tag", tag],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        sys.exit(f"example_write_snapshot failed ({p.returncode}): {p.stderr}")
    m = re.match(r"published (\w+): (\d+) records in (\d+) shards, manifest (\S+)", p.stdout)
    if not m or int(m.group(2)) != RECORDS:
        sys.exit(f"unexpected writer output: {p.stdout!r}")
    return m.group(1), m.group(4)


class Lines:
    """Reads a process's stdout on a thread so that reads can time out."""

    def __init__(self, proc):
        self.q = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, f):
        for line in f:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def next(self, timeout):
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is not None:
            self.seen.append(line)
        return line

    def until(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.next(max(0.01, deadline - time.monotonic()))
            if line is None:
                return None
            m = re.fullmatch(pattern, line)
            if m:
                return m
        return None


def coroutine(bin_dir, tmp):
    prefix = "file://" + os.path.join(tmp, "snap")
    run_v1, ref_v1 = write_snapshot(bin_dir, prefix, "v1")
    keys = [0, 42, 999, 1000, 123456]
    proc = subprocess.Popen([os.path.join(bin_dir, "example_coroutine_reader"), prefix,
                             "--local-root", os.path.join(tmp, "cache"), "--refresh-interval-ms",
                             "100", "--refreshes", "300", "--wait-for-change",
                             *map(str, keys)], stdout=subprocess.PIPE, text=True)
    out = Lines(proc)
    try:
        m = out.until(r"opened (\S+) run_id=(\w+) num_dbs=(\d+)", 30)
        check(m is not None and m.group(1) == ref_v1 and m.group(2) == run_v1
              and m.group(3) == "8", f"opened line: {out.seen}")
        for k in keys:
            line = out.next(30)
            want = f"get {k} = v1:value-{k}" if k < RECORDS else f"get {k} absent"
            check(line == want, f"v1 lookup: {line!r} != {want!r}")
        line = out.next(30)
        check(line == "multi_get 5 keys: 3 found", f"multi_get line: {line!r}")
        run_v2, ref_v2 = write_snapshot(bin_dir, prefix, "v2")
        m = out.until(r"refresh \d+: now (\S+)", 30)
        check(m is not None and m.group(1) == ref_v2, f"refresh to v2: {out.seen[-3:]}")
        for k in keys:
            line = out.next(30)
            want = f"get {k} = v2:value-{k}" if k < RECORDS else f"get {k} absent"
            check(line == want, f"v2 lookup: {line!r} != {want!r}")
        rc = proc.wait(timeout=30)
        check(rc == 0, f"exit status {rc}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def thread_pool(bin_dir, tmp):
    prefix = "file://" + os.path.join(tmp, "snap")
    write_snapshot(bin_dir, prefix, "v1")
    threads, lookups, key_space = 8, 5000, 2000
    p = subprocess.run([os.path.join(bin_dir, "example_thread_pool_reader"), prefix,
                        "--local-root", os.path.join(tmp, "cache"), "--threads", str(threads),
                        "--lookups", str(lookups), "--key-space", str(key_space)],
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"exit status {p.returncode}: {p.stderr}")
    lines = p.stdout.splitlines()
    check(bool(lines) and re.fullmatch(r"opened \S+ num_dbs=8", lines[0]), f"opened: {lines[:1]}")
    total_found = total_bytes = 0
    for t in range(threads):
        ks = [(t * lookups + i) % key_space for i in range(lookups)]
        found = [k for k in ks if k < RECORDS]
        nbytes = sum(len(f"v1:value-{k}") for k in found)
        want = f"thread {t}: {len(found)} found, {lookups - len(found)} absent, {nbytes} value bytes"
        check(want in lines, f"missing {want!r}")
        total_found += len(found)
        total_bytes += nbytes
    n = threads * lookups
    want = (f"total: {n} lookups, {total_found} found, {n - total_found} absent, {total_bytes} "
            f"value bytes, 0 errors")
    check(want in lines, f"missing {want!r} in {lines[-3:]}")


def http_server(bin_dir, tmp):
    prefix = "file://" + os.path.join(tmp, "snap")
    run_v1, _ = write_snapshot(bin_dir, prefix, "v1")
    proc = subprocess.Popen([os.path.join(bin_dir, "example_http_server"), prefix, "--local-root",
                             os.path.join(tmp, "cache"), "--address", "127.0.0.1", "--port", "0",
                             "--threads", "2", "--refresh-interval-ms", "100"],
                            stdout=subprocess.PIPE, text=True)
    out = Lines(proc)
    try:
        m = out.until(r"listening on http://127\.0\.0\.1:(\d+)", 30)
        if not m:
            check(False, f"server did not start: {out.seen}")
            return
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)

        def get(path):
            conn.request("GET", path)  # one keep-alive connection for every request
            r = conn.getresponse()
            return r.status, json.loads(r.read())

        status, body = get("/get?key=42")
        check(status == 200 and body.get("value") == "v1:value-42" and body.get("found") is True
              and body.get("shard_id") == 0  # spec 3.2: int 42, 8 shards -> shard 0
              and body.get("value_hex") == "v1:value-42".encode().hex(), f"/get 42: {status} {body}")
        status, body = get("/get?key=5000")
        check(status == 404 and body.get("found") is False and "value" not in body,
              f"/get 5000: {status} {body}")
        status, body = get("/get?key=abc")
        check(status == 400 and "error" in body, f"/get abc: {status} {body}")
        status, body = get("/get")
        check(status == 400, f"/get without key: {status} {body}")
        status, body = get("/multi_get?keys=7,5000,0,7")
        res = body.get("results", [])
        check(status == 200 and [r["key"] for r in res] == ["7", "5000", "0", "7"]
              and [r.get("value") for r in res] == ["v1:value-7", None, "v1:value-0", "v1:value-7"]
              and [r["found"] for r in res] == [True, False, True, True]
              and res[2]["shard_id"] == 1,  # spec 3.2: int 0, 8 shards -> shard 1
              f"/multi_get: {status} {body}")
        status, body = get("/info")
        check(status == 200 and body.get("run_id") == run_v1 and body.get("num_dbs") == 8,
              f"/info: {status} {body}")
        status, body = get("/nope")
        check(status == 404, f"/nope: {status}")

        # Publish v2; the server's refresh timer must swap it in.
        run_v2, ref_v2 = write_snapshot(bin_dir, prefix, "v2")
        deadline = time.monotonic() + 30
        value = None
        while time.monotonic() < deadline:
            status, body = get("/get?key=42")
            value = body.get("value")
            if value != "v1:value-42":
                break
            time.sleep(0.05)
        check(value == "v2:value-42", f"after publishing v2, /get 42 -> {value!r}")
        status, body = get("/info")
        check(body.get("run_id") == run_v2 and body.get("manifest_ref") == ref_v2,
              f"/info after refresh: {body}")
        check(out.until(r"refreshed: now serving " + re.escape(ref_v2), 10) is not None,
              f"no refresh line: {out.seen}")
        conn.close()

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        check(rc == 0, f"exit status {rc}")
        check(out.until(r"shutting down", 5) is not None, f"no shutdown line: {out.seen}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    which, bin_dir = sys.argv[1], sys.argv[2]
    checks = {"coroutine": coroutine, "thread_pool": thread_pool, "http": http_server}
    with tempfile.TemporaryDirectory(prefix="shardy-example-") as tmp:
        checks[which](bin_dir, tmp)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
