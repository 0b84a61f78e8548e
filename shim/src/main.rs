//! `berth-shim`: dispatches before any async runtime exists.
//!
//! ```text
//! berth-shim start  --namespace NS --id ID --bundle B --address A --state S
//! berth-shim delete --namespace NS --id ID --bundle B --address A --state S
//! berth-shim serve  … (internal: started by `start`, listener on fd 3)
//! berth-shim runtime <berth-runc args…> (internal: the embedded runtime)
//! berth-shim --version
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use berth_shim::cli::ShimArgs;

fn usage() -> ExitCode {
    eprintln!(
        "usage: berth-shim start|delete --namespace NS --id ID --bundle BUNDLE \
         --address BERTHD_SOCKET --state STATE_DIR\n       berth-shim --version"
    );
    ExitCode::from(2)
}

fn parse(rest: Vec<OsString>) -> Result<ShimArgs, ExitCode> {
    ShimArgs::parse(rest).map_err(|e| {
        eprintln!("berth-shim: {e}");
        usage()
    })
}

fn main() -> ExitCode {
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    if argv.len() < 2 {
        return usage();
    }
    let cmd = argv.remove(1);
    let rest = argv.split_off(1);
    match cmd.to_str().unwrap_or("") {
        "runtime" => {
            // berth-runc's CLI in this fresh, single-threaded process.
            let mut args = vec![OsString::from("berth-runc")];
            args.extend(rest);
            let code = berth_runtime::cli_main(args);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        "start" => {
            let args = match parse(rest) {
                Ok(a) => a,
                Err(c) => return c,
            };
            match berth_shim::start::start(&args) {
                Ok(address) => {
                    println!("{address}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("berth-shim start: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        "serve" => {
            let args = match parse(rest) {
                Ok(a) => a,
                Err(c) => return c,
            };
            match berth_shim::serve::serve(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("berth-shim serve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        "delete" => {
            let args = match parse(rest) {
                Ok(a) => a,
                Err(c) => return c,
            };
            match berth_shim::delete::delete(&args) {
                Ok(bytes) => {
                    let mut out = std::io::stdout().lock();
                    if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                        return ExitCode::FAILURE;
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("berth-shim delete: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        "--version" | "-v" | "version" => {
            println!("berth-shim {}", berth_shim::VERSION);
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}
