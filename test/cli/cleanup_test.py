#!/usr/bin/env python3
"""CLI test for `shardy cleanup` (interop spec 1.8 + shardy's in-flight rule) on snapshots written
by `shardy build` into a local directory: a dry run (the default) lists what it would delete and
deletes nothing; --yes deletes exactly that; a stale attempt of the current manifest, an old run
outside --keep-last and an orphan run go; the current snapshot stays readable; a run with a
recent `running` run record is spared and never deleted.
Usage: cleanup_test.py <shardy binary> <scratch dir>"""
import datetime
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, records, run_shardy  # noqa: E402

shardy, scratch = sys.argv[1], sys.argv[2]
work = os.path.join(scratch, "cli-cleanup")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
snap = os.path.join(work, "snap")
prefix = "file://" + snap


def cli(*args, expect_rc=0):
    return run_shardy([shardy, "--prefix", prefix, "--local-root", os.path.join(work, "cache"),
                       *args], expect_rc)


def put(rel, body):
    path = os.path.join(snap, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(body)
    return path


inp = os.path.join(work, "in.jsonl")
with open(inp, "w") as f:
    for i in range(60):
        f.write(json.dumps({"k": f"key{i}", "v": f"value{i}"}) + "\n")
for run in ("r1", "r2"):
    cli("build", "--input", inp, "--key-field", "k", "--value-field", "v", "--key-type", "str",
        "--key-encoding", "utf8", "--num-dbs", "4", "--run-id", run, "--quiet")

# A losing attempt of the current run (r2), an orphan run, and a run in flight.
r2_db = sorted(os.listdir(os.path.join(snap, "shards", "run_id=r2")))[0]
stale = put(f"shards/run_id=r2/{r2_db}/attempt=01/shard.db", "loser")
orphan = put("shards/run_id=orphan/db=00001/attempt=00/shard.db", "orphan")
live = put("shards/run_id=live/db=00002/attempt=00/shard.db", "writing")
now = datetime.datetime.now(datetime.timezone.utc)
ts = lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
put(f"runs/{ts(now)}_run_id=live_{'ab' * 16}/run.yaml",
    "db_path_template: db={db_id:05d}\nerror_message: null\nerror_type: null\nformat_version: 1\n"
    f"lease_expires_at: '{ts(now + datetime.timedelta(minutes=10))}'\nmanifest_ref: null\n"
    f"run_id: live\ns3_prefix: {prefix}\nshard_prefix: shards\nstarted_at: '{ts(now)}'\n"
    f"status: running\nupdated_at: '{ts(now)}'\nwriter_type: python\n")
r1_files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(snap, "shards", "run_id=r1"))
            for f in fs]
check(len(r1_files) >= 2, f"r1 has shard files: {r1_files}")

want = {
    ("stale_attempt", f"{prefix}/shards/run_id=r2/{r2_db}/attempt=01/"),
    ("old_run", f"{prefix}/shards/run_id=r1/"),
    ("old_run", f"{prefix}/shards/run_id=orphan/"),
}

# Dry run (no --yes): lists, deletes nothing.
p = cli("cleanup", "--keep-last", "1")
out = records(p)
planned = {(r["reason"], r["prefix"]) for r in out if r.get("action") == "would_delete"}
check(planned == want, f"dry run plan: {planned}")
check(not any(r.get("action") == "deleted" for r in out), f"dry run deleted: {out}")
spared = [r for r in out if r.get("action") == "spared"]
check([(r["run_id"], r["reason"]) for r in spared] == [("live", "running")], f"spared: {spared}")
check("dry run" in p.stderr and "--yes" in p.stderr, f"dry-run notice: {p.stderr!r}")
for path in [stale, orphan, live, *r1_files]:
    check(os.path.exists(path), f"dry run removed {path}")
r1_bytes = sum(os.path.getsize(f) for f in r1_files)
r1_rec = [r for r in out if r.get("prefix", "").endswith("/run_id=r1/")]
check(r1_rec and r1_rec[0]["objects"] == len(r1_files) and r1_rec[0]["bytes"] == r1_bytes,
      f"r1 objects/bytes: {r1_rec} vs {len(r1_files)} files, {r1_bytes} bytes")

# --yes: deletes exactly the plan; the live run and the current snapshot stay.
out = records(cli("cleanup", "--keep-last", "1", "--yes"))
done = {(r["reason"], r["prefix"]) for r in out if r.get("action") == "deleted"}
check(done == want, f"deleted: {done}")
for path in [stale, orphan, *r1_files]:
    check(not os.path.exists(path), f"not deleted: {path}")
check(os.path.exists(live), "the run in flight was deleted")
got = records(cli("get", "--key-type", "str", "key7"))
check(got and got[0].get("value_hex") == b"value7".hex(),
      f"current snapshot unreadable after cleanup: {got}")
hist = records(cli("history"))
check(len(hist) == 2, f"manifests are never deleted: {hist}")

# Nothing left (the live run is still spared, even with --keep-last 0).
p = cli("cleanup", "--keep-last", "0", "--yes")
out = records(p)
check(not any(r.get("action") == "deleted" for r in out), f"second cleanup deleted: {out}")
check(os.path.exists(live), "the run in flight was deleted by --keep-last 0")

# Bad arguments fail without deleting anything.
cli("cleanup", "--older-than", "7x", expect_rc=1)
cli("cleanup", "--offset", "9", expect_rc=1)

shutil.rmtree(work)
finish("cleanup CLI")
