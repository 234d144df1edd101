//! Writes the man page vrrp-agent(8) and the bash, zsh and fish completions, generated from
//! the clap definitions in `vrrp_agent::cli`, into the directory given as the only argument.
//! `cargo xtask deb` runs it and packages the files; an example rather than a binary so that
//! the daemon itself carries no documentation generator.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;
use vrrp_agent::cli::{Cli, EXTENSION_KEYWORDS};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args_os().nth(1).expect("usage: gen-docs OUTDIR"));
    fs::create_dir_all(&dir)?;
    let cmd = Cli::command();

    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.write_all(keywords_section().as_bytes())?;
    page.write_all(files_section().as_bytes())?;
    man.render_extra_section(&mut page)?;
    man.render_version_section(&mut page)?;
    fs::write(dir.join("vrrp-agent.8"), page)?;

    for (shell, name) in [
        (Shell::Bash, "vrrp-agent.bash"),
        (Shell::Zsh, "_vrrp-agent"),
        (Shell::Fish, "vrrp-agent.fish"),
    ] {
        let mut out = fs::File::create(dir.join(name))?;
        clap_complete::generate(shell, &mut cmd.clone(), "vrrp-agent", &mut out);
    }
    Ok(())
}

/// roff text: a backslash starts an escape, and a line starting with `.` or `'` is a request.
fn roff(text: &str) -> String {
    let s = text.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn keywords_section() -> String {
    let mut s = String::from(
        ".SH \"CONFIGURATION KEYWORDS\"\n\
         vrrp\\-agent reads keepalived.conf (global_defs, vrrp_instance, vrrp_script, \
         vrrp_sync_group, include). It adds the keywords below; keepalived warns about them \
         as unknown and skips them, so one file can serve both daemons.\n",
    );
    for (kw, place, what) in EXTENSION_KEYWORDS {
        s.push_str(&format!(
            ".TP\n\\fB{}\\fR (in {})\n{}\n",
            roff(kw),
            roff(place),
            roff(what)
        ));
    }
    s
}

fn files_section() -> String {
    ".SH FILES\n\
     .TP\n/etc/vrrp\\-agent/keepalived.conf\nthe configuration the packaged systemd unit reads\n\
     .TP\n/lib/systemd/system/vrrp\\-agent.service\nthe systemd unit (Conflicts=keepalived.service)\n\
     .TP\n/run/vrrp\\-agent.sock\ncontrol socket (status, reload, handover)\n\
     .TP\n/tmp/vrrp\\-agent.data.json\nSIGUSR1 status dump\n\
     .SH \"SEE ALSO\"\nkeepalived.conf(5), keepalived(8), nft(8)\n"
        .to_string()
}
