//! `berthctl`: not built yet.

fn main() -> std::process::ExitCode {
    eprintln!("berthctl: not built yet (see the project's open issues)");
    std::process::ExitCode::from(2)
}
