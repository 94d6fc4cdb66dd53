// SPDX-License-Identifier: GPL-2.0

//! `kjump-mangen OUTDIR`: kjump(8), a page per subcommand
//! (kjump-load(8), ...) and the bash, zsh and fish completions, made from
//! kjump's own command line definition, which is compiled in here from
//! its source (the CLI is defined once, in kjump's src/main.rs).
//! scripts/build-packages.sh runs it for the kjump package.

use clap::CommandFactory;
use clap_complete::Shell;
use std::{
    fs,
    io::{self, Write},
    path::Path,
    process::ExitCode,
};

#[allow(dead_code)]
#[path = "../../src/main.rs"]
mod kjump_main;

/// Writes `cmd`'s page in section 8 as OUTDIR/NAME.8, and one for each of
/// its subcommands (clap's own `help` aside).
fn pages(cmd: &clap::Command, out: &Path) -> io::Result<()> {
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("kjump {}", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    fs::File::create(out.join(format!("{name}.8")))?.write_all(&page)?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" && !sub.is_hide_set() {
            pages(sub, out)?;
        }
    }
    Ok(())
}

/// The completion scripts at the names their shells look for.
fn completions(cmd: &mut clap::Command, out: &Path) -> io::Result<()> {
    for (shell, file) in [
        (Shell::Bash, "kjump.bash"),
        (Shell::Zsh, "_kjump"),
        (Shell::Fish, "kjump.fish"),
    ] {
        let mut f = fs::File::create(out.join(file))?;
        clap_complete::generate(shell, cmd, "kjump", &mut f);
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: kjump-mangen OUTDIR");
        return ExitCode::from(2);
    };
    let out = Path::new(&out);
    let mut cmd = kjump_main::Cli::command();
    // Names the subcommands' pages kjump-load, kjump-exec, ...
    cmd.build();
    let r = fs::create_dir_all(out)
        .and_then(|()| pages(&cmd, out))
        .and_then(|()| completions(&mut cmd, out));
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kjump-mangen: {}: {e}", out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every subcommand gets its page, naming each of its long options,
    /// and the completions know every subcommand.
    #[test]
    fn pages_and_completions_cover_the_cli() {
        let out = std::env::temp_dir().join(format!("kjump-mangen-{}", std::process::id()));
        let mut cmd = kjump_main::Cli::command();
        cmd.build();
        fs::create_dir_all(&out).expect("out dir");
        pages(&cmd, &out).expect("pages");
        completions(&mut cmd, &out).expect("completions");
        let bash = fs::read_to_string(out.join("kjump.bash")).expect("kjump.bash");
        let top = fs::read_to_string(out.join("kjump.8")).expect("kjump.8");
        assert!(top.contains(".TH kjump 8"), "{top}");
        let subs: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        assert!(subs.len() >= 9);
        for sub in subs {
            let name = format!("kjump-{}", sub.get_name());
            let page = fs::read_to_string(out.join(format!("{name}.8")))
                .unwrap_or_else(|e| panic!("{name}.8: {e}"))
                .replace("\\-", "-");
            assert!(page.contains(&format!(".TH {name} 8")), "{name}.8: {page}");
            assert!(top.replace("\\-", "-").contains(&format!("{name}(8)")));
            for long in sub.get_arguments().filter_map(|a| a.get_long()) {
                assert!(
                    page.contains(&format!("--{long}")),
                    "{name}.8 lacks --{long}"
                );
            }
            assert!(bash.contains(sub.get_name()), "kjump.bash lacks {name}");
        }
        fs::remove_dir_all(&out).expect("cleanup");
    }
}
