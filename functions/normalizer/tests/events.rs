//! `events/normalizer/normalize-request.json` is the request `manifest-validator` hands on
//! (asynchronous invoke; template.yaml): it decodes into the handler's input and back.

use normalizer::NormalizeRequest;
use recon_shared::Result;

const NORMALIZE_REQUEST: &str = include_str!("../../../events/normalizer/normalize-request.json");

#[test]
fn the_normalize_request_round_trips() -> Result<()> {
    let req: NormalizeRequest = serde_json::from_str(NORMALIZE_REQUEST)?;
    let again: NormalizeRequest = serde_json::from_str(&serde_json::to_string(&req)?)?;
    assert_eq!(req, again);
    assert_eq!(req.source_id.as_str(), "bank_01");
    assert_eq!(req.business_date.to_string(), "2026-11-20");
    assert_eq!(req.version, 1);
    assert_eq!(req.files, ["statements_0001.csv", "statements_0002.csv"]);
    Ok(())
}
