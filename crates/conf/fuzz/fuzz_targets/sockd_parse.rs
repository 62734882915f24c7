//! Arbitrary bytes (as lossy UTF-8) into the sockd.conf parser: it must never panic, and a
//! config it accepts must print to text that parses back equal (lines and warnings aside),
//! with printing a fixpoint.
#![no_main]

use std::path::Path;

use hasocks_conf::sockd::{parse, SockdConfig};
use libfuzzer_sys::fuzz_target;

/// Drops what printing cannot keep: source lines, warnings and method positions.
fn normalized(c: SockdConfig) -> SockdConfig {
    c.without_positions()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("fuzz.conf");
    if let Ok(cfg) = parse(&text, file) {
        let printed = cfg.to_string();
        let back = match parse(&printed, file) {
            Ok(b) => b,
            Err(e) => panic!("printed config does not parse: {e}\n{printed}"),
        };
        assert_eq!(normalized(back.clone()), normalized(cfg), "\n{printed}");
        assert_eq!(back.to_string(), printed);
    }
});
