//! The strategy file loader: any text, then the strategy's own validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(strategy) = trellis_core::strategy::parse_strategy_toml(text) {
        let _ = strategy.validate();
    }
});
