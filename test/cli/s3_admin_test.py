#!/usr/bin/env python3
"""CLI test against the fixture's S3 server (s3rver behind the SigV4-verifying front end):
`shardy build` publishes two runs to s3://, `history` lists them newest first marking the
current one, `get` reads the current values, `rollback --offset 1` / `--ref` move _CURRENT (and a
bad ref is refused without touching it), and `cleanup --keep-last 1` deletes the other run's
shards only with --yes.
Usage: s3_admin_test.py <shardy binary> <s3server.json> <scratch dir>"""
import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, records, run_shardy  # noqa: E402

shardy, info_file, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
with open(info_file) as f:
    info = json.load(f)
work = os.path.join(scratch, "cli-s3-admin")
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
bucket = info["buckets"][0]
prefix = f"s3://{bucket}/cli-s3-admin-{random.getrandbits(32):08x}/snap"
env = dict(os.environ, AWS_ACCESS_KEY_ID=info["access_key"],
           AWS_SECRET_ACCESS_KEY=info["secret_key"], AWS_REGION=info["region"])
for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    env.pop(k, None)
caches = 0


def cli(*args, expect_rc=0):
    global caches
    caches += 1  # a fresh shard cache per call: every read goes to the server
    return run_shardy([shardy, "--prefix", prefix, "--endpoint", info["endpoint"], "--path-style",
                       "--local-root", os.path.join(work, f"cache{caches}"), *args], expect_rc,
                      env=env, timeout=120)


def value_of(key):
    out = records(cli("get", "--key-type", "str", key))
    return bytes.fromhex(out[0]["value_hex"]).decode() if out and out[0].get("found") else None


for run in ("runone", "runtwo"):
    inp = os.path.join(work, f"{run}.jsonl")
    with open(inp, "w") as f:
        for i in range(200):
            f.write(json.dumps({"k": f"key{i}", "v": f"{run}-value{i}"}) + "\n")
    p = cli("build", "--input", inp, "--key-field", "k", "--value-field", "v", "--key-type", "str",
            "--key-encoding", "utf8", "--num-dbs", "4", "--run-id", run, "--quiet")

hist = records(cli("history"))
check([h["run_id"] for h in hist] == ["runtwo", "runone"], f"history order: {hist}")
check([h["current"] for h in hist] == [True, False], f"history current flag: {hist}")
check(all(h["ref"].startswith(prefix + "/manifests/") for h in hist), f"refs: {hist}")
check(value_of("key7") == "runtwo-value7", "current value after two builds")
check(value_of("nokey") is None, "absent key")

out = records(cli("rollback", "--offset", "1"))
check(out and out[0]["run_id"] == "runone" and out[0]["manifest_ref"] == hist[1]["ref"],
      f"rollback --offset 1: {out}")
hist2 = records(cli("history"))
check([h["current"] for h in hist2] == [False, True], f"after rollback: {hist2}")
check(value_of("key7") == "runone-value7", "value after rollback")

bad = hist[0]["ref"].replace("runtwo", "nosuchrun")
cli("rollback", "--ref", bad, expect_rc=1)
check([h["current"] for h in records(cli("history"))] == [False, True],
      "a refused rollback moved _CURRENT")
out = records(cli("rollback", "--ref", hist[0]["ref"]))
check(out and out[0]["run_id"] == "runtwo", f"rollback --ref: {out}")
check(value_of("key7") == "runtwo-value7", "value after rolling forward")

# cleanup: runone's shards go, only with --yes.
plan = records(cli("cleanup", "--keep-last", "1"))
want = {("old_run", f"{prefix}/shards/run_id=runone/")}
check({(r["reason"], r["prefix"]) for r in plan if r["action"] == "would_delete"} == want,
      f"cleanup plan: {plan}")
check(plan and plan[0]["objects"] >= 2, f"runone objects: {plan}")
plan_again = records(cli("cleanup", "--keep-last", "1"))
check(plan_again == plan, f"the dry run deleted something: {plan_again}")
done = records(cli("cleanup", "--keep-last", "1", "--yes"))
check({(r["reason"], r["prefix"]) for r in done if r["action"] == "deleted"} == want,
      f"cleanup --yes: {done}")
check(records(cli("cleanup", "--keep-last", "1")) == [], "runone still listed after cleanup")
check(value_of("key9") == "runtwo-value9", "current snapshot after cleanup")

shutil.rmtree(work)
finish("s3 admin CLI")
