use std::process::ExitCode;

fn main() -> ExitCode {
    cli::entry::main_with(std::env::args_os())
}
