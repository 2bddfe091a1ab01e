"""Python `gear` (OpenStack's Gearman library) client and worker against a server.

Usage: gear_interop.py PORT. Exits 0 and prints "ALL OK" when every check passed; otherwise a
failed assertion exits non-zero with its message. Every wait is bounded by TIMEOUT seconds.
"""

import sys
import threading

import gear

TIMEOUT = 20
PORT = int(sys.argv[1])


class EventClient(gear.Client):
    """A gear.Client that signals a per-job event when the job ends (no polling)."""

    def _done(self, job):
        ev = getattr(job, "done_event", None)
        if ev is not None:
            ev.set()
        return job

    def handleWorkComplete(self, packet):
        return self._done(super().handleWorkComplete(packet))

    def handleWorkFail(self, packet):
        return self._done(super().handleWorkFail(packet))

    def handleWorkException(self, packet):
        return self._done(super().handleWorkException(packet))


def new_job(name, args, unique=None):
    job = gear.Job(name.encode(), args, unique)
    job.done_event = threading.Event()
    return job


def wait_done(job, what):
    assert job.done_event.wait(TIMEOUT), "%s: no result within %ss" % (what, TIMEOUT)


bg_seen = threading.Event()
bg_payload = []


def work(worker):
    """The worker loop: one behaviour per function name."""
    while True:
        try:
            job = worker.getJob()
        except gear.InterruptedError:
            return
        name = job.name.decode() if isinstance(job.name, bytes) else job.name
        if name == "reverse":
            job.sendWorkStatus(1, 2)
            job.sendWorkData(b"partial")
            job.sendWorkComplete(job.arguments[::-1])
        elif name == "fail":
            job.sendWorkFail()
        elif name == "boom":
            job.sendWorkException(b"kaboom")
        elif name == "background":
            bg_payload.append(job.arguments)
            job.sendWorkComplete(b"")
            bg_seen.set()


def connect(obj):
    obj.addServer("127.0.0.1", PORT)
    obj.waitForServer(timeout=TIMEOUT)


def admin(client, request):
    conn = client.active_connections[0]
    conn.sendAdminRequest(request, timeout=TIMEOUT)
    return request.response


def main():
    worker = gear.Worker("pyworker")
    connect(worker)
    for f in ("reverse", "fail", "boom", "background"):
        worker.registerFunction(f)
    thread = threading.Thread(target=work, args=(worker,), daemon=True)
    thread.start()

    client = EventClient("pyclient")
    connect(client)
    assert client.setOption("exceptions", timeout=TIMEOUT), "OPTION_REQ exceptions refused"

    # Several foreground jobs in flight at once.
    jobs = [new_job("reverse", ("payload-%d" % i).encode()) for i in range(8)]
    for job in jobs:
        client.submitJob(job, timeout=TIMEOUT)
    for i, job in enumerate(jobs):
        wait_done(job, "reverse %d" % i)
        assert not job.failure, "reverse %d failed" % i
        assert job.data == [b"partial", ("payload-%d" % i).encode()[::-1]], job.data
        assert (job.numerator, job.denominator) == (b"1", b"2"), (job.numerator, job.denominator)
        assert job.handle.startswith(b"H:"), job.handle

    # WORK_FAIL.
    job = new_job("fail", b"x")
    client.submitJob(job, timeout=TIMEOUT)
    wait_done(job, "fail")
    assert job.complete and job.failure and job.exception is None, vars(job)

    # WORK_EXCEPTION reaches a client that asked for exceptions ...
    job = new_job("boom", b"x")
    client.submitJob(job, timeout=TIMEOUT)
    wait_done(job, "boom")
    assert job.failure and job.exception == b"kaboom", (job.failure, job.exception)

    # ... and is a plain WORK_FAIL for one that did not.
    plain = EventClient("plainclient")
    connect(plain)
    job = new_job("boom", b"y")
    plain.submitJob(job, timeout=TIMEOUT)
    wait_done(job, "boom without the exceptions option")
    assert job.failure and job.exception is None, (job.failure, job.exception)

    # A background job: the client gets a handle and nothing else; the worker runs it.
    job = new_job("background", b"bg-data", unique=b"bg-unique")
    client.submitJob(job, background=True, timeout=TIMEOUT)
    assert job.handle and job.handle.startswith(b"H:"), job.handle
    assert bg_seen.wait(TIMEOUT), "background job never ran"
    assert bg_payload == [b"bg-data"], bg_payload

    # The admin protocol through gear's own admin requests (it sends bare "\n" lines).
    status = admin(client, gear.StatusAdminRequest())
    lines = status.decode().splitlines()
    assert lines[-1] == ".", status
    rows = {l.split("\t")[0]: l.split("\t")[1:] for l in lines[:-1]}
    assert rows["reverse"] == ["0", "0", "1"], status
    assert rows["background"] == ["0", "0", "1"], status
    workers = admin(client, gear.WorkersAdminRequest()).decode()
    assert any(l.endswith(" pyworker : background boom fail reverse") for l in workers.splitlines()), workers
    assert admin(client, gear.ShowJobsAdminRequest()) == b".\n", "no job left"
    assert admin(client, gear.ShowUniqueJobsAdminRequest()) == b".\n", "no unique left"
    version = admin(client, gear.VersionAdminRequest())
    assert version.startswith(b"OK ") and version.endswith(b"\n"), version
    assert admin(client, gear.CancelJobAdminRequest("H:nowhere:1")) == b"ERR UNKNOWN_JOB\r\n"

    worker.stopWaitingForJobs()
    worker.shutdown()
    client.shutdown()
    plain.shutdown()
    thread.join(TIMEOUT)
    print("ALL OK")


if __name__ == "__main__":
    main()
