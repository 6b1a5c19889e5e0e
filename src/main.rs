//! `drydock`: Docker's container networking, rebuilt and proven. This binary is a thin shell over
//! the library crates; see ARCHITECTURE.md.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
