# Perl Gearman::Worker->register_function with a timeout, for interop_timeouts.rs.
# Usage: perl_timeout.pl worker PORT   (serves until it runs a `quit` job)
#        perl_timeout.pl client PORT   (prints "ALL OK" when every check passed)
# The worker registers `sleepy` with timeout 2, documented as seconds; a job sleeps as many
# seconds as its argument says.
use strict;
use warnings;
use Gearman::Client;
use Gearman::Worker;
use Time::HiRes qw(sleep time);

$| = 1;
my ($mode, $port) = @ARGV;
die "usage: $0 worker|client PORT\n" unless $port;
my $server = "127.0.0.1:$port";

if ($mode eq 'worker') {
    my $worker = Gearman::Worker->new(job_servers => [$server]);
    my $done = 0;
    $worker->register_function(sleepy => 2, sub { sleep $_[0]->arg; return "slept" });
    $worker->register_function(quit => sub { $done = 1; return "bye" });
    $worker->work(stop_if => sub { $done });
    print "worker done\n";
    exit 0;
}

sub check { my ($ok, $what) = @_; $ok or die "FAILED: $what\n" }

my $client = Gearman::Client->new(job_servers => [$server]);
# Within the two seconds: completes (a millisecond reading would fail it at once).
my $r = $client->do_task(sleepy => "0.5", { timeout => 20 });
check($r && $$r eq "slept", "a 0.5 s job under a 2 s timeout completes");

# Past them: WORK_FAIL after about two seconds, not when the job would end (4 s).
my $failed = 0;
my $start = time;
$r = $client->do_task(sleepy => "4", { timeout => 20, on_fail => sub { $failed = 1 } });
my $took = time - $start;
check(!defined $r && $failed, "a 4 s job under a 2 s timeout fails");
check($took >= 1.9 && $took < 3.5, "it fails after about 2 s, took $took s");

# The worker survives its late result (no ERROR reply to die on) and serves the next job.
$r = $client->do_task(quit => "", { timeout => 20 });
check($r && $$r eq "bye", "the worker serves on after its timed-out job");
print "ALL OK\n";
