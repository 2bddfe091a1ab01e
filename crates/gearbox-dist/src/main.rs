//! `gearbox-dist OUTDIR`: writes the man pages (`OUTDIR/man`) and shell completions
//! (`OUTDIR/completions/usr/share/...`) that the Debian package installs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gearbox-dist OUTDIR");
        return ExitCode::from(2);
    };
    match gearbox_dist::generate(&PathBuf::from(out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gearbox-dist: {e}");
            ExitCode::FAILURE
        }
    }
}
