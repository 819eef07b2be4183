//! keepalived's command line: the same short and long options, `getopt_long`
//! style (`-nlD`, `-f FILE`, `-fFILE`, `--use-file FILE`, `--use-file=FILE`).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub config_file: Option<PathBuf>,
    pub vrrp_only: bool,
    pub check_only: bool,
    pub log_console: bool,
    pub log_detail: bool,
    pub log_facility: Option<String>,
    pub no_syslog: bool,
    pub dont_fork: bool,
    pub dump_conf: bool,
    pub pid_file: Option<PathBuf>,
    pub vrrp_pid_file: Option<PathBuf>,
    pub checkers_pid_file: Option<PathBuf>,
    pub config_id: Option<String>,
    /// `-t` / `--config-test[=FILE]`.
    pub config_test: Option<Option<PathBuf>>,
    /// `-T ...`: everything after it is genhash's command line.
    pub genhash: Option<Vec<OsString>>,
    pub dont_release_vrrp: bool,
    pub dont_release_ipvs: bool,
    pub release_vips: bool,
    pub version: bool,
    pub help: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    UnknownOption(String),
    MissingValue(String),
    UnexpectedValue(String),
    Unsupported(String),
    UnexpectedArgument(String),
    NotUnicode(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownOption(o) => write!(f, "unknown option '{o}'"),
            CliError::MissingValue(o) => write!(f, "option '{o}' requires a value"),
            CliError::UnexpectedValue(o) => write!(f, "option '{o}' does not take a value"),
            CliError::Unsupported(o) => write!(
                f,
                "option '{o}' is a keepalived option that keepalived-rs does not support"
            ),
            CliError::UnexpectedArgument(a) => write!(f, "unexpected argument '{a}'"),
            CliError::NotUnicode(a) => write!(f, "argument '{a}' is not valid UTF-8"),
        }
    }
}

impl std::error::Error for CliError {}

#[derive(Clone, Copy, PartialEq)]
enum Arg {
    None,
    Required,
    Optional,
}

/// (short, long, argument). Order matches `keepalived --help`.
const OPTIONS: &[(Option<char>, &str, Arg)] = &[
    (Some('f'), "use-file", Arg::Required),
    (Some('P'), "vrrp", Arg::None),
    (Some('C'), "check", Arg::None),
    (Some('B'), "no_bfd", Arg::None),
    (None, "all", Arg::None),
    (Some('l'), "log-console", Arg::None),
    (Some('D'), "log-detail", Arg::None),
    (Some('S'), "log-facility", Arg::Required),
    (Some('G'), "no-syslog", Arg::None),
    (Some('X'), "release-vips", Arg::None),
    (Some('V'), "dont-release-vrrp", Arg::None),
    (Some('I'), "dont-release-ipvs", Arg::None),
    (Some('R'), "dont-respawn", Arg::None),
    (Some('n'), "dont-fork", Arg::None),
    (Some('d'), "dump-conf", Arg::None),
    (Some('p'), "pid", Arg::Required),
    (Some('r'), "vrrp_pid", Arg::Required),
    (Some('c'), "checkers_pid", Arg::Required),
    (Some('b'), "bfd_pid", Arg::Required),
    (Some('i'), "config-id", Arg::Required),
    (Some('t'), "config-test", Arg::Optional),
    (Some('T'), "genhash", Arg::None),
    (Some('v'), "version", Arg::None),
    (Some('h'), "help", Arg::None),
];

/// keepalived options with no meaning here (SNMP, namespaces, core dumps...).
const UNSUPPORTED: &[(Option<char>, &str)] = &[
    (Some('x'), "snmp"),
    (Some('A'), "snmp-agent-socket"),
    (Some('s'), "namespace"),
    (Some('a'), "address-monitoring"),
    (Some('m'), "core-dump"),
    (Some('M'), "core-dump-pattern"),
    (Some('g'), "log-file"),
    (Some('e'), "all-config"),
    (Some('u'), "umask"),
    (None, "flush-log-file"),
    (None, "signum"),
    (None, "perf"),
    (None, "debug"),
    (None, "no-mem-check"),
    (None, "ignore-sigint"),
];

pub const USAGE: &str = "\
Usage: keepalived [OPTION...]
  -f, --use-file=FILE          Use the specified configuration file
                               (default /etc/keepalived.conf, else
                               /etc/keepalived/keepalived.conf)
  -P, --vrrp                   Only run with VRRP subsystem
  -C, --check                  Only run with Health-checker subsystem
  -B, --no_bfd                 Don't run BFD subsystem (accepted; no BFD here)
      --all                    Force all subsystems to run
  -l, --log-console            Log messages to local console
  -D, --log-detail             Detailed log messages
  -S, --log-facility=[0-7|local0-7|user|daemon]
                               Set syslog facility to LOG_LOCAL[0-7] (default daemon)
  -G, --no-syslog              Don't log via syslog
  -X, --release-vips           Drop VIPs on transition from signal
  -V, --dont-release-vrrp      Don't remove VRRP VIPs and VROUTEs on daemon stop
  -I, --dont-release-ipvs      Don't remove IPVS topology on daemon stop
  -R, --dont-respawn           Don't respawn child processes (accepted; one process)
  -n, --dont-fork              Don't fork the daemon process
  -d, --dump-conf              Dump the configuration data
  -p, --pid=FILE               Use specified pidfile for parent process
  -r, --vrrp_pid=FILE          Use specified pidfile for VRRP child process
  -c, --checkers_pid=FILE      Use specified pidfile for checkers child process
  -i, --config-id id           Skip any configuration lines beginning '@' that
                               don't match id, or any lines beginning @^ that do
  -t, --config-test[=LOG_FILE] Check the configuration for obvious errors
  -T, --genhash                Enter genhash utilities mode (all later options are genhash's)
  -v, --version                Display the version number
  -h, --help                   Display this help message
";

fn to_string(arg: &OsString) -> Result<String, CliError> {
    arg.to_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::NotUnicode(arg.to_string_lossy().into_owned()))
}

/// Parses the arguments after argv[0].
pub fn parse(args: &[OsString]) -> Result<Options, CliError> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let arg = to_string(&args[i])?;
        i += 1;
        // (long name, inline value) for each option in this argument.
        let mut found: Vec<(&'static str, Arg, Option<String>, String)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            match OPTIONS.iter().find(|(_, l, _)| *l == name) {
                Some((_, l, kind)) => found.push((l, *kind, inline, format!("--{name}"))),
                None if UNSUPPORTED.iter().any(|(_, l)| *l == name) => {
                    return Err(CliError::Unsupported(format!("--{name}")))
                }
                None => return Err(CliError::UnknownOption(format!("--{name}"))),
            }
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let chars: Vec<char> = shorts.chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some((_, long, kind)) = OPTIONS.iter().find(|(s, _, _)| *s == Some(c)) else {
                    if UNSUPPORTED.iter().any(|(s, _)| *s == Some(c)) {
                        return Err(CliError::Unsupported(format!("-{c}")));
                    }
                    return Err(CliError::UnknownOption(format!("-{c}")));
                };
                if *kind != Arg::None && j < chars.len() {
                    // `-fFILE` / `-tFILE`: the rest of the word is the value.
                    let rest: String = chars[j..].iter().collect();
                    let rest = rest.strip_prefix('=').map(str::to_string).unwrap_or(rest);
                    found.push((long, *kind, Some(rest), format!("-{c}")));
                    break;
                }
                found.push((long, *kind, None, format!("-{c}")));
            }
        } else {
            return Err(CliError::UnexpectedArgument(arg));
        }

        for (long, kind, inline, shown) in found {
            let value = match (kind, inline) {
                (Arg::None, Some(_)) => return Err(CliError::UnexpectedValue(shown)),
                (Arg::None, None) => None,
                (Arg::Required, Some(v)) => Some(v),
                (Arg::Required, None) => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| CliError::MissingValue(shown.clone()))?;
                    i += 1;
                    Some(to_string(v)?)
                }
                (Arg::Optional, v) => v,
            };
            let path = || value.clone().map(PathBuf::from);
            match long {
                "use-file" => o.config_file = path(),
                "vrrp" => o.vrrp_only = true,
                "check" => o.check_only = true,
                "no_bfd" | "dont-respawn" => {}
                "all" => {
                    o.vrrp_only = false;
                    o.check_only = false;
                }
                "log-console" => o.log_console = true,
                "log-detail" => o.log_detail = true,
                "log-facility" => o.log_facility = value,
                "no-syslog" => o.no_syslog = true,
                "release-vips" => o.release_vips = true,
                "dont-release-vrrp" => o.dont_release_vrrp = true,
                "dont-release-ipvs" => o.dont_release_ipvs = true,
                "dont-fork" => o.dont_fork = true,
                "dump-conf" => o.dump_conf = true,
                "pid" => o.pid_file = path(),
                "vrrp_pid" => o.vrrp_pid_file = path(),
                "checkers_pid" | "bfd_pid" => {
                    if long == "checkers_pid" {
                        o.checkers_pid_file = path();
                    }
                }
                "config-id" => o.config_id = value,
                "config-test" => o.config_test = Some(path()),
                "genhash" => {
                    o.genhash = Some(args[i..].to_vec());
                    return Ok(o);
                }
                "version" => o.version = true,
                _ => o.help = true,
            }
        }
    }
    Ok(o)
}

/// `keepalived-rs 0.1.0 (git abc1234, x86_64-unknown-linux-musl)`.
pub fn version_line() -> String {
    format!(
        "Keepalived-rs v{} (git {}, {}, {} build), keepalived 2.2.7 compatible",
        env!("CARGO_PKG_VERSION"),
        option_env!("KEEPALIVED_RS_GIT_COMMIT").unwrap_or("unknown"),
        option_env!("KEEPALIVED_RS_TARGET").unwrap_or("unknown target"),
        option_env!("KEEPALIVED_RS_PROFILE").unwrap_or("unknown"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, CliError> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn short_long_and_combined() {
        let o = p(&[
            "-nlD",
            "-f",
            "/a.conf",
            "--pid=/run/x.pid",
            "-S",
            "local3",
            "-iMASTER",
        ])
        .unwrap();
        assert!(o.dont_fork && o.log_console && o.log_detail);
        assert_eq!(o.config_file, Some(PathBuf::from("/a.conf")));
        assert_eq!(o.pid_file, Some(PathBuf::from("/run/x.pid")));
        assert_eq!(o.log_facility.as_deref(), Some("local3"));
        assert_eq!(o.config_id.as_deref(), Some("MASTER"));
        let o = p(&["--use-file", "/b.conf", "-fc.conf"]).unwrap();
        assert_eq!(o.config_file, Some(PathBuf::from("c.conf")));
    }

    #[test]
    fn config_test_optional_value() {
        assert_eq!(p(&["-t"]).unwrap().config_test, Some(None));
        assert_eq!(p(&["--config-test"]).unwrap().config_test, Some(None));
        assert_eq!(
            p(&["--config-test=/tmp/log"]).unwrap().config_test,
            Some(Some(PathBuf::from("/tmp/log")))
        );
        // An optional value is never taken from the next word.
        let o = p(&["-t", "-f", "x.conf"]).unwrap();
        assert_eq!(o.config_test, Some(None));
        assert_eq!(o.config_file, Some(PathBuf::from("x.conf")));
    }

    #[test]
    fn genhash_takes_the_rest() {
        let o = p(&["-T", "-s", "1.2.3.4", "-p", "80", "-u", "/"]).unwrap();
        assert_eq!(o.genhash.unwrap().len(), 6);
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(p(&["-Z"]), Err(CliError::UnknownOption("-Z".into())));
        assert_eq!(
            p(&["--frobnicate"]),
            Err(CliError::UnknownOption("--frobnicate".into()))
        );
        assert_eq!(p(&["-x"]), Err(CliError::Unsupported("-x".into())));
        assert_eq!(p(&["-f"]), Err(CliError::MissingValue("-f".into())));
        assert_eq!(
            p(&["--dont-fork=yes"]),
            Err(CliError::UnexpectedValue("--dont-fork".into()))
        );
        assert_eq!(
            p(&["stray"]),
            Err(CliError::UnexpectedArgument("stray".into()))
        );
        assert_eq!(
            CliError::UnknownOption("-Z".into()).to_string(),
            "unknown option '-Z'"
        );
    }
}
