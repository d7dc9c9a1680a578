//! `final-aggregate` on Lambda, the daily close's last task: [`final_aggregate::Lambda`]
//! served by the entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<final_aggregate::Lambda>()
}
