"""Python gear's Worker.registerFunction(name, timeout), for interop_timeouts.rs.

Usage: gear_timeout.py PORT. A worker thread registers "sleepy" with timeout 2 (seconds, as
the Perl and PHP libraries document it); a job sleeps as many seconds as it says. Prints
"ALL OK" when every check passed.
"""
import threading
import time

import gear

# The job helpers of the main interop script (which reads the port from argv too).
from gear_interop import PORT, TIMEOUT, EventClient, new_job, wait_done


def work(worker):
    while True:
        job = worker.getJob()
        time.sleep(float(job.arguments))
        job.sendWorkComplete(b"slept")


def submit(client, payload):
    job = new_job("sleepy", payload)
    client.submitJob(job, timeout=TIMEOUT)
    wait_done(job, "sleepy %r" % payload)
    return job


def main():
    worker = gear.Worker("pytimeout")
    worker.addServer("127.0.0.1", PORT)
    worker.waitForServer(timeout=TIMEOUT)
    # gear sends the timeout as given: bytes, the ASCII number of seconds.
    worker.registerFunction("sleepy", timeout=b"2")
    threading.Thread(target=work, args=(worker,), daemon=True).start()

    client = EventClient("pyclient")
    client.addServer("127.0.0.1", PORT)
    client.waitForServer(timeout=TIMEOUT)

    # Within the two seconds: completes (a millisecond reading would fail it at once).
    job = submit(client, b"0.5")
    assert not job.failure and job.data == [b"slept"], vars(job)

    # Past them: WORK_FAIL after about two seconds, not when the job would end (4 s).
    start = time.time()
    job = submit(client, b"4")
    took = time.time() - start
    assert job.failure, vars(job)
    assert 1.9 <= took < 3.5, "it fails after about 2 s, took %.2f s" % took
    print("ALL OK")


if __name__ == "__main__":
    main()
