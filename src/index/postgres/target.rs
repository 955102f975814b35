//! Where a shared index is: the database URL the user gave, turned into a connection the way
//! `psql` would make it (user, password from `PGPASSWORD` or `~/.pgpass`, `sslmode`,
//! `sslrootcert`), and shown without its password wherever it appears.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::tls::{self, SslMode};
use crate::error::{Error, Result};

/// How long to wait for the server to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database given as `postgres://user@host:port/dbname`, and the library in it.
/// Its `Display` and `Debug` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given; may hold a password, so it is never shown.
    url: String,
    /// The library's name; None: the canonical path of the folder being indexed.
    pub library: Option<String>,
    /// The library's folder on this machine, when the folder being worked on is inside it;
    /// None: the folder being worked on is the library's.
    pub root: Option<PathBuf>,
}

impl Target {
    /// Checks that `url` is a PostgreSQL URL. Nothing is contacted yet.
    pub fn parse(url: &str, library: Option<String>) -> Result<Target> {
        let target = Target {
            url: url.trim().to_string(),
            library,
            root: None,
        };
        if !(target.url.starts_with("postgres://") || target.url.starts_with("postgresql://")) {
            return Err(Error::Usage(format!(
                "{target} is not a PostgreSQL URL: expected postgres://USER@HOST:PORT/DBNAME"
            )));
        }
        target.config()?;
        Ok(target)
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

    /// The client configuration, the TLS mode and the CA file.
    fn config(&self) -> Result<(postgres::Config, SslMode, Option<PathBuf>)> {
        let (base, params) = split_query(&self.url);
        let mut mode = std::env::var("PGSSLMODE").ok();
        let mut root = std::env::var("PGSSLROOTCERT").ok();
        let mut kept = Vec::new();
        for (key, value) in params {
            match key.as_str() {
                "sslmode" => mode = Some(value),
                "sslrootcert" => root = Some(value),
                _ => kept.push(format!("{key}={value}")),
            }
        }
        let url = match kept.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", kept.join("&")),
        };
        // The parser's messages name the option, never the password.
        let mut config =
            postgres::Config::from_str(&url).map_err(|e| Error::Usage(format!("{self}: {e}")))?;
        let mode = SslMode::parse(mode.as_deref().unwrap_or("prefer"))
            .map_err(|e| Error::Usage(format!("{self}: {e}")))?;
        config.ssl_mode(mode.negotiation());
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("lookalike");
        fill_defaults(&mut config);
        Ok((config, mode, root.map(PathBuf::from).or_else(default_root)))
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("url", &redact(&self.url))
            .field("library", &self.library)
            .field("root", &self.root)
            .finish()
    }
}

/// The URL without its password: `postgres://user:secret@host/db?password=x` becomes
/// `postgres://user@host/db`.
pub fn redact(url: &str) -> String {
    let (base, params) = split_query(url);
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    let kept: Vec<String> = params
        .into_iter()
        .filter(|(key, _)| key != "password")
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    let query = match kept.is_empty() {
        true => String::new(),
        false => format!("?{}", kept.join("&")),
    };
    format!("{scheme}://{authority}{path}{query}")
}

/// The URL before `?`, and its `key=value` parameters.
fn split_query(url: &str) -> (&str, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url, Vec::new());
    };
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    (base, params)
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

    #[test]
    fn a_password_never_shows() {
        let shown = redact("postgres://ann:s3cret@db.example:5433/photos?sslmode=require");
        assert_eq!(
            shown,
            "postgres://ann@db.example:5433/photos?sslmode=require"
        );
        let shown = redact("postgresql://ann@db/photos?password=s3cret&sslmode=verify-full");
        assert_eq!(shown, "postgresql://ann@db/photos?sslmode=verify-full");
        let target = Target::parse("postgres://ann:s3cret@db/photos", None).unwrap();
        assert!(!format!("{target} {target:?}").contains("s3cret"));
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

    #[test]
    fn a_bad_url_is_refused_without_showing_the_password() {
        let e = Target::parse("mysql://ann:s3cret@db/photos", None).unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        let e = Target::parse("postgres://ann:s3cret@db/photos?sslmode=sometimes", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode") && !e.contains("s3cret"), "{e}");
    }
}
