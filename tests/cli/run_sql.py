#!/usr/bin/env python3
"""A `command` executor for the tests: reads a script on stdin and runs it through the
emulator's Snowflake SQL API as one multi-statement request, like `snowsql -f /dev/stdin`."""
import json
import sys
import time
import urllib.request

base = sys.argv[1]
sql = sys.stdin.read()
body = json.dumps({"statement": sql, "parameters": {"MULTI_STATEMENT_COUNT": "0"}}).encode()
headers = {
    "Authorization": "Bearer test-pat",
    "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN",
    "Content-Type": "application/json",
    "Accept": "application/json",
}
req = urllib.request.Request(base + "/api/v2/statements?async=true", data=body, headers=headers)
resp = json.load(urllib.request.urlopen(req))
handle = resp["statementHandle"]
for _ in range(500):
    r = urllib.request.urlopen(urllib.request.Request(base + "/api/v2/statements/" + handle, headers=headers))
    if r.status == 200:
        sys.exit(0)
    time.sleep(0.02)
sys.exit("timed out")
