//! `gearbox`: submit jobs, run workers, inspect and operate Gearman servers. Invoked as
//! `gearman` or `gearadmin` (through a symlink) it behaves as those C tools do. See the
//! `gearbox_cli` module for what is where.

fn main() -> std::process::ExitCode {
    gearbox_cli::main()
}
