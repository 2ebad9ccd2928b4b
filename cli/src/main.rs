//! The `braid` command line.

mod bench_command;
mod counting_alloc;
mod explain_command;
mod node_command;
mod run_command;
mod settings;
mod sim_command;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "braid", version, about = "An AIR interpreter and peer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => {
            init_logging();
            run_command::run(&args)
        }
        Command::Replay { paths } => run_command::replay(&paths),
        Command::Parse { files, explain } => parse(&files, explain),
        Command::Fmt { file } => fmt(&file),
        Command::Sim {
            check,
            paths,
            backend,
            html,
            save_data,
        } => sim_command::sim(&paths, check, &backend).and_then(|code| {
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
        Command::Demo(args) => {
            init_logging();
            node_command::demo(&args)
        }
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

/// Logs to standard error, filtered by `RUST_LOG` (default: warnings).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
