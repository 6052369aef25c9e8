//! The plugin author's commands: `new`, `build`, `call`, `test` and `dev` (the work is in
//! [`crate::author`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::author::sandbox::{Accept, Call, Caller};
use crate::author::{call, cases, dev, scaffold, toolchain};

#[derive(Debug, Subcommand)]
pub enum AuthorCommand {
    /// Start a plugin crate: routes, a view, a key-value example, tests, build settings.
    New {
        /// The plugin's name (lowercase letters, digits, '-'); also the crate's and the directory's.
        name: String,
        /// Where to create the crate's directory.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin crate for wasm and write the component (DIR/<name>.wasm unless --out).
    Build {
        /// The plugin crate (or a workspace of plugin crates).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Directory for the components.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Send one request to a plugin through the real host path, without a server.
    Call {
        /// The plugin component.
        file: PathBuf,
        /// GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS.
        method: String,
        /// The path with any query, e.g. /greeter/ada?x=1.
        path: String,
        /// A request header, 'name: value' (repeatable).
        #[arg(short = 'H', long = "header", value_name = "HEADER")]
        headers: Vec<String>,
        /// The request body, or @FILE for a file's contents.
        #[arg(short = 'd', long, value_name = "BODY")]
        data: Option<String>,
        /// Who calls: anonymous, or a key with the role user or admin.
        #[arg(long = "as", value_name = "WHO", default_value = "anonymous")]
        caller: Caller,
        /// Ask for json or html.
        #[arg(long, value_name = "FORMAT")]
        accept: Option<Accept>,
        /// A configuration value for the plugin, KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Run request/expectation cases against a plugin (default: tests/cases.toml beside FILE).
    Test {
        /// The plugin component.
        file: PathBuf,
        /// The cases file.
        cases: Option<PathBuf>,
        /// A configuration value for the plugin, KEY=VALUE (repeatable; over the file's [config]).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Build, serve and rebuild-and-reload on every change, printing the plugin's log lines.
    Dev {
        /// The plugin crate.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Address to serve on (port 0 picks a free one).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

fn settings(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs.iter().map(|p| call::parse_setting(p)).collect()
}

/// Run an author's command.
pub fn run(command: AuthorCommand) -> Result<ExitCode> {
    match command {
        AuthorCommand::New { name, dir } => {
            let created = scaffold::new_crate(&name, &dir, None)?;
            println!("created {}", created.dir.display());
            println!("  sdk: {}", created.sdk);
            println!(
                "next:\n  cd {}\n  plugin-host build\n  plugin-host call {name}.wasm GET /{name}/ada\n  plugin-host test {name}.wasm",
                created.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuthorCommand::Build { dir, out } => {
            crate::author::sdk::refresh_for(&dir)?;
            let toolchain = toolchain::Toolchain::find()?;
            eprintln!("build: {}", toolchain.describe());
            let (built, took) =
                toolchain::build(&toolchain, &toolchain::BuildRequest { dir, out })?;
            for b in &built {
                println!(
                    "built {} ({} KiB)",
                    b.component.display(),
                    b.bytes.div_ceil(1024)
                );
            }
            eprintln!(
                "build: {} component(s) in {:.1} s",
                built.len(),
                took.as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        AuthorCommand::Call {
            file,
            method,
            path,
            headers,
            data,
            caller,
            accept,
            settings: pairs,
        } => {
            call::check_target(&path)?;
            let method = call::parse_method(&method)?;
            let call = Call {
                method,
                target: path,
                headers: headers
                    .iter()
                    .map(|h| call::parse_header(h))
                    .collect::<Result<_>>()?,
                body: call::read_body(data.as_deref())?,
                caller,
                accept,
            };
            let settings = settings(&pairs)?;
            super::runtime()?.block_on(call::run(&file, call, settings))
        }
        AuthorCommand::Test {
            file,
            cases: cases_file,
            settings: pairs,
        } => {
            let cases_file = cases_file.unwrap_or_else(|| cases::default_cases(&file));
            let settings = settings(&pairs)?;
            super::runtime()?.block_on(cases::run(&file, &cases_file, settings))
        }
        AuthorCommand::Dev { dir, listen } => {
            super::runtime()?.block_on(dev::run(dev::DevOptions { dir, listen }))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
