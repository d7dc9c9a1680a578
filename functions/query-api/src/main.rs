//! `query-api` on Lambda, behind the API Gateway HTTP API: [`query_api::Lambda`] served by the
//! entry kit of `recon_shared::entry`.

#[global_allocator]
static ALLOCATOR: recon_shared::allocator::MiMalloc = recon_shared::allocator::MiMalloc;

fn main() -> recon_shared::entry::Exit {
    recon_shared::entry::serve::<query_api::Lambda>()
}
