#!/usr/bin/env python3
"""An independent client of the live feed (the `websockets` library, no
code of ours): submits a request, follows /api/v1/datasets/ws/<id> to the
end, and reports what a dashboard author would check: overall_progress
monotonic from the first seconds, current_stage and estimated_completion in
every progress message, no forced close, and how far the ETA made at 25%,
50% and 75% of the run was from the real end.

usage: feedcheck.py --api http://127.0.0.1:8080 --token T request.json [--log messages.jsonl]
needs: pip install websockets
"""
import argparse, asyncio, datetime, json, sys, time, urllib.request

import websockets


def post(api, token, path, body):
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def when(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


async def follow(api, token, ex, log):
    url = api.replace("http", "ws", 1) + f"/api/v1/datasets/ws/{ex}"
    msgs, closes = [], []
    since = 0
    while True:
        try:
            async with websockets.connect(f"{url}?since={since}", additional_headers={"Authorization": "Bearer " + token},
                                          max_size=None) as ws:
                async for raw in ws:
                    m = json.loads(raw)
                    m["_received"] = time.time()
                    msgs.append(m)
                    if log:
                        log.write(json.dumps(m) + "\n")
                    since = m.get("seq", since)
                    if m["event_type"] == "dataset_status" and m["data"].get("status") in ("completed", "failed", "cancelled"):
                        return msgs, closes
        except websockets.ConnectionClosed as e:
            closes.append(f"{e.rcvd.code if e.rcvd else '?'} {e.rcvd.reason if e.rcvd else ''}")
            await asyncio.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--token", default="dev-admin-token")
    ap.add_argument("--log")
    ap.add_argument("request")
    a = ap.parse_args()
    body = json.load(open(a.request))
    t0 = time.time()
    ex = post(a.api, a.token, "/api/v1/datasets/process", body)["execution_id"]
    log = open(a.log, "w") if a.log else None
    msgs, closes = asyncio.run(follow(a.api, a.token, ex, log))
    end = msgs[-1]["_received"]
    prog = [m for m in msgs if m["event_type"] == "dataset_progress"]
    seqs = [m["seq"] for m in msgs]
    back = sum(1 for x, y in zip(prog, prog[1:]) if y["data"]["overall_progress"] < x["data"]["overall_progress"])
    no_stage = sum(1 for m in prog if not m["data"].get("current_stage"))
    no_eta = [m for m in prog if "estimated_completion" not in m["data"]]
    first = next((m for m in prog if m["data"]["overall_progress"] > 0), None)
    print(f"execution {ex}: {msgs[-1]['data'].get('status')} in {end - t0:.1f} s, {len(msgs)} messages, {len(prog)} progress")
    print(f"seq gap-free and in order: {seqs == list(range(1, len(seqs) + 1))}; forced closes: {closes or 'none'}")
    print(f"progress went back: {back} times; first above 0 after {first['_received'] - t0:.1f} s" if first else "progress never above 0")
    print(f"progress messages without current_stage: {no_stage}; without estimated_completion: {len(no_eta)}"
          + (f" (first at {no_eta[0]['_received'] - t0:.1f} s, last at {no_eta[-1]['_received'] - t0:.1f} s)" if no_eta else ""))
    stages = []
    for m in prog:
        s = m["data"].get("current_stage")
        if not stages or stages[-1][0] != s:
            stages.append((s, m["_received"] - t0))
    print("stages named: " + ", ".join(f"{s} from {t:.1f} s" for s, t in stages))
    for q in (25, 50, 75):
        m = next((m for m in prog if m["data"]["overall_progress"] >= q and "estimated_completion" in m["data"]), None)
        if m:
            eta = when(m["data"]["estimated_completion"])
            err = (eta - end) / (end - t0)
            print(f"ETA at {q}% (after {m['_received'] - t0:.1f} s): {eta - t0:.1f} s after submission, real end {end - t0:.1f} s: {err * 100:+.1f}% of the run")
    ok = back == 0 and no_stage == 0 and not closes and seqs == list(range(1, len(seqs) + 1))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
