//! `normalizer` on Lambda, invoked with each accepted delivery: [`normalizer::Lambda`] served
//! by the entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<normalizer::Lambda>()
}
