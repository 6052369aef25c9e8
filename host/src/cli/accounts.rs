//! The `user` and `key` commands: manage accounts in the database that `serve` uses (found from the
//! same `--config FILE`, `--data DIR` and `--database`). They work while the server runs (SQLite in WAL
//! mode allows a second process; PostgreSQL is shared anyway), and every change writes an audit row with the actor `cli:<OS user>`.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::accounts::db::Pool;
use crate::accounts::keys;
use crate::accounts::users::{self, parse_role};
use crate::bindings::types::Role;
use crate::config::{Config, Overrides};

/// Where the database is: the same flags as `serve`.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// TOML configuration laid over the embedded defaults (for `data_dir` and `database`).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Directory for the host's own data (where the database is by default).
    #[arg(long = "data", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The database: a SQLite file or a postgres:// URL (overrides the configuration).
    #[arg(long, value_name = "URL", env = "PLUGIN_HOST_DATABASE", global = true)]
    database: Option<String>,
}

/// `plugin-host user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is asked for without echo, or read from stdin).
    Add {
        name: String,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Remove a user with their keys and sessions (never the last admin).
    Remove { name: String },
}

/// `plugin-host key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key and print it (once: only its hash is kept).
    Create {
        /// The key's owner.
        #[arg(long)]
        user: String,
        /// The key's role (at most the owner's; default: the owner's).
        #[arg(long)]
        role: Option<String>,
        /// A path prefix the key is limited to (repeatable; none: every path).
        #[arg(long = "scope", value_name = "PREFIX")]
        scopes: Vec<String>,
        /// When the key stops working: 30d, 12h, 2027-01-31 or 2027-01-31T12:00:00Z (UTC).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the keys themselves).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by id or visible prefix.
    Revoke { key: String },
}

/// Who the audit log names for CLI changes.
pub(crate) fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The configuration these flags select.
pub(crate) fn config_of(args: &DbArgs) -> Result<Config> {
    let overrides = Overrides {
        data_dir: args.data_dir.clone(),
        database: args.database.clone(),
        ..Overrides::default()
    };
    Config::load(args.config.as_deref(), &overrides)
}

async fn open(args: &DbArgs) -> Result<Pool> {
    let location = config_of(args)?.database_location();
    if let crate::accounts::db::Location::Sqlite(file) = &location
        && !file.exists()
    {
        // Most often a command run from another directory than the server, without --data or --config.
        eprintln!(
            "note: there is no database at {}; creating a new one (to use the server's, pass the --data DIR or --config FILE it runs with)",
            file.display()
        );
    }
    crate::accounts::db::open_location(&location).await
}

/// Read a new password: from stdin's first line, or twice from the terminal without echo.
fn read_password(from_stdin: bool) -> Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a password on; pass it with --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second = rpassword::prompt_password("Again: ").context("cannot read the password")?;
    if first != second {
        bail!("the passwords differ");
    }
    Ok(first)
}

async fn record(db: &Pool, action: &str, target: &str, detail: &str) -> Result<()> {
    crate::accounts::audit::record(db, &actor(), action, target, detail, "").await
}

fn time(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{}", ms / 1000))
}

/// Run a `user` command.
pub async fn user(args: DbArgs, command: UserCommand) -> Result<ExitCode> {
    let db = open(&args).await?;
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            users::check_name(&name)?;
            let password = read_password(password_stdin)?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = users::create(&db, &name, &password, role).await?;
            record(&db, "user.add", &user.name, &format!("role {}", user.role)).await?;
            println!("created {} user {}", user.role, user.name);
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            users::set_password(&db, &name, &password).await?;
            record(&db, "user.passwd", &name, "").await?;
            println!("password of {name} changed; their sessions have ended");
        }
        UserCommand::List => {
            println!("{:<32}  {:<5}  CREATED (unix s)", "NAME", "ROLE");
            for u in users::list(&db).await? {
                println!("{:<32}  {:<5}  {}", u.name, u.role, u.created / 1000);
            }
        }
        UserCommand::Remove { name } => {
            users::remove(&db, &name).await?;
            record(&db, "user.remove", &name, "").await?;
            println!("removed user {name} with their keys and sessions");
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Run a `key` command.
pub async fn key(args: DbArgs, command: KeyCommand) -> Result<ExitCode> {
    let db = open(&args).await?;
    match command {
        KeyCommand::Create {
            user,
            role,
            scopes,
            expires,
        } => {
            let role = role.as_deref().map(parse_role).transpose()?;
            let expires = expires
                .as_deref()
                .map(|e| keys::parse_expiry(e, crate::clock::unix_ms()))
                .transpose()?;
            let new = keys::create(&db, &user, role, &scopes, expires).await?;
            let detail = format!(
                "id {} role {} scopes [{}]",
                new.info.id,
                new.info.role,
                new.info.scopes.join(",")
            );
            record(&db, "key.create", &user, &detail).await?;
            eprintln!(
                "created key {} for {user} (role {}); it is shown only now:",
                new.info.id, new.info.role
            );
            println!("{}", new.key);
        }
        KeyCommand::List { user } => {
            println!(
                "{:<16}  {:<12}  {:<20}  {:<5}  {:<7}  {:<12}  {:<12}  SCOPES",
                "ID", "PREFIX", "OWNER", "ROLE", "STATE", "EXPIRES", "LAST USED"
            );
            let now = crate::clock::unix_ms();
            for k in keys::list(&db, user.as_deref()).await? {
                let state = if k.revoked {
                    "revoked"
                } else if k.expires_at.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{:<16}  {:<12}  {:<20}  {:<5}  {:<7}  {:<12}  {:<12}  {}",
                    k.id,
                    k.prefix,
                    k.owner,
                    k.role,
                    state,
                    time(k.expires_at),
                    time(k.last_used_at),
                    if k.scopes.is_empty() {
                        "*".to_owned()
                    } else {
                        k.scopes.join(",")
                    }
                );
            }
        }
        KeyCommand::Revoke { key } => {
            let info = keys::revoke(&db, &key).await?;
            record(&db, "key.revoke", &info.owner, &format!("id {}", info.id)).await?;
            println!("revoked key {} of {}", info.id, info.owner);
        }
    }
    db.close().await;
    Ok(ExitCode::SUCCESS)
}
