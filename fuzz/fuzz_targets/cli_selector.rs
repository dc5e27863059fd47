#![no_main]
//! The `strata` binary's selector parser, which is not part of the library:
//! compiled here from its source file.

#[allow(dead_code)]
#[path = "../../src/cli/selector.rs"]
mod selector;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    strata::fuzzing::cli_selector(
        data,
        &|s| selector::parse_selector(s).map_err(|e| e.pos),
        &selector::parse_series,
        &|l| {
            let mut s = String::new();
            selector::write_series(&mut s, l);
            s
        },
    )
});
