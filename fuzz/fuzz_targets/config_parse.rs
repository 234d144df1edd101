//! The keepalived.conf reader (lexer, `$NAME` definitions, blocks, typed parse and
//! cross-checks) on arbitrary text: an error or a configuration, never a panic.
//!
//! `include` is refused (`parse_str_sandboxed`): a fuzzer-made path could name any file.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vrrp_agent::config;

fuzz_target!(|data: &[u8]| {
    // config::load reads files the same way: bytes, lossily as UTF-8.
    let text = String::from_utf8_lossy(data);
    match config::parse_str_sandboxed(&text, "fuzz.conf") {
        Ok(loaded) => {
            // Formatting walks every value and every warning.
            let _ = format!("{:?}", loaded.config);
            for w in &loaded.warnings {
                let _ = w.to_string();
            }
        }
        Err(e) => {
            // Syntax and value errors carry a location inside the text.
            assert!(e.span().is_some(), "error without a location: {e}");
            let _ = e.to_string();
        }
    }
});
