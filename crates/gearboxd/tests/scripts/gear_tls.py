"""Python `gear` over mutual TLS: a worker and a client, each with its own client certificate,
run one foreground job through the server.

Usage: gear_tls.py PORT CA CERT KEY. Exits 0 and prints "ALL OK" when the job came back;
otherwise a failed assertion exits non-zero with its message. Every wait is bounded by TIMEOUT
seconds. (gear turns TLS 1.3 off, so this is TLS 1.2 with OpenSSL.)
"""

import sys
import threading

import gear

TIMEOUT = 20
PORT = int(sys.argv[1])
CA, CERT, KEY = sys.argv[2:5]


class EventClient(gear.Client):
    """A gear.Client that signals a per-job event when the job completes (no polling)."""

    def handleWorkComplete(self, packet):
        job = super().handleWorkComplete(packet)
        job.done_event.set()
        return job


def connect(obj):
    obj.addServer("127.0.0.1", PORT, ssl_key=KEY, ssl_cert=CERT, ssl_ca=CA)
    obj.waitForServer(timeout=TIMEOUT)
    return obj


def work(worker):
    while True:
        try:
            job = worker.getJob()
        except gear.InterruptedError:
            return
        job.sendWorkComplete(job.arguments[::-1])


worker = connect(gear.Worker("tls-worker"))
worker.registerFunction("reverse")
thread = threading.Thread(target=work, args=(worker,), daemon=True)
thread.start()

client = connect(EventClient("tls-client"))
job = gear.Job(b"reverse", b"over tls")
job.done_event = threading.Event()
client.submitJob(job, timeout=TIMEOUT)
assert job.done_event.wait(TIMEOUT), "no result within %ss" % TIMEOUT
assert job.data == [b"slt revo"], job.data

worker.stopWaitingForJobs()
worker.shutdown()
client.shutdown()
print("ALL OK")
