<?php
// PHP's pecl gearman (libgearman) in a gearbox cluster: `worker HOST PORT` serves
// `php_upper` (status, data, then the upper-cased payload) until killed; `client HOST PORT`
// runs one task and prints each callback, then `ALL OK`.
[$_, $role, $host, $port] = $argv;
if ($role === 'worker') {
    $w = new GearmanWorker();
    $w->addServer($host, (int)$port);
    $w->addFunction('php_upper', function (GearmanJob $job) {
        $job->sendStatus(1, 2);
        $job->sendData('chunk');
        return strtoupper($job->workload());
    });
    echo "READY\n";
    while ($w->work()) {
    }
    exit(1);
}
$c = new GearmanClient();
$c->addServer($host, (int)$port);
$c->setStatusCallback(function (GearmanTask $t) {
    echo "status ", $t->taskNumerator(), "/", $t->taskDenominator(), "\n";
});
$c->setDataCallback(function (GearmanTask $t) {
    echo "data ", $t->data(), "\n";
});
$c->setCompleteCallback(function (GearmanTask $t) {
    echo "complete ", $t->data(), "\n";
});
$c->addTask('php_upper', 'across members');
if (!$c->runTasks()) {
    fwrite(STDERR, "runTasks: " . $c->error() . "\n");
    exit(1);
}
echo "ALL OK\n";
