//! Where a shared index is: the database URL or key=value settings the user gave, turned into
//! a connection the way `psql` would make it (user, password from `PGPASSWORD` or `~/.pgpass`,
//! `sslmode`, `sslrootcert`). What is shown of it is built from the parsed settings, never
//! from the text as given: the password may sit anywhere in text that a hand-made redaction
//! misreads (a `/` or `?` in it, a percent-encoded key, key=value form).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::tls::{self, SslMode};
use crate::error::{Error, Result};
use crate::shown::escaped;

/// How long to wait for the server to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database, given as a URL (`postgres://user@host:port/dbname?sslmode=...`) or
/// as libpq's key=value settings (`host=db dbname=photos sslmode=verify-full`), and the
/// library in it. Its `Display` and `Debug` show a form built from the parsed settings (user,
/// hosts, ports, database, `sslmode`), never the text as given, so never a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The settings as given; may hold a password, so it is never shown.
    input: String,
    /// What is shown of it, built from the parsed settings.
    shown: String,
    /// The library's name; None: the canonical path of the folder being indexed.
    pub library: Option<String>,
    /// The library's folder on this machine, when the folder being worked on is inside it;
    /// None: the library's recorded folder that holds it, or else the folder being worked on.
    pub root: Option<PathBuf>,
}

/// What the `postgres` crate is handed, and the TLS settings taken out of the input first
/// (the crate knows neither `verify-ca`/`verify-full` nor `sslrootcert`).
struct Settings {
    config: postgres::Config,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl Target {
    /// Checks that `input` is a PostgreSQL URL or key=value settings. Nothing is contacted
    /// yet. A refusal never repeats the input.
    pub fn parse(input: &str, library: Option<String>) -> Result<Target> {
        let input = input.trim().to_string();
        let settings = settings(&input)
            .map_err(|e| Error::Usage(format!("the database address cannot be used: {e}")))?;
        let shown = shown(&settings);
        if let Some(mode) = &settings.sslmode {
            SslMode::parse(mode).map_err(|e| Error::Usage(format!("{shown}: {e}")))?;
        }
        Ok(Target {
            input,
            shown,
            library,
            root: None,
        })
    }

    /// Connects, with TLS as `sslmode` asks.
    pub fn connect(&self) -> Result<postgres::Client> {
        let (config, mode, root) = self.config()?;
        let connector = tls::connector(mode, root.as_deref())
            .map_err(|e| Error::Index(format!("{self}: {e}")))?;
        config
            .connect(connector)
            .map_err(|e| Error::Index(format!("cannot connect to {self}: {}", describe(&e))))
    }

    /// The client configuration, the TLS mode and the CA file (`PGSSLMODE` and
    /// `PGSSLROOTCERT` where the input sets none, as libpq reads them).
    fn config(&self) -> Result<(postgres::Config, SslMode, Option<PathBuf>)> {
        let Settings {
            mut config,
            sslmode,
            sslrootcert,
        } = settings(&self.input).map_err(|e| Error::Usage(format!("{self}: {e}")))?;
        let mode = sslmode.or_else(|| std::env::var("PGSSLMODE").ok());
        let root = sslrootcert.or_else(|| std::env::var("PGSSLROOTCERT").ok());
        let root = root.map(PathBuf::from).or_else(default_root);
        // libpq's default with the public CAs is the one mode they are allowed with.
        let default = match root.as_deref().is_some_and(tls::is_system) {
            true => "verify-full",
            false => "prefer",
        };
        let mode = SslMode::parse(mode.as_deref().unwrap_or(default))
            .map_err(|e| Error::Usage(format!("{self}: {e}")))?;
        config.ssl_mode(mode.negotiation());
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("lookalike");
        fill_defaults(&mut config);
        Ok((config, mode, root))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("database", &self.shown)
            .field("library", &self.library)
            .field("root", &self.root)
            .finish()
    }
}

/// The parsed settings of a URL or of key=value settings. The reasons given never quote the
/// input: a password may be anywhere in text that did not parse.
fn settings(input: &str) -> std::result::Result<Settings, String> {
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| input.starts_with(scheme));
    let (rest, sslmode, sslrootcert) = match is_url {
        true => url_without_tls(input)?,
        false => key_values_without_tls(input)?,
    };
    let config = postgres::Config::from_str(&rest).map_err(|e| parse_failure(&e))?;
    if config.get_hosts().iter().any(|host| match host {
        postgres::config::Host::Tcp(name) => name.contains('@'),
        #[cfg(unix)]
        postgres::config::Host::Unix(_) => false,
    }) {
        // A password with an `@` in it, not written `%40`: part of it would be taken for the
        // host name, and shown.
        return Err("a host name holds '@' (write an @ in a password as %40)".into());
    }
    Ok(Settings {
        config,
        sslmode,
        sslrootcert,
    })
}

type WithoutTls = (String, Option<String>, Option<String>);

/// A URL without its `sslmode` and `sslrootcert` parameters, and their values. The
/// parameters are found as the `postgres` crate finds them: after the first `@`, the host
/// and the path; keys are percent-decoded.
fn url_without_tls(url: &str) -> std::result::Result<WithoutTls, String> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(query) = url[after_credentials..].find('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (base, mut params) = url.split_at(after_credentials + query + 1);
    let (mut sslmode, mut sslrootcert, mut kept) = (None, None, Vec::new());
    while !params.is_empty() {
        let Some((key, rest)) = params.split_once('=') else {
            return Err("a parameter after ? has no value".into());
        };
        let (value, rest) = rest.split_once('&').unwrap_or((rest, ""));
        match percent_decoded(key)?.as_str() {
            "sslmode" => sslmode = Some(percent_decoded(value)?),
            "sslrootcert" => sslrootcert = Some(percent_decoded(value)?),
            _ => kept.push(format!("{key}={value}")),
        }
        params = rest;
    }
    let base = base.trim_end_matches('?');
    let rest = match kept.is_empty() {
        true => base.to_string(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((rest, sslmode, sslrootcert))
}

/// key=value settings without `sslmode` and `sslrootcert`, and their values; the others are
/// written again quoted, for the `postgres` crate to parse.
fn key_values_without_tls(text: &str) -> std::result::Result<WithoutTls, String> {
    let (mut sslmode, mut sslrootcert, mut kept) = (None, None, Vec::new());
    for (key, value) in key_values(text)? {
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => sslrootcert = Some(value),
            _ => {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
    }
    Ok((kept.join(" "), sslmode, sslrootcert))
}

/// libpq's `key=value` settings: separated by spaces, values in single quotes where they
/// hold spaces, `\` escaping the next character.
fn key_values(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let not_settings =
        "it is neither a postgres:// URL nor key=value settings such as host=HOST dbname=NAME";
    let mut chars = text.chars().peekable();
    let mut pairs = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(not_settings.into());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
                None if quoted => return Err("a quoted value is not closed".into()),
                None => break,
            }
        }
        if value.is_empty() && !quoted {
            return Err(not_settings.into());
        }
        pairs.push((key, value));
    }
    match pairs.is_empty() {
        true => Err(not_settings.into()),
        false => Ok(pairs),
    }
}

/// `%XX` escapes decoded, as the `postgres` crate decodes the parts of a URL.
fn percent_decoded(text: &str) -> std::result::Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "a parameter is not UTF-8 once decoded".to_string())
}

/// Why the `postgres` crate refused the settings, without quoting them: the name of an option
/// it does not know is given only when it looks like one.
fn parse_failure(e: &postgres::Error) -> String {
    let text = std::error::Error::source(e).map_or_else(String::new, |s| s.to_string());
    let quoted = text.split('`').nth(1).unwrap_or_default();
    let plain = !quoted.is_empty()
        && quoted.len() <= 40
        && quoted.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    match (
        text.starts_with("invalid value"),
        text.starts_with("unknown option"),
        plain,
    ) {
        (true, _, true) => format!("the value of {quoted} is not valid"),
        (_, true, true) => format!("{quoted} is not a setting PostgreSQL knows"),
        _ => "it is neither a postgres://USER@HOST:PORT/DBNAME URL nor key=value settings \
              such as host=HOST dbname=NAME"
            .to_string(),
    }
}

/// What is shown of the settings: `postgres://user@host:port,host:port/dbname?sslmode=mode`,
/// made from what was parsed (never the password), its names' control characters escaped.
fn shown(settings: &Settings) -> String {
    use postgres::config::Host;
    let config = &settings.config;
    let user = config
        .get_user()
        .map_or_else(String::new, |u| format!("{}@", escaped(u)));
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => escaped(name),
                #[cfg(unix)]
                Host::Unix(path) => escaped(&path.to_string_lossy()),
            };
            // One port for every host, or one each.
            match ports.get(i).or(ports.first().filter(|_| ports.len() == 1)) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let dbname = config
        .get_dbname()
        .map_or_else(String::new, |d| format!("/{}", escaped(d)));
    let mode = settings
        .sslmode
        .as_deref()
        .filter(|m| SslMode::parse(m).is_ok())
        .map_or_else(String::new, |m| format!("?sslmode={m}"));
    format!("postgres://{user}{}{dbname}{mode}", hosts.join(","))
}

/// What libpq would fill in: the user from `PGUSER` or the login name, the database named
/// after the user, and the password from `PGPASSWORD` or the password file.
fn fill_defaults(config: &mut postgres::Config) {
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "postgres".to_string());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let user = config.get_user().unwrap_or("postgres").to_string();
        config.dbname(&user);
    }
    if config.get_password().is_some() {
        return;
    }
    if let Ok(password) = std::env::var("PGPASSWORD") {
        config.password(password);
        return;
    }
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(host)) => host.clone(),
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let (db, user) = (
        config.get_dbname().unwrap_or_default().to_string(),
        config.get_user().unwrap_or_default().to_string(),
    );
    if let Some(password) = password_file().and_then(|f| pgpass_lookup(&f, &host, port, &db, &user))
    {
        config.password(password);
    }
}

/// `PGPASSFILE`, or `~/.pgpass` (`%APPDATA%\postgresql\pgpass.conf` on Windows).
fn password_file() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(file));
    }
    let home = directories::BaseDirs::new()?;
    match cfg!(windows) {
        true => Some(home.config_dir().join("postgresql").join("pgpass.conf")),
        false => Some(home.home_dir().join(".pgpass")),
    }
}

/// The password for this connection in a password file (`host:port:database:user:password`
/// lines, `*` matching anything, `\:` and `\\` escaped). Like libpq, a file that others can
/// read is ignored on Unix.
pub fn pgpass_lookup(file: &Path, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: the password file {} is ignored: others may read it (chmod 0600)",
                file.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(file).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), db, user];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(pgpass_fields)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut fields| fields.swap_remove(4))
}

/// The fields of one password-file line.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().into_iter().for_each(|f| {
                f.extend(chars.next());
            }),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().into_iter().for_each(|f| f.push(c)),
        }
    }
    fields
}

/// libpq's default CA file, `~/.postgresql/root.crt`, when it exists.
fn default_root() -> Option<PathBuf> {
    let home = directories::BaseDirs::new()?;
    let root = home.home_dir().join(".postgresql").join("root.crt");
    root.is_file().then_some(root)
}

/// Whether `e` means the connection is gone: closed, broken at the socket (a reset when the
/// server or the network drops it mid-query), or ended by the server (an administrator, a
/// shutdown or a crash: SQLSTATE class 57P).
pub fn lost_connection(e: &postgres::Error) -> bool {
    let at_the_socket = std::iter::successors(std::error::Error::source(e), |c| c.source())
        .any(|cause| cause.is::<std::io::Error>());
    let ended_by_the_server = e
        .code()
        .is_some_and(|state| state.code().starts_with("57P"));
    e.is_closed() || at_the_socket || ended_by_the_server
}

/// A client error with its cause (the `postgres` crate shows "db error" alone otherwise).
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything shown of a target, and of its refusal.
    fn everything_shown(input: &str) -> String {
        match Target::parse(input, None) {
            Ok(target) => {
                let config = target
                    .config()
                    .map_or_else(|e| e.to_string(), |_| String::new());
                format!("{target} {target:?} {config}")
            }
            Err(e) => format!("{e} {e:?}"),
        }
    }

    /// The password the parsed target would send.
    fn password(input: &str) -> Option<Vec<u8>> {
        let (config, _, _) = Target::parse(input, None).ok()?.config().ok()?;
        config.get_password().map(<[u8]>::to_vec)
    }

    #[test]
    fn a_password_never_shows() {
        let shown = Target::parse(
            "postgres://ann:s3cret@db.example:5433/photos?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(
            shown.to_string(),
            "postgres://ann@db.example:5433/photos?sslmode=require"
        );
        let shown = Target::parse(
            "postgresql://ann@db/photos?password=s3cret&sslmode=verify-full",
            None,
        )
        .unwrap();
        assert_eq!(
            shown.to_string(),
            "postgres://ann@db:5432/photos?sslmode=verify-full"
        );
        let target = Target::parse("postgres://ann:s3cret@db/photos", None).unwrap();
        assert!(!format!("{target} {target:?}").contains("s3cret"));
    }

    #[test]
    fn passwords_that_a_hand_made_redaction_misread_never_show() {
        let cases = [
            ("postgres://ann:pa/ss@db/x", "pa/ss"),
            ("postgres://ann:pa?ss@db/x", "pa?ss"),
            (
                "postgres://ann@db/x?pass%77ord=s3cret&sslmode=require",
                "s3cret",
            ),
            ("postgres://ann@db/x?%70assword=s3cret", "s3cret"),
            ("host=db password=s3cret dbname=photos", "s3cret"),
            ("host=db password='pa ss' dbname=photos user=ann", "pa ss"),
        ];
        for (input, secret) in cases {
            let shown = everything_shown(input);
            assert!(!shown.contains(secret), "{input} shows {shown}");
            assert_eq!(
                password(input).as_deref(),
                Some(secret.as_bytes()),
                "{input} is read as the driver reads it"
            );
        }
        let target = Target::parse("host=db port=5433 password=x dbname=photos", None).unwrap();
        assert_eq!(target.to_string(), "postgres://db:5433/photos");
    }

    #[test]
    fn input_that_does_not_parse_is_never_repeated() {
        let refused = [
            "mysql://ann:s3cret@db/photos",
            "host=db password=s3cret dbname",
            "host=db password='s3cret dbname=photos",
            "s3cret",
            "postgres://ann:s3cret@db/photos?sslmode=sometimes",
            "postgres://ann:s3cret@db/photos?s3cret",
            "postgres://ann:s3cret@db:port/photos",
            "postgres://ann:pa@s3cret@db/photos",
            "host=db pa_s3cret=x",
        ];
        for input in refused {
            let e = Target::parse(input, None).expect_err(input).to_string();
            assert!(!e.contains("s3cret"), "{input}: {e}");
        }
        let e = Target::parse("postgres://ann:s3cret@db/photos?sslmode=sometimes", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode"), "{e}");
    }

    #[test]
    fn the_public_authorities_go_only_with_verify_full() {
        let (_, mode, _) = Target::parse("postgres://db/x?sslrootcert=system", None)
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(mode, SslMode::VerifyFull, "libpq's default with system");
        let (_, mode, root) = Target::parse("host=db sslmode=verify-ca sslrootcert=/ca.pem", None)
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(
            (mode, root),
            (SslMode::VerifyCa, Some(PathBuf::from("/ca.pem")))
        );
    }

    #[test]
    fn password_file_lines_match_like_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:ann:wrong\ndb:*:photos:ann:pa\\:ss\\\\word\n*:*:*:*:fallback\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let found = pgpass_lookup(&file, "db", 5432, "photos", "ann");
        assert_eq!(found.as_deref(), Some("pa:ss\\word"));
        let found = pgpass_lookup(&file, "elsewhere", 5432, "photos", "bob");
        assert_eq!(found.as_deref(), Some("fallback"));
    }
}
