//! `berth-runc`: not built yet.

fn main() -> std::process::ExitCode {
    eprintln!("berth-runc: not built yet (see the project's open issues)");
    std::process::ExitCode::from(2)
}
