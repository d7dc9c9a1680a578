//! `stream-indexer` on Lambda, the MSK trigger of the two topics: [`stream_indexer::Lambda`]
//! served by the entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<stream_indexer::Lambda>()
}
