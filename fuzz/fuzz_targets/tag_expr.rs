//! Fuzzes the tag expression parser: it must never panic, and whatever it accepts must print
//! back to an expression that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paddock_core::TagExpr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = text.parse::<TagExpr>() {
        let shown = expr.to_string();
        assert_eq!(shown.parse::<TagExpr>().ok(), Some(expr), "round trip of {text:?} via {shown:?}");
    }
});
