//! `recon`: generate a day, run the pipeline locally, check it against the truth. The commands
//! are [`recon_cli::commands`]; each is one call into the libraries.

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> ExitCode {
    recon_shared::allocator::keep_freed_memory();
    recon_cli::main_with(std::env::args_os())
}
