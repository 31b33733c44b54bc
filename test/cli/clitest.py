"""What the CLI tests share: counted checks (a failed one is printed and the run goes on), running
the shardy binary with its exit status checked, reading its JSON-lines output, and the exit."""
import json
import subprocess
import sys

failures = 0


def check(cond, msg):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", msg)
    return cond


def run_shardy(cmd, expect_rc=None, **kwargs):
    """Runs cmd (a list) capturing text output; checks its exit status when expect_rc is given."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if expect_rc is not None:
        check(p.returncode == expect_rc, f"{cmd[1:]}: rc {p.returncode} != {expect_rc}: {p.stderr}")
    return p


def records(p):
    """The JSON objects of a finished process' stdout, one per non-empty line."""
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def finish(summary):
    """Prints the summary with the failure count and exits 1 if any check failed."""
    print(f"{summary}: {failures} failure(s)")
    sys.exit(1 if failures else 0)
