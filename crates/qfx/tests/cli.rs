//! The `qfx fixed` command-line contract (scripts depend on it) and its errors; what `qfx
//! export hls` and `qfx train` refuse (foreign files, links out of the project, a FIFO as the
//! model, an incomplete CIFAR-10).

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
        "0x02 0.0625\n0x7f 3.96875\n0x80 -4\n0x06 0.1875\n0xfd -0.09375\n0x00 0\n0x00 0\n\n0xf0 -0.5\n",
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
fn output_lines_up_with_input_blank_lines_included() {
    let cast = ["fixed", "cast", "--type", T8];
    ok(&cast, "1\n\n \t \n2\n\n", "0x20 1\n\n\n0x40 2\n\n");
    ok(&cast, "\n", "\n");
    let op = ["fixed", "op", "--op", "add", "--lhs", T8, "--rhs", T8];
    ok(
        &op,
        "\n1 2\n\n0.5 0.25\n",
        "\nap_fixed<9,4> 0x060 3\n\nap_fixed<9,4> 0x018 0.75\n",
    );
    // A bad line after a blank one is still named by its number in the input.
    fails(&cast, "1\n\nx\n", 1, "0x20 1\n\n", "line 3");
    let help = qfx(&["fixed", "cast", "--help"], "");
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .contains("an empty or blank input line gives an empty output line"),
        "help does not document blank lines"
    );
}

#[test]
fn decimals_beyond_the_double_range_say_so() {
    let cast = ["fixed", "cast", "--type", T8];
    for big in ["1e400", "-1e400", "0x1p1024", "1.8e308"] {
        let out = qfx(&cast, &format!("{big}\n"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{big}: {stderr}");
        assert!(
            stderr.contains("line 1")
                && stderr.contains(big)
                && stderr.contains("outside the range of a double"),
            "{big}: {stderr}"
        );
        assert!(!stderr.contains("cannot convert inf"), "{big}: {stderr}");
    }
    // Spelled-out infinities are still refused as such, and the largest double is fine.
    fails(&cast, "inf\n", 1, "", "cannot convert inf");
    ok(&cast, "1.7976931348623157e308\n", "0x7f 3.96875\n");
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

// ---------------------------------------------------------------- export hls: where it writes

/// Runs qfx with `args` and no input; fails the test if it runs for more than 60 seconds (it
/// is then waiting on something it should have refused).
fn qfx_timed(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qfx"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qfx runs");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("qfx {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A tiny model IR (flatten, 4→2 dense) written to `dir/model.ir.json`.
fn tiny_ir(dir: &std::path::Path) -> std::path::PathBuf {
    use qfx_ir::{AccumulationOrder, Codes, Layer, Model, Op, INPUT, IR_VERSION};
    let f = |s: &str| s.parse::<qfx_fixed::Format>().unwrap();
    let model = Model {
        version: IR_VERSION,
        name: "tiny".to_string(),
        input_shape: vec![4],
        layers: vec![
            Layer {
                name: "flat".to_string(),
                inputs: vec![INPUT.to_string()],
                op: Op::Flatten,
                output: f("ap_fixed<8,3,AP_RND,AP_SAT>"),
            },
            Layer {
                name: "fc".to_string(),
                inputs: vec!["flat".to_string()],
                op: Op::Dense {
                    weight: Codes {
                        shape: vec![4, 2],
                        axis: None,
                        formats: vec![f("ap_fixed<8,2>")],
                        codes: vec![3, -5, 7, 1, -2, 4, 0, 9],
                        khot: None,
                    },
                    bias: None,
                    accumulator: vec![f("ap_fixed<20,8>")],
                    order: AccumulationOrder::BiasThenInputChannelMajor,
                },
                output: f("ap_fixed<12,6,AP_RND,AP_SAT>"),
            },
        ],
        preprocess: None,
    };
    let path = dir.join("model.ir.json");
    std::fs::write(&path, model.to_json()).unwrap();
    path
}

#[test]
fn export_never_overwrites_foreign_files_unless_forced() {
    let root = scratch("export");
    let ir = tiny_ir(&root);
    let out = root.join("hls");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("README.md"), "my notes").unwrap();
    let export = |dir: &std::path::Path, force: bool| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "export".as_ref(),
            "hls".as_ref(),
            "--checkpoint".as_ref(),
            ir.as_os_str(),
            "--out".as_ref(),
            dir.as_os_str(),
        ];
        if force {
            args.push("--force".as_ref());
        }
        qfx_timed(&args)
    };
    let out1 = export(&out, false);
    let stderr = String::from_utf8_lossy(&out1.stderr);
    assert_eq!(out1.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--force") && stderr.contains("did not write"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("README.md")).unwrap(),
        "my notes"
    );

    let forced = export(&out, true);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(out.join(".qfx-export").is_file());
    let again = export(&out, false);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A linked subfolder pointing out of the project: refused, forced or not.
    let linked = root.join("linked");
    let outside = root.join("outside");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, linked.join("tb")).unwrap();
    for force in [false, true] {
        let o = export(&linked, force);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("symbolic link"), "{stderr}");
    }
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "wrote through the link"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_fifo_as_the_model_is_refused_not_waited_on() {
    let root = scratch("fifo");
    let fifo = root.join("model.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = qfx_timed(&[
        "export".as_ref(),
        "hls".as_ref(),
        "--checkpoint".as_ref(),
        fifo.as_os_str(),
        "--out".as_ref(),
        root.join("hls").as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("model.json") && stderr.contains("not a regular file"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn training_on_an_incomplete_cifar10_needs_the_flag() {
    let root = scratch("partial-cifar");
    let data = root.join("cifar");
    std::fs::create_dir(&data).unwrap();
    for name in ["data_batch_1.bin", "data_batch_2.bin", "test_batch.bin"] {
        std::fs::write(data.join(name), vec![1u8; 2 * 3073]).unwrap();
    }
    let run = root.join("run");
    let train = |flag: Option<&str>| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "train".as_ref(),
            "--run".as_ref(),
            run.as_os_str(),
            "--data".as_ref(),
            data.as_os_str(),
            "--model".as_ref(),
            "mlp".as_ref(),
        ];
        args.extend(flag.map(std::ffi::OsStr::new));
        qfx_timed(&args)
    };
    let out = train(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for f in [
        "incomplete CIFAR-10",
        "found 2 of the 5 training batch files",
        "4 training images",
        "--allow-partial-data",
    ] {
        assert!(stderr.contains(f), "`{stderr}` lacks `{f}`");
    }
    // With the flag the data loads, with a warning naming what is missing; this MLP then
    // refuses the 3×32×32 images, which shows the loading got through.
    let out = train(Some("--allow-partial-data"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("partial dataset") && stderr.contains("batches 3, 4, 5 absent"),
        "{stderr}"
    );
    assert!(!stderr.contains("incomplete CIFAR-10"), "{stderr}");
    std::fs::remove_dir_all(&root).unwrap();
}
