<?php
// PHP's GearmanWorker::addFunction with a timeout (documented in seconds), for
// interop_timeouts.rs.
// Usage: php php_timeout.php worker PORT   (serves until it runs a "quit" job)
//        php php_timeout.php client PORT   (prints "ALL OK" when every check passed)
// The worker registers "sleepy" with timeout 2; a job sleeps as many seconds as it says.

require __DIR__ . '/php_check.php';

[$_, $mode, $port] = $argv;

if ($mode === 'worker') {
    $w = new GearmanWorker();
    $w->addServer('127.0.0.1', (int)$port);
    $quit = false;
    $w->addFunction('sleepy', function (GearmanJob $job) {
        usleep((int)((float)$job->workload() * 1000000));
        return 'slept';
    }, null, 2);
    $w->addFunction('quit', function (GearmanJob $job) use (&$quit) {
        $quit = true;
        return 'bye';
    });
    while (!$quit && $w->work()) {
    }
    echo "worker done\n";
    exit(0);
}

$c = new GearmanClient();
$c->addServer('127.0.0.1', (int)$port);
$c->setTimeout(20000);

// Within the two seconds: completes (a millisecond reading would fail it at once).
check($c->doNormal('sleepy', '0.5') === 'slept', 'a 0.5 s job under a 2 s timeout completes');
check($c->returnCode() === GEARMAN_SUCCESS, 'return code ' . $c->returnCode());

// Past them: WORK_FAIL after about two seconds, not when the job would end (4 s).
$start = microtime(true);
$c->doNormal('sleepy', '4');
$took = microtime(true) - $start;
check($c->returnCode() === GEARMAN_WORK_FAIL, 'a 4 s job under a 2 s timeout fails: ' . $c->returnCode());
check($took >= 1.9 && $took < 3.5, "it fails after about 2 s, took $took s");

// The worker survives its late result and serves the next job.
check($c->doNormal('quit', 'now') === 'bye', 'the worker serves on after its timed-out job');
echo "ALL OK\n";
