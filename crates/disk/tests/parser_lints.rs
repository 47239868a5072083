//! The parser lint set is one declaration: the same block at the top of every parser
//! crate's `lib.rs` (Cargo's `[lints]` cannot add lints to the workspace's for some crates
//! only, nor leave `cfg(test)` code out, so the block lives in the source and this test
//! keeps the copies identical).

use std::path::Path;

/// The crates that parse hostile container bytes.
const PARSER_CRATES: [&str; 6] = ["disk", "formats", "qcow2", "vhd", "vhdx", "vmdk"];

/// The block every parser crate carries, verbatim.
const PARSER_LINTS: &str = "\
// Parser crates: every offset comes from hostile input, so arithmetic is checked or
// saturating and conversions are `try_from` (tests may compute freely).
#![cfg_attr(
    not(test),
    warn(clippy::arithmetic_side_effects, clippy::as_conversions)
)]
";

#[test]
fn every_parser_crate_declares_the_parser_lints() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for name in PARSER_CRATES {
        let path = crates.join(name).join("src/lib.rs");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            text.contains(PARSER_LINTS),
            "{} lacks the parser lint block (copy it from crates/disk/src/lib.rs)",
            path.display()
        );
        // No crate quietly turns one off for the whole crate.
        for lint in ["arithmetic_side_effects", "as_conversions"] {
            assert!(
                !text.contains(&format!("#![allow(clippy::{lint})]")),
                "{} allows clippy::{lint} crate-wide",
                path.display()
            );
        }
    }
}
