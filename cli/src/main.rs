//! The `braid` command line.

mod aqua;
mod bench_command;
mod builtins_command;
mod counting_alloc;
mod explain_command;
mod local_network;
mod metrics_server;
mod node_command;
mod run_command;
mod settings;
mod sim_command;
mod spell_command;
mod user_services;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The version and the commit it was built from (`cli/build.rs`).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BRAID_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "braid", version = VERSION, about = "An AIR interpreter and peer")]
struct Cli {
    /// Log format on standard error: `text` (coloured only on a terminal) or `json`
    /// (one object a line).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script on local nodes with the built-in services; print every service
    /// call, interpreter errors and the response.
    ///
    /// The script runs as a particle started by the first node (the client), as a
    /// compiled Aqua function: `--arg` values answer `getDataSrv`, the result is what it
    /// sends to `callbackSrv.response`, a failure what it sends to
    /// `errorHandlingSrv.error`. Exit 0 iff there was a response.
    Run(run_command::RunArgs),
    /// Re-run invocations recorded by `braid run --record DIR` and compare each outcome
    /// with the recorded one; print the differences, then `N passed, M failed`.
    ///
    /// Exit 0 iff every outcome is identical (data bytes included).
    Replay {
        /// Record files, or folders of them (`*.json`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The node's secret key (64 hex digits), for records written without it.
        /// Records of `braid run`'s nodes need none: their test keys are known.
        #[arg(long, value_name = "HEX", conflicts_with = "key_file")]
        key: Option<String>,
        /// A node key file (as `braid node --key-file` writes), for records written
        /// without the key.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
    /// Parse and validate AIR scripts; exit 0 iff every one is valid.
    ///
    /// Each failure prints as `path:line:col: message`. `-` reads standard input.
    Parse {
        /// Script files (`-` for standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also print a caret-annotated report for each failure.
        #[arg(long)]
        explain: bool,
    },
    /// Print a script in canonical form to standard output.
    Fmt {
        /// The script file (`-` for standard input).
        file: PathBuf,
    },
    /// Run a conformance scenario and print its transcript (JSON).
    ///
    /// With `--check`, run every scenario under the given files and folders (`*.json`,
    /// recursively), compare each with its `expected` transcript, print each failure
    /// with its differences, then `N passed, M failed`; exit 0 iff none failed.
    Sim {
        /// Compare with the expected transcripts instead of printing.
        #[arg(long)]
        check: bool,
        /// The scenario file; with `--check`, scenario files and folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where `invoke` runs: `native`, or `wasm` (the interpreter's Wasm module under
        /// wasmtime).
        #[arg(long, default_value = "native")]
        backend: String,
        /// Also write a page with the sequence diagram of the scenario's run (native
        /// interpreter) to OUT.html.
        #[arg(long, value_name = "OUT.html")]
        html: Option<PathBuf>,
        /// Also write one invoke record per step to DIR (for `braid explain`, `braid
        /// replay`).
        #[arg(long, value_name = "DIR")]
        save_data: Option<PathBuf>,
        /// Mixed runs: these peers run on the reference (AquaVM through `oracle serve`),
        /// the others on braid: `odd`, `even` (by position in `peers`, from 1), `all`,
        /// or a comma-separated list of names.
        #[arg(long, value_name = "SPEC", requires = "oracle")]
        reference_peers: Option<String>,
        /// The `oracle` binary for `--reference-peers` (`../shared/oracle`).
        #[arg(long, value_name = "PATH")]
        oracle: Option<PathBuf>,
        /// Whether braid's peers check the signatures of arriving data (`on`, `off`);
        /// they sign what they produce either way.
        #[arg(long, default_value = "on", value_parser = ["on", "off"])]
        integrity: String,
    },
    /// Explain a particle's life: its steps, and the script annotated with what the
    /// data records for each instruction (peers, values, iterations, errors with
    /// `line:col`, what waits and why); `--html` also writes a sequence diagram.
    Explain(explain_command::ExplainArgs),
    /// Time one invoke of a benchmark scenario; print one JSON line (FORMAT.md §8.5).
    ///
    /// Replays the scenario, compares it with `expected` (exit 1 on differences), then
    /// runs the measured step's exact inputs: a warm-up, one run counting the peak
    /// heap, N timed runs. With `--all DIR`, every workload of DIR as a table.
    Bench(bench_command::BenchArgs),
    /// Run a node on libp2p (TCP and WebSocket, Noise, yamux, Kademlia) until SIGINT
    /// or SIGTERM.
    ///
    /// Settings: a TOML file (`--config`), overridden by `BRAID_*` environment
    /// variables, overridden by flags. On a signal it stops and exits; sends still in
    /// flight are dropped; with a data dir, live particles continue after a restart.
    Node(node_command::NodeArgs),
    /// Send a script to a node as a client peer and print the response (JSON).
    ///
    /// Connects to the node's multiaddr over libp2p, without listening; the node is the
    /// script's relay. Exit 0 iff there was a response.
    Send(node_command::SendArgs),
    /// Print a node's particles in flight, connected peers, services, queue pressure,
    /// memory and counters (asked over `/braid/notice/1.0.0`; a node with an owner
    /// answers only its owner: pass the owner's `--key-file`).
    Status(node_command::StatusArgs),
    /// Start three nodes on loopback (real sockets), run a compiled Aqua program across
    /// them from a client peer, and print the result and what each node did.
    Demo(node_command::DemoArgs),
    /// Send particles through three nodes on loopback over libp2p; print how many were
    /// lost, particles per second and the latency of each hop (p50, p99).
    Load(node_command::LoadArgs),
    /// Manage a node's spells as its owner: `install`, `list`, `remove` (particles
    /// signed with the owner's `--key-file`); `owner` prints a key file's peer id.
    Spell(spell_command::SpellArgs),
    /// Print the node's built-in services and their functions (`--json`: one object).
    Builtins {
        /// As JSON: `{"peer": ["identify", …], …}`.
        #[arg(long)]
        json: bool,
    },
    /// Start a local network of `braid node` processes that stays up across commands:
    /// keys, ports, data and logs in `.braid/` of this folder (kept across `down`).
    Up(local_network::UpArgs),
    /// Stop the local network of this folder (SIGTERM to each node).
    Down(local_network::ProjectArgs),
    /// List the local network's nodes: name, peer id, address, up or down.
    Ps(local_network::ProjectArgs),
    /// Print a shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// E.g. `braid completions bash > ~/.local/share/bash-completion/completions/braid`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print braid's man page (roff) to standard output: `braid man | man -l -`.
    Man,
}

fn main() -> ExitCode {
    counting_alloc::count_whole_heap_for_node_metrics();
    let cli = Cli::parse();
    let log_format = cli.log_format;
    let init_logging = || init_logging(log_format);
    let result = match cli.command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command, "braid", &mut out);
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => man(),
        Command::Up(args) => local_network::up(&args),
        Command::Down(args) => local_network::down(&args),
        Command::Ps(args) => local_network::ps(&args),
        Command::Run(args) => {
            init_logging();
            run_command::run(&args)
        }
        Command::Replay {
            paths,
            key,
            key_file,
        } => replay_key(key.as_deref(), key_file.as_deref())
            .and_then(|key| run_command::replay(&paths, key)),
        Command::Parse { files, explain } => parse(&files, explain),
        Command::Fmt { file } => fmt(&file),
        Command::Sim {
            check,
            paths,
            backend,
            html,
            save_data,
            reference_peers,
            oracle,
            integrity,
        } => sim_command::sim(
            &paths,
            check,
            &backend,
            &sim_command::Peers {
                reference: reference_peers,
                oracle,
                checks: integrity == "on",
            },
        )
        .and_then(|code| {
            if html.is_none() && save_data.is_none() {
                return Ok(code);
            }
            explain_command::sim_outputs(&paths, html.as_deref(), save_data.as_deref())
        }),
        Command::Explain(args) => explain_command::explain(&args),
        Command::Bench(args) => bench_command::bench(&args),
        Command::Node(args) => {
            init_logging();
            node_command::node(&args)
        }
        Command::Send(args) => {
            init_logging();
            node_command::send(&args)
        }
        Command::Status(args) => node_command::status(&args),
        Command::Spell(args) => {
            init_logging();
            spell_command::spell(&args)
        }
        Command::Demo(args) => {
            init_logging();
            node_command::demo(&args)
        }
        Command::Builtins { json } => builtins_command::builtins(json),
        Command::Load(args) => {
            init_logging();
            node_command::load(&args)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("braid: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs to standard error, filtered by `RUST_LOG` (default: warnings); colour only
/// when standard error is a terminal and `NO_COLOR` is unset.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init();
        }
    }
}

/// `braid man`: the man page of the command, then one of each subcommand, as roff.
fn man() -> anyhow::Result<ExitCode> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context("cannot render the man page")?;
    for sub in command.get_subcommands() {
        clap_mangen::Man::new(sub.clone())
            .render(&mut out)
            .context("cannot render the man page")?;
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout(), &out);
    Ok(ExitCode::SUCCESS)
}

/// The key `braid replay` was given, if any.
fn replay_key(key: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<[u8; 32]>> {
    if let Some(hex) = key {
        return run_command::parse_key(hex).map(Some).context("--key");
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    run_command::parse_key(&text)
        .map(Some)
        .with_context(|| format!("{}", file.display()))
}

fn read(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

fn parse(files: &[PathBuf], explain: bool) -> anyhow::Result<ExitCode> {
    let mut failed = 0usize;
    for path in files {
        let source = read(path)?;
        let name = display_name(path);
        if let Err(err) = braid_grammar::parse(&source) {
            failed += 1;
            for d in err.diagnostics() {
                println!("{name}:{d}");
            }
            if explain {
                print!("{}", err.render(&source, &name));
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} scripts failed", files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt(path: &Path) -> anyhow::Result<ExitCode> {
    let source = read(path)?;
    let name = display_name(path);
    match braid_grammar::parse(&source) {
        Ok(ast) => {
            print!("{ast}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprint!("{}", err.render(&source, &name));
            Ok(ExitCode::FAILURE)
        }
    }
}
