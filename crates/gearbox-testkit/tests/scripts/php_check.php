<?php
// Shared by the PHP interop scripts: a failed check prints what failed and exits with 1.

function check($cond, $what) {
    if (!$cond) {
        fwrite(STDERR, "FAILED: $what\n");
        exit(1);
    }
}
