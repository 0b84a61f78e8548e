//! `berth-runc`: the runc-compatible CLI of berth's runtime.

fn main() -> std::process::ExitCode {
    let code = berth_runtime::cli_main(std::env::args_os());
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
