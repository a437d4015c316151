//! With the `serde` feature a format serializes as its C++ spelling, and a bad spelling in a
//! config file is rejected with the parser's message.
#![cfg(feature = "serde")]

use qfx_fixed::{Format, Quant};

#[test]
fn formats_serialize_as_their_cpp_spelling() {
    let f: Format = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>".parse().unwrap();
    let json = serde_json::to_string(&f).unwrap();
    assert_eq!(json, "\"ap_fixed<8,3,AP_RND_CONV,AP_SAT>\"");
    assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), f);
    assert_eq!(
        serde_json::to_string(&Quant::RndConv).unwrap(),
        "\"AP_RND_CONV\""
    );
    let err = serde_json::from_str::<Format>("\"ap_fixed<8,3,AP_ROUND>\"").unwrap_err();
    assert!(
        err.to_string().contains("unknown quantization mode"),
        "{err}"
    );
}
