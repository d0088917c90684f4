//! The `patron` binary. Everything lives in the `patron_cli` library so tests can reach it.

fn main() -> std::process::ExitCode {
    patron_cli::main()
}
