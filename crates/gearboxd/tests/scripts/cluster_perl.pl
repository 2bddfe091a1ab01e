# Perl's Gearman::Client and Gearman::Worker in a gearbox cluster: `worker HOST PORT`
# serves `perl_twice` (the payload twice) until killed; `client HOST PORT` runs one
# foreground job and submits one background job, then prints `ALL OK`.
use strict;
use warnings;
use Gearman::Client;
use Gearman::Worker;

my ($role, $host, $port) = @ARGV;
if ($role eq 'worker') {
    my $w = Gearman::Worker->new(job_servers => ["$host:$port"]);
    $w->register_function(perl_twice => sub { my $j = shift; return $j->arg x 2 });
    $| = 1;
    print "READY\n";
    $w->work while 1;
}
my $c = Gearman::Client->new(job_servers => ["$host:$port"]);
my $r = $c->do_task(perl_twice => 'ab', { timeout => 20 });
die "no result" unless defined $r;
print "result $$r\n";
my $h = $c->dispatch_background(perl_twice => 'bg');
die "no handle" unless $h;
print "ALL OK\n";
