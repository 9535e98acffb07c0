//! `hallmark_fuzz::ledger_parse` under libFuzzer (see that function for what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz::ledger_parse(data));
