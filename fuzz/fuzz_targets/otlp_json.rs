//! Any bytes posted as `application/json` to `/v1/traces`: decoding and mapping must return, never
//! panic, whatever the body.

#![no_main]

use evalmint_otlp::{Encoding, decode_request, map_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(request) = decode_request(body, Encoding::Json) {
        map_request(&request);
    }
});
