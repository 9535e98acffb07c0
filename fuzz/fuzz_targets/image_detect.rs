//! `hallmark_fuzz::image_detect` under libFuzzer (see that function for what it covers).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hallmark_fuzz::image_detect(data));
