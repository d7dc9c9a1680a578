//! `reconcile-partition` on Lambda, one Map iteration of the daily close:
//! [`reconcile_partition::Lambda`] served by the entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<reconcile_partition::Lambda>()
}
