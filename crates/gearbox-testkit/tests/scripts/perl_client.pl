# Perl Gearman::Client for interop_perl.rs. Usage: perl_client.pl PORT.
# Prints "ALL OK" when every check passed; dies with a message otherwise.
use strict;
use warnings;
use Gearman::Client;

$| = 1;
my $port = shift or die "usage: $0 PORT\n";
my $client = Gearman::Client->new(job_servers => ["127.0.0.1:$port"], exceptions => 1);

# One foreground job.
my $r = $client->do_task(reverse => "hello", { timeout => 20 });
die "do_task: no result\n" unless defined $r;
die "do_task: got '$$r'\n" unless $$r eq "olleh";

# Several at once, with WORK_STATUS seen by the client.
my $ts = $client->new_task_set;
my (%result, %status);
for my $i (1 .. 6) {
    $ts->add_task(reverse => "job$i", {
        on_complete => sub { $result{$i} = ${ $_[0] } },
        on_status   => sub { $status{$i} = "$_[0]/$_[1]" },
        on_fail     => sub { die "job$i failed\n" },
    });
}
$ts->wait(timeout => 20);
for my $i (1 .. 6) {
    my $want = reverse "job$i";
    die "job$i: got " . ($result{$i} // "nothing") . "\n" unless ($result{$i} // "") eq $want;
    die "job$i: status " . ($status{$i} // "none") . "\n" unless ($status{$i} // "") eq "1/2";
}

# A job the worker fails (its function returns undef: WORK_FAIL). Not a dying function:
# Gearman::Worker follows the WORK_EXCEPTION of a `die` with a WORK_FAIL, which gearmand and
# gearbox both answer with ERROR JOB_NOT_FOUND (the exception already ended the job), and the
# Perl worker then loses step with the server.
for my $exceptions (0, 1) {
    my $c = Gearman::Client->new(job_servers => ["127.0.0.1:$port"], exceptions => $exceptions);
    my ($failed, $exception) = (0, undef);
    $ts = $c->new_task_set;
    $ts->add_task(fail => "x", {
        on_fail      => sub { $failed = 1 },
        on_exception => sub { $exception = $_[0] },
        on_complete  => sub { die "the failing job completed\n" },
    });
    $ts->wait(timeout => 20);
    die "no on_fail (exceptions => $exceptions)\n" unless $failed;
    die "an exception from WORK_FAIL\n" if defined $exception;
}

# A background job: a handle and nothing else.
my $handle = $client->dispatch_background(bg => "bgdata");
die "dispatch_background: no handle\n" unless $handle && $handle =~ m{//H:};

# GET_STATUS of an unknown job.
my $st = $client->get_status("127.0.0.1:$port//H:nowhere:1");
die "get_status: unknown job reported known\n" if $st && $st->known;

# The admin protocol through the client's status call.
my $servers = $client->get_job_server_status;
my ($js) = values %$servers;
die "status: no reverse row\n" unless $js->{reverse} && $js->{reverse}{capable} == 1;

my $bye = $client->do_task(quit => "", { timeout => 20 });
die "quit: no result\n" unless defined $bye && $$bye eq "bye";
print "ALL OK\n";
