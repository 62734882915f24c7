//! Arbitrary bytes (as lossy UTF-8) into the relayd.conf parser: it must never panic or hang,
//! and a config it accepts must hold what the relay relies on (every relay listens and
//! forwards to a defined table, every table has 1 to 32 hosts, names are unique).
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use hasocks_conf::relayd::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = parse(&text, Path::new("fuzz.conf"), &[]) else {
        return;
    };
    assert!(u64::from(cfg.timeout_ms) <= u64::from(cfg.interval_s) * 1000);
    let mut tables = HashSet::new();
    for t in &cfg.tables {
        assert!((1..=32).contains(&t.hosts.len()), "table <{}>", t.name);
        assert!(!t.name.is_empty() && t.name.chars().count() <= 63);
        assert!(u64::from(t.timeout_ms) <= u64::from(t.interval_s) * 1000);
        assert!(tables.insert(t.name.as_str()), "table <{}> twice", t.name);
    }
    let mut relays = HashSet::new();
    for r in &cfg.relays {
        assert!(!r.name.is_empty());
        assert!(relays.insert(r.name.as_str()), "relay {} twice", r.name);
        assert!(!r.listens.is_empty(), "relay {} has no listen", r.name);
        assert!(!r.forwards.is_empty(), "relay {} has no forward", r.name);
        for f in &r.forwards {
            assert!(tables.contains(f.table.as_str()), "forward to <{}>", f.table);
        }
    }
});
