//! Feeds arbitrary bytes through the decode path the engine uses for every file: format
//! sniffing, the truncation check, decoding with limits, EXIF orientation, the model's resize
//! and crop, and the thumbnail; and the reduced-size JPEG decode (asked for so little that even
//! small inputs take it). Any panic or crash here is a bug; each one found becomes a
//! regression test in tests/decode.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lookalike::decode::{decode_bytes, decode_bytes_for, make_thumbnail, model_input};
use lookalike::model::lite0::INFO;

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_bytes(data) {
        let _ = model_input(&decoded.rgb, &INFO.preprocess);
        let _ = make_thumbnail(&decoded.rgb, 64);
    }
    if let Ok(decoded) = decode_bytes_for(data, 4) {
        let _ = make_thumbnail(&decoded.rgb, 64);
    }
});
