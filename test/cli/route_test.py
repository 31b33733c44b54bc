#!/usr/bin/env python3
"""CLI test for `shardy route` (standalone mode): spec 3.2 vectors, error cases, and every
routing_vectors.jsonl line for one (num_dbs, key_encoding) via --keys-file.
Usage: route_test.py <shardy binary> <fixtures dir>"""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clitest import check, finish, records, run_shardy  # noqa: E402

shardy, fixtures = sys.argv[1], sys.argv[2]
def route(*args, expect_rc=None):
    p = run_shardy([shardy, "route", *args], expect_rc)
    return records(p), p


# spec 3.2: int 42 -> canonical 2a00.., hash d5a6f8c838df27c8, n=8 -> 0; storage key u64be
out, _ = route("--num-dbs", "8", "42", "0", expect_rc=0)
check(out[0] == {"key": "42", "key_type": "int", "canonical_hex": "2a00000000000000",
                 "hash_hex": "d5a6f8c838df27c8", "shard_id": 0,
                 "storage_key_hex": "000000000000002a"}, f"42: {out[0]}")
check(out[1]["shard_id"] == 1 and out[1]["hash_hex"] == "c77b3abb6f87acd9", f"0: {out[1]}")
# str / hex keys, other encodings
out, _ = route("--num-dbs", "64", "--key-encoding", "utf8", "user:42", "hello", expect_rc=0)
check(out[0]["shard_id"] == 42 and out[0]["storage_key_hex"] == "757365723a3432", f"user:42 {out[0]}")
check(out[1]["shard_id"] == 61, f"hello {out[1]}")
out, _ = route("--num-dbs", "8", "--key-type", "hex", "000000000000002a", expect_rc=0)
check(out[0]["shard_id"] == 4 and out[0]["storage_key_hex"] == "000000000000002a",
      f"pre-encoded bytes route as bytes (spec 3.3): {out[0]}")
# errors: unroutable int, unencodable int, str on u64be, bad hex -> error field, exit 1
out, _ = route("--num-dbs", "8", "18446744073709551615", expect_rc=1)
check("error" in out[0] and "shard_id" not in out[0], f"2^64-1: {out[0]}")
out, _ = route("--num-dbs", "8", "--", "-1", expect_rc=1)
check(out[0].get("shard_id") == 3 and "error" in out[0], f"-1 routes, cannot be stored: {out[0]}")
out, _ = route("--num-dbs", "8", "--key-type", "str", "5", expect_rc=1)
check("error" in out[0] and out[0]["storage_key_hex"] is None, f"str on u64be: {out[0]}")
out, _ = route("--num-dbs", "8", "--key-type", "hex", "zz", expect_rc=1)
check("error" in out[0], f"bad hex: {out[0]}")
_, p = route("42", expect_rc=1)  # no --num-dbs
check("num-dbs" in p.stderr, f"missing --num-dbs message: {p.stderr}")

# routing_vectors.jsonl through --keys-file (num_dbs 13, u64be, int and str and bytes keys)
vectors = [json.loads(l) for l in open(os.path.join(fixtures, "routing_vectors.jsonl"))]
checked = 0
for key_type, field, cli_type in (("int", "key_dec", "int"), ("str", None, "str"),
                                  ("bytes", "key_hex", "hex")):
    rows = [v for v in vectors if v["num_dbs"] == 13 and v["key_encoding"] == "u64be"
            and v["key_type"] == key_type]
    if key_type == "str":  # keys with newlines cannot go through a line-based file
        rows = [v for v in rows if "\n" not in v["key"] and "\r" not in v["key"]
                and "\u2028" not in v["key"] and "\u2029" not in v["key"] and "\x85" not in v["key"]]
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        for v in rows:
            f.write((v[field] if field else v["key"]) + "\n")
        name = f.name
    out, _ = route("--num-dbs", "13", "--key-type", cli_type, "--keys-file", name)
    os.unlink(name)
    check(len(out) == len(rows), f"{key_type}: {len(out)} outputs for {len(rows)} keys")
    for v, o in zip(rows, out):
        if v["shard_id"] is None:
            check("error" in o and "shard_id" not in o, f"{v} -> {o}")
        else:
            check(o.get("shard_id") == v["shard_id"] and o["hash_hex"] == v["hash_hex"]
                  and o["canonical_hex"] == v["canonical_hex"], f"{v} -> {o}")
            if v["lookup_key_hex"] is None:
                check("error" in o, f"{v} -> {o}")
            else:
                check(o["storage_key_hex"] == v["lookup_key_hex"] and "error" not in o, f"{v} -> {o}")
        checked += 1
check(checked > 120, f"only {checked} vectors checked")
finish(f"route CLI: {checked} vectors checked")
