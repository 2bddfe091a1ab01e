//! # gearbox-dist: the files a package installs beside the binaries
//!
//! Man pages and shell completions are generated from the same clap definitions that parse
//! the command lines, so they cannot drift from the flags:
//!
//! - [`man_pages`]: `gearboxd(8)`, `gearbox(1)` and one `gearbox-SUBCOMMAND(1)` page per
//!   subcommand, with `clap_mangen`.
//! - [`completions`]: bash, zsh and fish completions for `gearboxd` and `gearbox`, with
//!   `clap_complete`, laid out as Debian installs them ([`Shell::install_path`]).
//! - [`generate`]: both, under one output directory; `src/main.rs` is its command line
//!   (`gearbox-dist OUTDIR`), which the Debian package build runs before `cargo deb`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};

/// The clap definition of `gearboxd`, named as installed.
pub fn gearboxd_command() -> Command {
    gearboxd::Args::command()
        .name("gearboxd")
        .bin_name("gearboxd")
}

/// The clap definition of `gearbox`, named as installed.
pub fn gearbox_command() -> Command {
    gearbox_cli::cli::Cli::command()
        .name("gearbox")
        .bin_name("gearbox")
}

/// A shell gearbox ships completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash, through the bash-completion package.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

impl Shell {
    /// Every shell completions are generated for.
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }

    /// Where Debian's shells look for a vendor completion of `bin`, relative to `/`.
    ///
    /// ```
    /// use gearbox_dist::Shell;
    /// assert_eq!(
    ///     Shell::Zsh.install_path("gearbox"),
    ///     std::path::PathBuf::from("usr/share/zsh/vendor-completions/_gearbox")
    /// );
    /// ```
    pub fn install_path(self, bin: &str) -> PathBuf {
        match self {
            Shell::Bash => PathBuf::from("usr/share/bash-completion/completions").join(bin),
            Shell::Zsh => PathBuf::from("usr/share/zsh/vendor-completions").join(format!("_{bin}")),
            Shell::Fish => {
                PathBuf::from("usr/share/fish/vendor_completions.d").join(format!("{bin}.fish"))
            }
        }
    }
}

/// Writes the man pages into `dir` (created if missing) and returns their paths.
pub fn man_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = vec![write_man(dir, gearboxd_command(), "8")?];
    let gearbox = gearbox_command();
    written.push(write_man(dir, gearbox.clone(), "1")?);
    for sub in gearbox.get_subcommands() {
        let name = format!("gearbox-{}", sub.get_name());
        // Each subcommand page carries the global flags it takes too.
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("gearbox {}", sub.get_name()));
        written.push(write_man(dir, page, "1")?);
    }
    Ok(written)
}

fn write_man(dir: &Path, cmd: Command, section: &str) -> io::Result<PathBuf> {
    let path = dir.join(format!("{}.{section}", cmd.get_name()));
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(section)
        .manual("gearbox")
        .source(format!("gearbox {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    fs::write(&path, page)?;
    Ok(path)
}

/// Writes every completion under `root` at its [`Shell::install_path`] and returns the paths.
pub fn completions(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for mut cmd in [gearboxd_command(), gearbox_command()] {
        let bin = cmd.get_name().to_owned();
        for shell in Shell::ALL {
            let path = root.join(shell.install_path(&bin));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut script = Vec::new();
            clap_complete::generate(shell.generator(), &mut cmd, &bin, &mut script);
            fs::write(&path, script)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Writes the man pages under `out/man` and the completions under `out/completions`.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = man_pages(&out.join("man"))?;
    written.extend(completions(&out.join("completions"))?);
    Ok(written)
}
