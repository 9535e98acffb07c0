//! The accountability ledger's parser and chain check (JSON lines, hashes, signatures,
//! sequence), and a checkpoint (JSON) checked against whatever records verified.
#![no_main]

use hallmark::ledger::{Checkpoint, check_checkpoint, verify_chain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (ledger, checkpoint) = text.split_once("\n\n").unwrap_or((text, ""));
    let records = verify_chain(ledger, None).unwrap_or_default();
    if let Ok(cp) = serde_json::from_str::<Checkpoint>(checkpoint) {
        let _ = check_checkpoint(&records, &cp, None);
    }
});
