"""Python `gear` as a TLS client: one foreground job over TLS with a client certificate.

Usage: gear_tls_client.py CA CERT KEY PORT. Submits `reverse` with "hello gear" to 127.0.0.1:PORT
and prints the job's data chunks, its status and `ALL OK`; every wait is bounded by TIMEOUT
seconds, a failed check exits non-zero with its message.
"""

import sys
import threading

import gear

TIMEOUT = 20
CA, CERT, KEY, PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


class EventClient(gear.Client):
    """A gear.Client that signals a per-job event when the job ends (no polling)."""

    def _done(self, job):
        job.done_event.set()
        return job

    def handleWorkComplete(self, packet):
        return self._done(super().handleWorkComplete(packet))

    def handleWorkFail(self, packet):
        return self._done(super().handleWorkFail(packet))

    def handleWorkException(self, packet):
        return self._done(super().handleWorkException(packet))


client = EventClient("gear-tls")
client.addServer("127.0.0.1", PORT, ssl_key=KEY, ssl_cert=CERT, ssl_ca=CA)
client.waitForServer(TIMEOUT)
job = gear.Job(b"reverse", b"hello gear")
job.done_event = threading.Event()
client.submitJob(job, timeout=TIMEOUT)
assert job.done_event.wait(TIMEOUT), "no result within %ss" % TIMEOUT
assert not job.failure, "the job failed"
print("data", [bytes(d) for d in job.data])
print("status", int(job.numerator), int(job.denominator))
client.shutdown()
print("ALL OK")
