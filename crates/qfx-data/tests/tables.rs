//! Tables and signals: CSV files and NumPy `.npy`/`.npz` arrays written by the tests in the real
//! formats (an `.npz` stored, deflated, and with the zip64 local headers `np.savez` writes),
//! read back exactly; every kind of bad input refused with a message naming the file, the line
//! or sample and the column; seeded splits that depend on the seed alone; per-feature
//! statistics.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use qfx_data::{
    load_path, load_table, parse_npy, DataError, LoadOptions, Split, Table, TableOptions,
    TableSplits, Targets, Task,
};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-data-tables-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[track_caller]
fn assert_err<T: std::fmt::Debug>(result: Result<T, DataError>, fragments: &[&str]) {
    let err = result.unwrap_err().to_string();
    for f in fragments {
        assert!(err.contains(f), "`{err}` lacks `{f}`");
    }
}

fn csv_options(path: &Path) -> TableOptions {
    TableOptions {
        path: path.to_path_buf(),
        test_fraction: Some(0.5),
        ..TableOptions::default()
    }
}

// ---------------------------------------------------------------- CSV

#[test]
fn a_csv_table_reads_back_exactly() {
    let dir = scratch("csv-ok");
    let path = dir.join("t.csv");
    std::fs::write(&path, "a,label\n0x1,0\n").unwrap();
    // `0x1` is not a decimal number: refused, naming line and column.
    assert_err(
        load_table(&csv_options(&path)),
        &["line 2, column `a`", "`0x1`"],
    );
    std::fs::write(
        &path,
        "\u{feff}a, label ,\"b,c\"\r\n1.5,2,-3e-2\n\n  1 ,0,4\n7,1,\"8\"\n-0.25,3,9\n",
    )
    .unwrap();
    let options = TableOptions {
        test_fraction: Some(0.25),
        split_seed: 3,
        ..csv_options(&path)
    };
    let s = load_table(&options).unwrap();
    let all = [&s.train, &s.test];
    assert_eq!(s.train.len() + s.test.len(), 4);
    assert_eq!(s.test.len(), 1);
    for t in all {
        assert_eq!(t.shape, [2]);
        assert_eq!(t.feature_names, ["a", "b,c"]);
    }
    // Every row lands in one split with its label and its line number.
    let mut rows: Vec<(usize, Vec<f32>, u32)> = Vec::new();
    for t in all {
        for i in 0..t.len() {
            rows.push((
                t.origin.places[i],
                t.sample(i).to_vec(),
                t.labels().unwrap()[i],
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    assert_eq!(
        rows,
        [
            (2, vec![1.5, -0.03], 2),
            (4, vec![1.0, 4.0], 0),
            (5, vec![7.0, 8.0], 1),
            (6, vec![-0.25, 9.0], 3),
        ]
    );
    // Chosen features in a chosen order; regression on two target columns.
    let options = TableOptions {
        label: vec!["a".into(), "label".into()],
        task: Task::Regression,
        ..csv_options(&path)
    };
    let s = load_table(&options).unwrap();
    assert_eq!(s.train.shape, [1]);
    assert!(matches!(&s.train.targets, Targets::Values { width: 2, .. }));
    let options = TableOptions {
        features: Some(vec!["b,c".into(), "a".into()]),
        task: Task::Autoencoder,
        ..csv_options(&path)
    };
    let s = load_table(&options).unwrap();
    assert_eq!(s.train.feature_names, ["b,c", "a"]);
    assert_eq!(s.train.targets, Targets::None);
}

#[test]
fn bad_csv_tables_name_the_file_line_and_column() {
    let dir = scratch("csv-bad");
    let header = "x,y,label\n";
    // (content, options change, fragments of the error)
    type Change = fn(TableOptions) -> TableOptions;
    let same: Change = |o| o;
    let cases: &[(&str, Change, &[&str])] = &[
        (
            "x,y,label\n1,2,0\n3,4\n",
            same,
            &["line 3: 2 fields", "header has 3 columns", "ragged"],
        ),
        ("x,y,label\n1,2,0\n3,4,1,5\n", same, &["line 3: 4 fields"]),
        (
            "x,y,label\n1,abc,0\n",
            same,
            &["line 2, column `y`", "`abc` is not a number"],
        ),
        (
            "x,y,label\n1,NaN,0\n",
            same,
            &["line 2, column `y`", "`NaN` is not a finite number"],
        ),
        (
            "x,y,label\n1,2,0\n-inf,2,0\n",
            same,
            &["line 3, column `x`", "not a finite number"],
        ),
        (
            "x,y,label\n1e39,2,0\n",
            same,
            &["line 2, column `x`", "beyond the range of f32"],
        ),
        ("x,y,label\n1,,0\n", same, &["line 2, column `y`", "empty"]),
        (
            "x,y,label\n1,2,2.5\n",
            same,
            &["line 2, column `label`", "`2.5` is not a class label"],
        ),
        (
            "x,y,label\n1,2,-1\n",
            same,
            &["line 2, column `label`", "`-1` is not a class label"],
        ),
        (
            "x,y,class\n1,2,0\n",
            same,
            &["no label column `label`", "`x`, `y`, `class`"],
        ),
        (
            "x,x,label\n1,2,0\n",
            same,
            &["line 1 (the header)", "columns 1 and 2", "`x`"],
        ),
        (
            "x,,label\n1,2,0\n",
            same,
            &["line 1 (the header)", "column 2 has no name"],
        ),
        ("", same, &["empty", "header row"]),
        ("\n\n", same, &["empty"]),
        (header, same, &["no data rows"]),
        ("x,y,label\n\"1,2,0\n", same, &["line 2", "no closing"]),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                features: Some(vec!["z".into()]),
                ..o
            },
            &["no feature column `z`"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                features: Some(vec!["label".into()]),
                ..o
            },
            &["both a feature and the label"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                features: Some(vec!["x".into(), "x".into()]),
                ..o
            },
            &["chosen twice"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                label: vec!["x".into(), "y".into()],
                ..o
            },
            &["one label column, not 2"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                label: vec!["x".into()],
                task: Task::Autoencoder,
                ..o
            },
            &["no label column"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                test_fraction: Some(0.5),
                ..o
            },
            &["leaves no", "at least one sample"],
        ),
        (
            "x,y,label\n1,2,0\n3,4,1\n",
            |o| TableOptions {
                test_fraction: Some(1.5),
                ..o
            },
            &["between 0 and 1"],
        ),
        (
            "x,y,label\n1,2,0\n",
            |o| TableOptions {
                targets: Some("y.npy".into()),
                ..o
            },
            &[".npy features only"],
        ),
    ];
    for (i, (content, change, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("case{i}.csv"));
        std::fs::write(&path, content).unwrap();
        let options = change(csv_options(&path));
        let err = load_table(&options).unwrap_err().to_string();
        for w in *want {
            assert!(err.contains(w), "case {i} {content:?}: `{err}` lacks `{w}`");
        }
        if !err.contains("between 0 and 1") && !err.contains(".npy features only") {
            assert!(
                err.contains(&format!("case{i}.csv")),
                "case {i}: `{err}` names no file"
            );
        }
    }
    // Not UTF-8: the line is named.
    let path = dir.join("latin1.csv");
    std::fs::write(&path, b"x,y,label\n1,2,0\n1,\xe9,0\n").unwrap();
    assert_err(
        load_table(&csv_options(&path)),
        &["latin1.csv", "line 3", "UTF-8"],
    );
}

#[test]
fn labels_outside_the_class_count_name_the_line() {
    let dir = scratch("csv-classes");
    let path = dir.join("t.csv");
    std::fs::write(&path, "x,label\n1,0\n2,4\n3,1\n4,7\n").unwrap();
    let s = load_table(&TableOptions {
        test: Some(path.clone()),
        test_fraction: None,
        ..csv_options(&path)
    })
    .unwrap();
    let train: Split = (&s.train).into();
    train.check_labels(8).unwrap();
    #[track_caller]
    fn refused(split: Split, classes: usize, want: &[&str]) {
        assert_err(split.check_labels(classes), want);
    }
    refused(
        train,
        5,
        &[
            "line 5 of",
            "t.csv (column `label`)",
            "label 7",
            "only 5 outputs (labels 0 to 4)",
        ],
    );
    refused(train, 4, &["line 3 of", "label 4", "only 4 outputs"]);
}

// ---------------------------------------------------------------- NumPy

/// A `.npy` file: version 1, header padded with spaces to a multiple of 64 bytes.
fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    npy_with(&format!("'{descr}'"), shape, data)
}

/// A `.npy` file whose `descr` is the Python literal `descr`.
fn npy_with(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(data);
    b
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A zip archive of `members` (name, bytes, deflated?), with zip64 local headers (sizes
/// 0xFFFFFFFF and the real ones in an extra field) as `np.savez` writes them.
fn zip(members: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let packed = if *deflate {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let offset = out.len() as u32;
        let mut extra = Vec::new();
        extra.extend_from_slice(&1u16.to_le_bytes());
        extra.extend_from_slice(&16u16.to_le_bytes());
        extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
        extra.extend_from_slice(&(packed.len() as u64).to_le_bytes());
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&extra);
        out.extend_from_slice(&packed);
        central.extend_from_slice(b"PK\x01\x02");
        central.extend_from_slice(&45u16.to_le_bytes());
        central.extend_from_slice(&45u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0; 4]);
        central.extend_from_slice(&crc.sum().to_le_bytes());
        central.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[test]
fn npy_arrays_read_back_exactly() {
    let a = parse_npy(
        &npy("<f4", &[2, 3], &f32s(&[1.0, -2.5, 3.0, 0.0, 1e-3, 7.0])),
        "a",
    )
    .unwrap();
    assert_eq!(a.shape, [2, 3]);
    assert_eq!(a.floats("x").unwrap(), [1.0, -2.5, 3.0, 0.0, 1e-3, 7.0]);
    // Big-endian float64, and every integer type as labels.
    let be: Vec<u8> = [0.5f64, -4.0]
        .iter()
        .flat_map(|x| x.to_be_bytes())
        .collect();
    assert_eq!(
        parse_npy(&npy(">f8", &[2], &be), "b")
            .unwrap()
            .floats("x")
            .unwrap(),
        [0.5, -4.0]
    );
    for (descr, bytes) in [
        ("|u1", vec![0u8, 3]),
        ("|i1", vec![0, 3]),
        ("<i2", vec![0, 0, 3, 0]),
        (">u2", vec![0, 0, 0, 3]),
        ("<i4", vec![0, 0, 0, 0, 3, 0, 0, 0]),
        ("<u8", i64s(&[0, 3])),
        ("<i8", i64s(&[0, 3])),
        ("|b1", vec![0, 1]),
    ] {
        let a = parse_npy(&npy(descr, &[2], &bytes), descr).unwrap();
        let want = if descr == "|b1" { [0, 1] } else { [0, 3] };
        assert_eq!(a.labels().unwrap(), want, "{descr}");
    }
    // Versions 2 and 3 have a 4-byte header length.
    let v1 = npy("<f8", &[1, 1], &f64s(&[2.0]));
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&(u16::from_le_bytes([v1[8], v1[9]]) as u32).to_le_bytes());
    v2.extend_from_slice(&v1[10..]);
    assert_eq!(parse_npy(&v2, "v2").unwrap().floats("x").unwrap(), [2.0]);
}

#[test]
fn bad_npy_arrays_say_what_is_wrong() {
    let good = npy("<f4", &[2, 2], &f32s(&[1.0, 2.0, 3.0, 4.0]));
    let cases: Vec<(Vec<u8>, &str, &[&str])> = vec![
        (
            good[..good.len() - 3].to_vec(),
            "x",
            &["truncated", "needs 16 data bytes", "has 13"],
        ),
        (
            [&good[..], &[0u8]].concat(),
            "x",
            &["1 bytes after the 16 data bytes"],
        ),
        (good[..9].to_vec(), "x", &["not a NumPy .npy file"]),
        (
            good[..40].to_vec(),
            "x",
            &["truncated: the header declares"],
        ),
        (
            b"PK\x03\x04 not an array".to_vec(),
            "x",
            &["not a NumPy .npy file"],
        ),
        (
            npy("<c8", &[1], &[0; 8]),
            "x",
            &["unsupported element type `<c8`"],
        ),
        (
            npy("|O", &[1], &[0; 8]),
            "x",
            &["unsupported element type `|O`"],
        ),
        (
            npy("<f2", &[1], &[0; 2]),
            "x",
            &["unsupported element type `<f2`"],
        ),
        (
            npy("<f4", &[1usize << 40, 4], &[]),
            "x",
            &["more than 2 GiB"],
        ),
    ];
    for (i, (bytes, source, want)) in cases.iter().enumerate() {
        let err = parse_npy(bytes, source).unwrap_err().to_string();
        for w in *want {
            assert!(err.contains(w), "case {i}: `{err}` lacks `{w}`");
        }
    }
    // Fortran order and structured arrays are refused by name.
    let at = good.windows(5).position(|w| w == b"False").unwrap();
    let mut fortran = good.clone();
    fortran[at..at + 5].copy_from_slice(b"True ");
    assert_err(parse_npy(&fortran, "f"), &["Fortran order"]);
    let text = npy_with("[('a', '<f4'), ('b', '<i8', (2,))]", &[1], &[0; 20]);
    assert_err(parse_npy(&text, "s"), &["structured array"]);
    // Features that are not float, NaN in features, float labels, negative labels.
    let ints = parse_npy(&npy("<i8", &[2], &i64s(&[1, -1])), "y.npy").unwrap();
    assert_err(
        ints.floats("features"),
        &["y.npy", "features must be float32 or float64, not int64"],
    );
    assert_err(ints.labels(), &["y.npy", "sample 1", "label -1"]);
    let nan = parse_npy(
        &npy("<f4", &[2, 3], &f32s(&[0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0])),
        "x.npy",
    )
    .unwrap();
    assert_err(
        nan.floats("features"),
        &["x.npy", "sample 1, index [1]", "NaN"],
    );
    let big = parse_npy(&npy("<f8", &[1], &f64s(&[1e300])), "x.npy").unwrap();
    assert_err(big.floats("targets"), &["beyond the range of f32"]);
    assert_err(nan.labels(), &["labels must be integers, not float32"]);
}

/// Writes `x.npy`/`y.npy`-style files into `dir` and returns their paths.
fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn npy_pairs_and_npz_archives_load_as_tables() {
    let dir = scratch("npz");
    let x: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
    // A signal set: 4 samples of 2 channels × 3 positions.
    let xb = npy("<f4", &[4, 2, 3], &f32s(&x));
    let yb = npy("<i8", &[4], &i64s(&[0, 1, 2, 1]));
    let xp = write(&dir, "x.npy", &xb);
    let yp = write(&dir, "y.npy", &yb);
    let options = TableOptions {
        path: xp.clone(),
        targets: Some(yp.clone()),
        test: Some(xp.clone()),
        test_targets: Some(yp.clone()),
        ..TableOptions::default()
    };
    let s = load_table(&options).unwrap();
    assert_eq!(s.train.shape, [2, 3]);
    assert_eq!(s.train.features, x);
    assert_eq!(s.train.labels().unwrap(), [0, 1, 2, 1]);
    assert_eq!(s.test, s.train);
    // The same arrays in archives: stored, deflated, with a test split inside or by fraction.
    for deflate in [false, true] {
        let both = zip(&[
            ("x.npy", xb.clone(), deflate),
            ("y.npy", yb.clone(), deflate),
        ]);
        let p = write(&dir, "d.npz", &both);
        let s = load_table(&TableOptions {
            path: p.clone(),
            test_fraction: Some(0.25),
            split_seed: 9,
            ..TableOptions::default()
        })
        .unwrap();
        assert_eq!((s.train.len(), s.test.len()), (3, 1));
        assert_eq!(s.test.origin.features, format!("{} (x.npy)", p.display()));
        let split = zip(&[
            ("x_train.npy", xb.clone(), deflate),
            ("y_train.npy", yb.clone(), deflate),
            ("x_test.npy", xb.clone(), deflate),
            ("y_test.npy", yb.clone(), deflate),
        ]);
        let p = write(&dir, "s.npz", &split);
        let data = load_path(&p, &LoadOptions::default()).unwrap();
        assert_eq!(data.train().shape(), [2, 3]);
        assert_eq!((data.train().len(), data.test().len()), (4, 4));
        assert_eq!(data.test().label(2), Some(2));
    }
    // Regression targets [n, k] and an autoencoder with no targets at all.
    let t = npy(
        "<f8",
        &[4, 2],
        &f64s(&[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]),
    );
    let tp = write(&dir, "t.npy", &t);
    let s = load_table(&TableOptions {
        path: xp.clone(),
        targets: Some(tp.clone()),
        task: Task::Regression,
        test_fraction: Some(0.5),
        ..TableOptions::default()
    })
    .unwrap();
    let split: Split = (&s.train).into();
    assert_eq!(split.value_width(), 2);
    assert_eq!(split.values(0).unwrap().len(), 2);
    let s = load_table(&TableOptions {
        path: write(&dir, "x.npz", &zip(&[("x.npy", xb.clone(), true)])),
        task: Task::Autoencoder,
        ..TableOptions::default()
    })
    .unwrap();
    assert_eq!(s.train.targets, Targets::None);
}

#[test]
fn bad_npz_archives_and_pairs_name_the_member() {
    let dir = scratch("npz-bad");
    let xb = npy("<f4", &[4, 2], &f32s(&[0.0; 8]));
    let yb = npy("<i8", &[4], &i64s(&[0, 1, 0, 1]));
    let good = zip(&[("x.npy", xb.clone(), true), ("y.npy", yb.clone(), false)]);
    let opts = |p: PathBuf| TableOptions {
        path: p,
        ..TableOptions::default()
    };
    // A flipped byte in the stored member's data: its CRC no longer matches.
    let mut crc = good.clone();
    let at = crc.windows(4).position(|w| w == b"PK\x01\x02").unwrap() - 1;
    crc[at] ^= 0x40;
    // (archive bytes, fragments)
    let cases: Vec<(Vec<u8>, &[&str])> = vec![
        (
            good[..good.len() - 10].to_vec(),
            &["no zip directory", "truncated"],
        ),
        (crc, &["(y.npy)", "CRC-32"]),
        (
            zip(&[("x.npy", xb.clone(), true)]),
            &["has x but no y", "arrays x"],
        ),
        (
            zip(&[("a.npy", xb.clone(), false)]),
            &["holds arrays a", "x and y"],
        ),
        (
            zip(&[
                ("x_train.npy", xb.clone(), false),
                ("y_train.npy", yb.clone(), false),
            ]),
            &["not all of y_train, x_test, y_test"],
        ),
        (
            zip(&[
                ("x.npy", xb.clone(), false),
                ("y.npy", npy("<i8", &[3], &i64s(&[0, 1, 0])), false),
            ]),
            &["(y.npy)", "3 targets for 4 samples"],
        ),
        (
            zip(&[
                ("x.npy", npy("<f4", &[8], &f32s(&[0.0; 8])), false),
                ("y.npy", yb.clone(), false),
            ]),
            &["(x.npy)", "features of shape [8]"],
        ),
        (
            zip(&[
                ("x.npy", xb.clone(), false),
                ("y.npy", npy("<i8", &[4, 2], &i64s(&[0; 8])), false),
            ]),
            &["(y.npy)", "targets of shape [4, 2]"],
        ),
        (
            zip(&[
                ("x.npy", xb[..xb.len() - 4].to_vec(), true),
                ("y.npy", yb.clone(), false),
            ]),
            &["(x.npy)", "truncated"],
        ),
        (
            b"not a zip at all, just some bytes that go on for a while".to_vec(),
            &["not a .npz archive"],
        ),
    ];
    for (i, (bytes, want)) in cases.iter().enumerate() {
        let p = write(&dir, &format!("case{i}.npz"), bytes);
        let err = load_table(&opts(p)).unwrap_err().to_string();
        for w in *want {
            assert!(err.contains(w), "case {i}: `{err}` lacks `{w}`");
        }
        assert!(err.contains(&format!("case{i}.npz")), "case {i}: `{err}`");
    }
    // .npy features without their labels, a test file of another kind, both a test file and a
    // fraction.
    let xp = write(&dir, "x.npy", &xb);
    assert_err(
        load_table(&opts(xp.clone())),
        &["x.npy", "holds features only", "`targets`"],
    );
    let yp = write(&dir, "y.npy", &yb);
    let with = |o: TableOptions| TableOptions {
        targets: Some(yp.clone()),
        ..o
    };
    assert_err(
        load_table(&with(TableOptions {
            test: Some(dir.join("t.csv")),
            ..opts(xp.clone())
        })),
        &["same kind", ".npy"],
    );
    assert_err(
        load_table(&with(TableOptions {
            test: Some(xp.clone()),
            test_fraction: Some(0.5),
            ..opts(xp.clone())
        })),
        &["either a test file or a test fraction"],
    );
    assert_err(
        load_table(&with(TableOptions {
            label: vec!["y".into()],
            ..opts(xp.clone())
        })),
        &["CSV files only"],
    );
    // A .npy alone through a plain path says how to give its labels.
    assert_err(
        load_path(&xp, &LoadOptions::default()),
        &["holds features only"],
    );
    assert_err(
        load_path(&write(&dir, "notes.txt", b"hi"), &LoadOptions::default()),
        &[
            "notes.txt",
            "neither a dataset directory",
            "nor a table file",
        ],
    );
}

#[test]
fn fifos_named_like_tables_are_refused_not_waited_on() {
    let dir = scratch("fifo");
    for name in ["t.csv", "x.npy", "d.npz"] {
        let path = dir.join(name);
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load_path(&p, &LoadOptions::default()).map(|_| ()));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("loading the FIFO {name} hung"));
        assert_err(result, &[name, "FIFO"]);
    }
}

// ---------------------------------------------------------------- splits and statistics

fn numbered(n: usize) -> Table {
    Table {
        features: (0..n).map(|i| i as f32).collect(),
        shape: vec![1],
        targets: Targets::Classes((0..n as u32).collect()),
        feature_names: vec!["v".into()],
        origin: qfx_data::Origin::arrays("f".into(), "f".into(), n),
    }
}

fn ids(t: &Table) -> Vec<u32> {
    t.labels().unwrap().to_vec()
}

#[test]
fn a_fractional_split_depends_on_the_seed_alone() {
    let t = numbered(1000);
    let a: TableSplits = t.split(0.2, 5).unwrap();
    let b = t.split(0.2, 5).unwrap();
    assert_eq!(a, b, "the same seed gives the same split");
    assert_eq!((a.train.len(), a.test.len()), (800, 200));
    // Disjoint, together everything, each in file order.
    let (tr, te) = (ids(&a.train), ids(&a.test));
    let mut all: Vec<u32> = tr.iter().chain(&te).copied().collect();
    assert!(tr.windows(2).all(|w| w[0] < w[1]) && te.windows(2).all(|w| w[0] < w[1]));
    all.sort_unstable();
    assert_eq!(all, (0..1000).collect::<Vec<u32>>());
    // Another seed draws another test set; the features follow their labels.
    let c = t.split(0.2, 6).unwrap();
    assert_ne!(ids(&c.test), te);
    for (i, &l) in ids(&c.test).iter().enumerate() {
        assert_eq!(c.test.sample(i), [l as f32]);
    }
    // The draw is pinned: a change of generator or rule would silently move samples between
    // the splits of existing runs.
    assert_eq!(&te[..5], [1, 3, 10, 13, 19], "first test samples of seed 5");
}

#[test]
fn feature_statistics_are_per_feature_and_per_channel() {
    let t = Table {
        features: vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 4.0, 10.0],
        shape: vec![2],
        targets: Targets::None,
        feature_names: vec![],
        origin: qfx_data::Origin::arrays("f".into(), "f".into(), 4),
    };
    let (mean, std) = t.feature_stats();
    assert_eq!(mean, [2.5, 10.0]);
    // Population standard deviation; a constant feature gets 1.
    assert_eq!(std, [1.25f64.sqrt() as f32, 1.0]);
    // A signal [2 channels, 2 positions]: statistics over samples and positions.
    let s = Table {
        shape: vec![2, 2],
        origin: qfx_data::Origin::arrays("f".into(), "f".into(), 2),
        ..t
    };
    let (mean, _) = s.feature_stats();
    assert_eq!(
        mean,
        [
            (1.0 + 10.0 + 3.0 + 10.0) / 4.0,
            (2.0 + 10.0 + 4.0 + 10.0) / 4.0
        ]
    );
}
