"""The server's cost of a migration's record writes, beside a peer's one insert (README, "Benchmark").

Run: scripts/with-local-server .venv/bin/python scripts/peers/record-writes.py
(pymongo comes with the local server's package). Times 100 commands of each shape, median of 5.
"""
import os, time, pymongo, statistics
c = pymongo.MongoClient(os.environ["MONGODB_URI"])
db = c["probe_x"]
def t(f, n=100):
    db.drop_collection("v")
    s = time.perf_counter()
    for i in range(n): f(i)
    return (time.perf_counter() - s) * 1000
ins = lambda i: db.command({"insert": "v", "documents": [{"_id": f"{i:04}", "x": 1}]})
upd2 = lambda i: db.command({"update": "v", "ordered": True, "updates": [
    {"q": {"_id": f"{i-1:04}", "fence": {"$not": {"$gt": 1}}}, "u": {"$set": {"state": "applied", "d": 1}, "$currentDate": {"finished_at": True}}},
    {"q": {"_id": f"{i:04}", "fence": {"$not": {"$gt": 1}}, "state": {"$ne": "applied"}}, "u": {"$set": {"state": "running", "fence": 1, "attempts": 1}, "$currentDate": {"started_at": True}}, "upsert": True}]})
upd1 = lambda i: db.command({"update": "v", "ordered": True, "updates": [
    {"q": {"_id": f"{i:04}", "fence": {"$not": {"$gt": 1}}, "state": {"$ne": "applied"}}, "u": {"$set": {"state": "running", "fence": 1, "attempts": 1}, "$currentDate": {"started_at": True}}, "upsert": True}]})
import datetime
now = lambda: datetime.datetime.now(datetime.timezone.utc)
# Ours since the announced protocol: an applied record inserted whole, naming the next migration.
announced = lambda i: db.command({"insert": "v", "documents": [{"_id": f"{i:04}", "description": "d", "state": "applied",
    "checksum": "ab" * 32, "function": "app::m", "host": "h", "pid": 1, "fence": 1, "attempts": 1, "started_at": now(),
    "finished_at": now(), "applied_at": now(), "duration_ms": 1, "declared": [], "next": f"{i+1:04}"}]})
for name, f in [("insert (the peer's one record)", ins), ("update, 2 statements (ours before)", upd2), ("update, 1 upsert", upd1),
                ("insert, announced (ours)", announced)] * 3:
    print(name, round(statistics.median([t(f) for _ in range(5)]), 1), "ms / 100")
c.drop_database("probe_x")
