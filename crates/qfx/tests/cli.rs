//! The `qfx fixed` command-line contract (scripts depend on it) and its errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn qfx(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qfx"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qfx runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn ok(args: &[&str], stdin: &str, want: &str) {
    let out = qfx(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{args:?}");
}

#[track_caller]
fn fails(args: &[&str], stdin: &str, code: i32, stdout: &str, message: &str) {
    let out = qfx(args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout, "{args:?}");
    assert!(
        stderr.contains(message),
        "{args:?}: `{stderr}` lacks `{message}`"
    );
}

const T8: &str = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>";

#[test]
fn cast_prints_raw_code_and_exact_value() {
    ok(
        &["fixed", "cast", "--type", T8],
        "0.046875\n100\n-4.01\n0x1.8p-3\n-0.1\n1e-5\n-0.0\n\n  -0X1P-1  \n",
        "0x02 0.0625\n0x7f 3.96875\n0x80 -4\n0x06 0.1875\n0xfd -0.09375\n0x00 0\n0x00 0\n0xf0 -0.5\n",
    );
    // Width of the hex field is ceil(W/4) digits; two's complement over exactly W bits.
    ok(
        &["fixed", "cast", "--type", "ap_fixed<1,1>"],
        "-1\n0.5\n",
        "0x1 -1\n0x0 0\n",
    );
    ok(
        &["fixed", "cast", "--type", "ap_ufixed<12,4>"],
        "15.9\n-1\n",
        "0xfe6 15.8984375\n0xf00 15\n",
    );
    ok(
        &["fixed", "cast", "--type", "ap_int<64>"],
        "-1\n",
        "0xffffffffffffffff -1\n",
    );
    ok(
        &["fixed", "cast", "--type", "ap_fixed<6,2,AP_TRN,AP_WRAP_SM>"],
        "2.5\n",
        "0x17 1.4375\n",
    );
    // Tiny negative values that round to zero print 0, never -0.
    ok(
        &["fixed", "cast", "--type", "ap_fixed<8,3,AP_RND>"],
        "-0.001\n",
        "0x00 0\n",
    );
}

#[test]
fn op_prints_result_type_and_cast() {
    ok(
        &[
            "fixed",
            "op",
            "--op",
            "mul",
            "--lhs",
            "ap_fixed<8,3>",
            "--rhs",
            "ap_fixed<8,3>",
            "--out",
            "ap_fixed<6,2,AP_RND,AP_SAT>",
        ],
        "1.5 -2.25\n",
        "ap_fixed<16,6> 0xf280 -3.375 0x20 -2\n",
    );
    ok(
        &[
            "fixed",
            "op",
            "--op",
            "sub",
            "--lhs",
            "ap_ufixed<4,4>",
            "--rhs",
            "ap_ufixed<4,4>",
        ],
        "3 15\n",
        "ap_fixed<5,5> 0x14 -12\n",
    );
    ok(
        &[
            "fixed",
            "op",
            "--op",
            "add",
            "--lhs",
            "ap_fixed<8,3>",
            "--rhs",
            "ap_ufixed<8,4>",
        ],
        "-4 15.9375\n",
        "ap_fixed<11,6> 0x17e 11.9375\n",
    );
}

#[test]
fn bad_input_names_the_line_and_prints_nothing_for_it() {
    let cast = ["fixed", "cast", "--type", T8];
    fails(&cast, "1.0\nabc\n2.0\n", 1, "0x20 1\n", "line 2");
    fails(&cast, "1.0\nabc\n", 1, "0x20 1\n", "`abc` is not a number");
    fails(&cast, "nan\n", 1, "", "line 1: cannot convert NaN");
    fails(&cast, "inf\n", 1, "", "line 1: cannot convert inf");
    fails(
        &cast,
        "1 2\n",
        1,
        "",
        "line 1: expected one number, found 2 fields",
    );
    fails(&cast, "0x1.8q3\n", 1, "", "line 1");
    let op = [
        "fixed",
        "op",
        "--op",
        "add",
        "--lhs",
        "ap_fixed<8,3>",
        "--rhs",
        "ap_fixed<8,3>",
    ];
    fails(&op, "1\n", 1, "", "line 1: expected two numbers");
    let wide = [
        "fixed",
        "op",
        "--op",
        "mul",
        "--lhs",
        "ap_fixed<100,3>",
        "--rhs",
        "ap_fixed<100,3>",
    ];
    fails(&wide, "1 1\n", 1, "", "200 bits wide");
}

#[test]
fn bad_types_are_usage_errors() {
    fails(
        &["fixed", "cast", "--type", "ap_fixed<8,3"],
        "",
        2,
        "",
        "unterminated",
    );
    fails(
        &["fixed", "cast", "--type", "ap_fixed<8,3,AP_ROUND>"],
        "",
        2,
        "",
        "column 14: unknown quantization mode `AP_ROUND`",
    );
    fails(
        &[
            "fixed",
            "cast",
            "--type",
            "ap_ufixed<8,3,AP_TRN,AP_WRAP_SM>",
        ],
        "",
        2,
        "",
        "cannot use AP_WRAP_SM",
    );
}

#[test]
fn tour_shows_the_overflow_modes() {
    let out = qfx(&["fixed", "tour"], "");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "ap_fixed<6,2,AP_TRN,AP_WRAP_SM>  ->   1.4375  (code 0x17)",
        "ap_fixed<6,2,AP_TRN,AP_WRAP,1>   ->      0.5  (code 0x08)",
        "AP_RND_CONV            2      -2       2      -2",
    ] {
        assert!(text.contains(line), "demo output lacks `{line}`:\n{text}");
    }
}
