<?php
// PHP's pecl gearman extension (libgearman underneath) against a Gearman server.
// Usage: php php_interop.php worker PORT   (serves until it receives a "quit" job)
//        php php_interop.php client PORT   (prints "ALL OK" when every check passed)

require __DIR__ . '/php_check.php';

[$_, $mode, $port] = $argv;

if ($mode === 'worker') {
    $w = new GearmanWorker();
    $w->addServer('127.0.0.1', (int)$port);
    $w->setId('php-worker');
    $quit = false;
    $w->addFunction('php_reverse', function (GearmanJob $job) {
        return strrev($job->workload());
    });
    $w->addFunction('php_stream', function (GearmanJob $job) {
        $job->sendStatus(1, 3);
        $job->sendData('chunk-a');
        $job->sendStatus(2, 3);
        $job->sendData('chunk-b');
        $job->sendWarning('careful');
        return 'done:' . $job->workload();
    });
    $w->addFunction('php_fail', function (GearmanJob $job) {
        $job->sendFail();
        return null;
    });
    $w->addFunction('php_bg', function (GearmanJob $job) {
        echo "bg:", $job->workload(), "\n";
        return '';
    });
    $w->addFunction('php_quit', function (GearmanJob $job) use (&$quit) {
        $quit = true;
        return 'bye';
    });
    while (!$quit && $w->work()) {
        check($w->returnCode() === GEARMAN_SUCCESS, 'worker return code ' . $w->returnCode());
    }
    echo "worker done\n";
    exit(0);
}

$c = new GearmanClient();
$c->addServer('127.0.0.1', (int)$port);
$c->setTimeout(20000);

check($c->ping('ping') === true, 'echo (ping)');

check($c->doNormal('php_reverse', 'hello') === 'olleh', 'doNormal');
check($c->returnCode() === GEARMAN_SUCCESS, 'doNormal return code');
check($c->doHigh('php_reverse', 'abc') === 'cba', 'doHigh');
check($c->doLow('php_reverse', 'xyz', 'uniq-low') === 'zyx', 'doLow with unique');

// A task with data, status and warning callbacks.
$events = [];
$c->setDataCallback(function (GearmanTask $t) use (&$events) { $events[] = 'data:' . $t->data(); });
$c->setStatusCallback(function (GearmanTask $t) use (&$events) {
    $events[] = 'status:' . $t->taskNumerator() . '/' . $t->taskDenominator();
});
$c->setWarningCallback(function (GearmanTask $t) use (&$events) { $events[] = 'warning:' . $t->data(); });
$c->setCompleteCallback(function (GearmanTask $t) use (&$events) { $events[] = 'complete:' . $t->data(); });
$c->setFailCallback(function (GearmanTask $t) use (&$events) { $events[] = 'fail'; });
$c->addTask('php_stream', 'p1');
check($c->runTasks(), 'runTasks stream');
$want = ['status:1/3', 'data:chunk-a', 'status:2/3', 'data:chunk-b', 'warning:careful', 'complete:done:p1'];
check($events === $want, 'stream events: ' . json_encode($events));

// Several tasks at once (scatter/gather), and a failing one.
$events = [];
$c->addTask('php_reverse', 'one');
$c->addTask('php_reverse', 'two');
$c->addTask('php_fail', 'x');
check($c->runTasks(), 'runTasks gather');
sort($events);
check($events === ['complete:eno', 'complete:owt', 'fail'], 'gather events: ' . json_encode($events));

// The same function and unique added twice, then run together: libgearman gets one handle
// for both tasks and waits for a result per task, so the server must send WORK_COMPLETE once
// per submission. Both complete callbacks fire with the worker's result.
$events = [];
$c->addTask('php_reverse', 'twice', null, 'same-unique');
$c->addTask('php_reverse', 'twice', null, 'same-unique');
check($c->runTasks(), 'runTasks same unique twice: ' . $c->error());
check($events === ['complete:eciwt', 'complete:eciwt'], 'same unique twice: ' . json_encode($events));

// Background job and its status.
$handle = $c->doBackground('php_bg', 'bgdata');
check($c->returnCode() === GEARMAN_SUCCESS && strlen($handle) > 0, 'doBackground');
$st = $c->jobStatus($handle);
check(is_array($st) && count($st) === 4, 'jobStatus shape');
$unknown = $c->jobStatus('H:nowhere:999999');
check($unknown[0] === false && $unknown[1] === false, 'jobStatus of an unknown handle: ' . json_encode($unknown));

check($c->doNormal('php_quit', 'now') === 'bye', 'quit job');
echo "ALL OK\n";
