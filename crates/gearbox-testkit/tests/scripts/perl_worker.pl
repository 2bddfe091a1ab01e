# Perl Gearman::Worker for interop_perl.rs. Usage: perl_worker.pl PORT.
# Serves until it has run a `quit` job; prints one line per background job it ran.
use strict;
use warnings;
use Gearman::Worker;

$| = 1;
my $port = shift or die "usage: $0 PORT\n";
my $worker = Gearman::Worker->new(job_servers => ["127.0.0.1:$port"]);
my $done = 0;
$worker->register_function(reverse => sub {
    my $job = shift;
    $job->set_status(1, 2);
    return scalar reverse $job->arg;
});
$worker->register_function(fail => sub { return undef });
$worker->register_function(bg => sub {
    my $job = shift;
    print "bg:", $job->arg, "\n";
    # Not "" or "0": Gearman::Worker then sends WORK_COMPLETE without the NUL before the
    # (empty) result, a malformed packet (gearmand closes the connection and the job loops).
    return "ok";
});
$worker->register_function(quit => sub { $done = 1; return "bye" });
$worker->work(stop_if => sub { $done });
print "worker done\n";
