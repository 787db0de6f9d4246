//! The `maestro` binary: parses arguments, runs the command, prints the error chain and maps
//! it to the documented exit code.

use std::process::ExitCode;

use clap::Parser as _;
use maestro::cli::{self, Exit, Failure};

fn main() -> ExitCode {
    let parsed = cli::Cli::try_parse();
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Usage as u8 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(e) => {
            let exit = e.downcast_ref::<Failure>().map_or(Exit::Error, |f| f.exit);
            eprintln!("error: {e:#}");
            ExitCode::from(exit as u8)
        }
    }
}
