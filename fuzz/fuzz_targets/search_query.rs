//! Fuzzes the search query parser: any input gives a query or an error whose column lies
//! inside the input, never a panic; a parsed query's terms are within the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::domain::search::{self, MAX_CLAUSES};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match search::parse(text) {
        Ok(q) => assert!(q.terms.len() <= MAX_CLAUSES),
        Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count().max(1)),
    }
});
