//! `manifest-validator` on Lambda, triggered by S3 manifest uploads:
//! [`manifest_validator::Lambda`] served by the entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<manifest_validator::Lambda>()
}
