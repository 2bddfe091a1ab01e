"""Python's gear in a gearbox cluster: `worker HOST PORT` answers one `py_len` job with the
length of its payload and exits; `client HOST PORT` submits one and prints the result, then
`ALL OK`."""
import sys
import time

import gear

role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if role == "worker":
    w = gear.TextWorker("cluster-worker")
    w.addServer(host, port)
    w.waitForServer()
    w.registerFunction("py_len")
    print("READY", flush=True)
    job = w.getJob()
    job.sendWorkComplete(str(len(job.arguments)))
    w.shutdown()
    sys.exit(0)
c = gear.Client("cluster-client")
c.addServer(host, port)
c.waitForServer()
job = gear.TextJob("py_len", "twelve bytes")
c.submitJob(job)
deadline = time.time() + 20
while not job.complete and time.time() < deadline:
    time.sleep(0.01)
assert job.complete, "no result"
print("result", job.data[-1] if job.data else "")
c.shutdown()
print("ALL OK")
