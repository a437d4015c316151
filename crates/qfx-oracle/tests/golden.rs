//! The committed golden vectors (answers of the real headers) must match qfx-fixed exactly.
//! This runs everywhere, with no compiler or network.

use qfx_oracle::{compare, parse_golden};

#[test]
fn golden_vectors_match_bit_for_bit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/vectors.txt");
    let text = std::fs::read_to_string(path).expect("golden/vectors.txt is committed");
    let (suite, outcomes) = parse_golden(&text).expect("golden vectors parse");
    let report = compare(&suite, &outcomes);
    println!(
        "golden vectors: {} cases compared, {} mismatches",
        report.cases, report.mismatches
    );
    assert!(report.cases >= 7000, "only {} golden cases", report.cases);
    assert!(suite.casts.len() >= 5000 && suite.ops.len() >= 1500);
    assert_eq!(report.mismatches, 0, "{:#?}", report.examples);
}

#[test]
fn corrupt_golden_lines_are_reported() {
    for bad in [
        "cast ap_fixed<8,3> zz 1",
        "cast ap_fixed<8,3,AP_BOGUS,AP_WRAP,0> 3ff0000000000000 1",
        "frob a b c d e f g h i j k",
        "cast ap_fixed<8,3>",
    ] {
        let err = parse_golden(bad).unwrap_err();
        assert!(err.starts_with("golden line 1:"), "{err}");
    }
}
