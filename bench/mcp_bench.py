"""run_python round trips per second through the MCP server, over stdio (`brig mcp`) and over
streamable HTTP (`brig serve`'s POST /mcp, one keep-alive connection), one client making one
call at a time in one session (`x = 1`): the latency an agent sees per tool call. Also
read_file of a 6-byte file, which saves nothing: the protocol's own cost without the
session's save (an execution commits its state to the store each time).

Usage: mcp_bench.py BRIG_BIN [CALLS_PER_ROUND] [ROUNDS]. Prints the median of the rounds'
rates and each round. Python standard library only.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def call(i, session):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "run_python", "arguments": {"code": "x = 1", "session_id": session}}}


def read_call(i, session):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "read_file", "arguments": {"session_id": session, "path": "/home/user/small.txt"}}}


def check(reply):
    assert "result" in reply and not reply["result"]["isError"], reply


def measure(rpc, n, rounds):
    """{tool: [rate per round]}: run_python (x = 1, saved each time) and read_file (no save)."""
    check(rpc(call(0, "bench")))
    check(rpc({"jsonrpc": "2.0", "id": 0, "method": "tools/call", "params": {"name": "write_file", "arguments": {
        "session_id": "bench", "path": "/home/user/small.txt", "content": "hello\n"}}}))
    out = {}
    for name, make in (("run_python", call), ("read_file", read_call)):
        for i in range(20):  # warm: the session is live
            check(rpc(make(i, "bench")))
        rates = []
        for _ in range(rounds):
            t = time.perf_counter()
            for i in range(n):
                check(rpc(make(i, "bench")))
            rates.append(n / (time.perf_counter() - t))
        out[name] = rates
    return out


def bench_stdio(brig, home, n, rounds):
    p = subprocess.Popen([brig, "mcp", "--db", f"sqlite:{home}/stdio.db"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env={**os.environ, "BRIG_HOME": home})

    def rpc(msg):
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    rpc({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25"}})
    rates = measure(rpc, n, rounds)
    p.stdin.close()
    p.wait()
    return rates


def bench_http(brig, home, n, rounds):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = subprocess.Popen([brig, "serve", "--listen", f"127.0.0.1:{port}", "--db", f"sqlite:{home}/http.db",
                               "--workers", "1"], env={**os.environ, "BRIG_HOME": home},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

        def rpc(msg):
            conn.request("POST", "/mcp", json.dumps(msg), headers)
            r = conn.getresponse()
            return json.loads(r.read())

        return measure(rpc, n, rounds)
    finally:
        server.terminate()
        server.wait()


def main():
    brig = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    with tempfile.TemporaryDirectory(prefix="brig-mcp-bench-") as home:
        for name, fn in (("stdio", bench_stdio), ("http", bench_http)):
            for tool, rates in fn(brig, home, n, rounds).items():
                print(f"{name}: {tool} round trips/s: median {statistics.median(rates):.0f} "
                      f"(rounds: {', '.join(f'{r:.0f}' for r in rates)}; {n} calls each); "
                      f"median latency {1e3 / statistics.median(rates):.2f} ms")


if __name__ == "__main__":
    main()
