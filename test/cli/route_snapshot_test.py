#!/usr/bin/env python3
"""CLI test for `shardy route KEY` against a snapshot (reader-features E-10, S-20): every fixture
snapshot, read through --object-root (a folder whose `shardy-fixtures` entry links to the
fixtures), routes every expected.jsonl key to the reference's shard_id, prints the shard's db_url
from reader_info.json (null for shards left out of the manifest), follows the cold-start
fallback of kv_history_fallback (v3's 4 shards), downloads no shard, and the standalone
`route --num-dbs` mode still works next to it.
Usage: route_snapshot_test.py <shardy binary> <fixtures dir>"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, records, run_shardy  # noqa: E402

shardy, fixtures = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="shardy-cli-route-")
objects = os.path.join(tmp, "objects")
cache = os.path.join(tmp, "cache")
os.makedirs(objects)
os.symlink(os.path.abspath(fixtures), os.path.join(objects, "shardy-fixtures"))


def route(prefix, *args, expect_rc=None):
    cmd = [shardy, "--prefix", prefix, "--object-root", objects, "--local-root", cache,
           "route", *args]
    p = run_shardy(cmd, expect_rc)
    return records(p), p


checked = 0
for name in sorted(os.listdir(os.path.join(fixtures, "expected"))):
    exp = os.path.join(fixtures, "expected", name)
    info = json.load(open(os.path.join(exp, "reader_info.json")))
    db_urls = {d["db_id"]: d["db_url"] for d in info["shard_details"]}
    rows = [json.loads(l) for l in open(os.path.join(exp, "expected.jsonl"))]
    # Keys go through --keys-file as hex (str keys: their UTF-8 bytes route like the string,
    # spec 3.3) or decimal (int keys), so NULs and newlines in keys are no problem.
    for key_type, cli_type, field in (("int", "int", "key_dec"), ("str", "hex", "key_utf8_hex")):
        sel = [r for r in rows if r["key_type"] == key_type]
        if not sel:
            continue
        keys_file = os.path.join(tmp, f"{name}-{key_type}.txt")
        with open(keys_file, "w") as f:
            for r in sel:
                f.write(r[field] + "\n")
        out, p = route(info["s3_prefix"], "--key-type", cli_type, "--keys-file", keys_file)
        check(len(out) == len(sel), f"{name}/{key_type}: {len(out)} lines for {len(sel)} keys: "
              f"{p.stderr}")
        for r, o in zip(sel, out):
            if r["shard_id"] is None:
                check("error" in o and "shard_id" not in o, f"{name}: {r[field]} -> {o}")
                continue
            check(o.get("shard_id") == r["shard_id"], f"{name}: {r[field]} -> {o}")
            check(o.get("db_url") == db_urls[r["shard_id"]], f"{name}: db_url {o} vs {db_urls[r['shard_id']]}")
            # Keys the reference could not look up (get_error) cannot be stored either.
            check(("error" in o) == ("get_error" in r), f"{name}: error-or-not {r} -> {o}")
            checked += 1
        want_rc = 1 if any(r["shard_id"] is None or "get_error" in r for r in sel) else 0
        check(p.returncode == want_rc, f"{name}/{key_type}: rc {p.returncode} != {want_rc}")

check(checked > 3000, f"only {checked} keys checked")
# Routing reads only the pointer and the manifest: nothing was downloaded into the cache.
downloaded = [f for _, _, fs in os.walk(cache) for f in fs if f.endswith(".db")]
check(not downloaded, f"route downloaded shards: {downloaded}")

# One key by hand: kv_small int 45283 -> shard 0 (expected.jsonl line 1), with its db_url.
out, _ = route("s3://shardy-fixtures/snapshots/kv_small", "45283", expect_rc=0)
check(out and out[0]["shard_id"] == 0 and out[0]["storage_key_hex"] == "000000000000b0e3"
      and out[0]["db_url"].endswith("/db=00000/attempt=00"), f"45283: {out}")
# The key encoding comes from the manifest; giving one is refused.
_, p = route("s3://shardy-fixtures/snapshots/kv_small", "--key-encoding", "utf8", "1", expect_rc=1)
check("manifest" in p.stderr, f"--key-encoding with a snapshot: {p.stderr}")
# A prefix with no snapshot: clear error, exit 1.
_, p = route("s3://shardy-fixtures/snapshots/nope", "1", expect_rc=1)
check("_CURRENT" in p.stderr, f"missing snapshot: {p.stderr}")
# Standalone mode is unchanged (and wins over a snapshot when --num-dbs is given).
p = run_shardy([shardy, "route", "--num-dbs", "8", "42"], expect_rc=0)
check(records(p) and records(p)[0]["shard_id"] == 0, f"standalone: {p.stdout} {p.stderr}")
out, _ = route("s3://shardy-fixtures/snapshots/kv_small", "--num-dbs", "3", "42", expect_rc=0)
check(out and "db_url" not in out[0] and out[0]["shard_id"] == 0xd5a6f8c838df27c8 % 3,
      f"--num-dbs with --prefix: {out}")

finish(f"{checked} keys routed against snapshots")
