//! CIFAR-10 binary batches and image folders written by the tests in the real formats, format
//! detection, and model compatibility: correct loading, and clear errors naming the file.

use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage, RgbaImage};
use qfx_data::{
    detect, embedded_fashion_mnist_dir, find_cifar10, load, load_cifar10_dir, load_image_folder,
    load_with, DataError, Dataset, LoadOptions, Source,
};

const PARTIAL: LoadOptions = LoadOptions {
    allow_partial: true,
};

/// A fresh, empty temporary directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qfx-data-{}-{name}", std::process::id()));
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

// ---------------------------------------------------------------- CIFAR-10

/// The pixel of record `seed` at channel `c`, row `y`, column `x`: distinct enough that a
/// plane or row mix-up shows.
fn cifar_pixel(seed: usize, c: usize, y: usize, x: usize) -> u8 {
    (seed * 31 + c * 85 + y * 7 + x) as u8
}

/// CIFAR-10 records, one per (label, seed), in the real layout: label, R plane, G, B.
fn cifar_records(records: &[(u8, usize)]) -> Vec<u8> {
    let mut b = Vec::new();
    for &(label, seed) in records {
        b.push(label);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    b.push(cifar_pixel(seed, c, y, x));
                }
            }
        }
    }
    b
}

#[track_caller]
fn assert_cifar_image(d: &Dataset, i: usize, seed: usize) {
    let img = &d.images[i * 3072..(i + 1) * 3072];
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                assert_eq!(img[(c * 32 + y) * 32 + x], cifar_pixel(seed, c, y, x));
            }
        }
    }
}

#[test]
fn cifar10_batches_load() {
    let dir = scratch("cifar");
    std::fs::write(
        dir.join("data_batch_1.bin"),
        cifar_records(&[(3, 1), (9, 2), (0, 3)]),
    )
    .unwrap();
    std::fs::write(dir.join("data_batch_2.bin"), cifar_records(&[(7, 4)])).unwrap();
    std::fs::write(dir.join("test_batch.bin"), cifar_records(&[(1, 5), (2, 6)])).unwrap();

    // Batches 3 to 5 are missing: used only when a partial dataset is allowed.
    let s = find_cifar10(&dir).unwrap().load_with(&PARTIAL).unwrap();
    assert_eq!(s.train.labels, [3, 9, 0, 7]);
    assert_eq!(s.test.labels, [1, 2]);
    for d in [&s.train, &s.test] {
        assert_eq!(
            (d.shape, d.classes, d.class_names.len()),
            ([3, 32, 32], 10, 10)
        );
        assert_eq!(d.images.len(), d.len() * 3072);
    }
    assert_eq!(s.train.class_name(3), "cat");
    for (i, seed) in [1, 2, 3, 4].into_iter().enumerate() {
        assert_cifar_image(&s.train, i, seed);
    }
    assert_cifar_image(&s.test, 1, 6);

    // Only batches 1 and 2 are present: said so.
    let files = find_cifar10(&dir).unwrap();
    assert_eq!(files.missing_train, [3, 4, 5]);
    let text = files.to_string();
    assert!(
        text.contains("data_batch_1.bin, data_batch_2.bin")
            && text.contains("batches 3, 4, 5 absent"),
        "{text}"
    );

    // The official archive's layout: the batches in cifar-10-batches-bin/, found by `load`.
    let root = scratch("cifar-root");
    std::fs::rename(&dir, root.join("cifar-10-batches-bin")).unwrap();
    let source = detect(&root).unwrap();
    assert!(matches!(source, Source::Cifar10(_)), "{source:?}");
    assert_eq!(load_with(&root, &PARTIAL).unwrap(), s);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn incomplete_cifar10_is_refused_unless_allowed() {
    let dir = scratch("cifar-partial");
    for i in [1, 2, 4] {
        let records: Vec<(u8, usize)> = (0..i).map(|k| (k as u8, k)).collect();
        std::fs::write(
            dir.join(format!("data_batch_{i}.bin")),
            cifar_records(&records),
        )
        .unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), cifar_records(&[(1, 5)])).unwrap();
    let want = [
        "incomplete CIFAR-10",
        "found 3 of the 5 training batch files",
        "data_batch_3.bin, data_batch_5.bin missing",
        "holding 7 training images",
        "50000",
        "allow_partial",
        dir.to_str().unwrap(),
    ];
    assert_err(load_cifar10_dir(&dir), &want);
    assert_err(load(&dir), &want);
    assert_err(find_cifar10(&dir).unwrap().load(), &want);
    let s = load_with(&dir, &PARTIAL).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (7, 1));

    // All five: loaded without being asked.
    for i in [3, 5] {
        std::fs::write(
            dir.join(format!("data_batch_{i}.bin")),
            cifar_records(&[(9, i)]),
        )
        .unwrap();
    }
    assert_eq!(load_cifar10_dir(&dir).unwrap().train.len(), 9);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupt_cifar10_gives_clear_errors() {
    let good = cifar_records(&[(1, 1), (2, 2)]);
    let mut bad_label = good.clone();
    bad_label[3073] = 10;
    let cifar100 = vec![0u8; 3 * 3074];
    let cases: [(&str, Vec<u8>, &[&str]); 4] = [
        (
            "truncated",
            good[..good.len() - 5].to_vec(),
            &[
                "truncated",
                "6141 bytes",
                "1 whole records and 3068 bytes over",
            ],
        ),
        (
            "label",
            bad_label,
            &["record 1 (byte offset 3073) has label 10", "0 to 9"],
        ),
        ("empty", Vec::new(), &["empty file"]),
        ("cifar100", cifar100, &["CIFAR-100", "not supported"]),
    ];
    for (name, bytes, fragments) in cases {
        let dir = scratch(&format!("cifar-bad-{name}"));
        std::fs::write(dir.join("data_batch_1.bin"), &good).unwrap();
        std::fs::write(dir.join("test_batch.bin"), &bytes).unwrap();
        let mut want = fragments.to_vec();
        want.push("test_batch.bin");
        assert_err(load_cifar10_dir(&dir), &want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    let dir = scratch("cifar-missing");
    std::fs::write(dir.join("data_batch_1.bin"), &good).unwrap();
    assert_err(load_cifar10_dir(&dir), &["missing test_batch.bin"]);
    // Detected as CIFAR-10 all the same, so the error is about the missing file.
    assert_err(load(&dir), &["missing test_batch.bin"]);
    std::fs::remove_file(dir.join("data_batch_1.bin")).unwrap();
    std::fs::write(dir.join("test_batch.bin"), &good).unwrap();
    assert_err(load_cifar10_dir(&dir), &["no training batch"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- image folders

/// A colour test pattern: red = 10·x, green = 10·y, blue = `tag`.
fn rgb(w: u32, h: u32, tag: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| image::Rgb([10 * x as u8, 10 * y as u8, tag]))
}

fn save_png(img: impl Into<DynamicImage>, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.into().save_with_format(path, ImageFormat::Png).unwrap();
}

/// An RGB image's bytes in `[c, h, w]` order.
fn planar(img: &RgbImage) -> Vec<u8> {
    (0..3)
        .flat_map(|c| img.pixels().map(move |p| p.0[c]))
        .collect()
}

/// train/{cat,dog} and test/{cat,dog} of 4×3 colour PNGs, one JPEG among them.
fn colour_folder(name: &str) -> PathBuf {
    let root = scratch(name);
    save_png(rgb(4, 3, 1), &root.join("train/cat/b.png"));
    save_png(rgb(4, 3, 2), &root.join("train/cat/a.png"));
    save_png(rgb(4, 3, 3), &root.join("train/dog/x.PNG"));
    save_png(rgb(4, 3, 4), &root.join("test/cat/t.png"));
    std::fs::create_dir_all(root.join("test/dog")).unwrap();
    rgb(4, 3, 5)
        .save_with_format(root.join("test/dog/photo.jpg"), ImageFormat::Jpeg)
        .unwrap();
    // Hidden files are skipped.
    std::fs::write(root.join("train/cat/.DS_Store"), b"junk").unwrap();
    root
}

#[test]
fn image_folder_loads() {
    let root = colour_folder("folder");
    let s = load_image_folder(&root).unwrap();
    assert_eq!(s.train.class_names, ["cat", "dog"]);
    assert_eq!(s.test.class_names, ["cat", "dog"]);
    assert_eq!((s.train.shape, s.train.classes), ([3, 3, 4], 2));
    assert_eq!(s.train.labels, [0, 0, 1]);
    assert_eq!(s.test.labels, [0, 1]);
    // File-name order within a class (a.png, tag 2, first), planes R, G, B.
    for (i, tag) in [2u8, 1, 3].into_iter().enumerate() {
        let img = &s.train.images[i * 36..(i + 1) * 36];
        for y in 0..3 {
            for x in 0..4 {
                let at = |c: usize| img[(c * 3 + y) * 4 + x];
                assert_eq!(
                    [at(0), at(1), at(2)],
                    [10 * x as u8, 10 * y as u8, tag],
                    "image {i} ({x}, {y})"
                );
            }
        }
        assert_eq!(img, planar(&rgb(4, 3, tag)));
    }
    assert_eq!(s.test.images.len(), 2 * 36);
    assert!(matches!(detect(&root).unwrap(), Source::ImageFolder(_)));
    assert_eq!(load(&root).unwrap(), s);

    // Opaque RGBA: the alpha channel is dropped.
    let opaque = RgbaImage::from_fn(4, 3, |x, y| {
        image::Rgba([10 * x as u8, 10 * y as u8, 6, 255])
    });
    save_png(opaque, &root.join("train/dog/y.png"));
    let s2 = load_image_folder(&root).unwrap();
    assert_eq!(s2.train.labels, [0, 0, 1, 1]);
    assert_eq!(s2.train.images[3 * 36..], planar(&rgb(4, 3, 6)));
    std::fs::remove_dir_all(&root).unwrap();

    // Grayscale: one channel.
    let root = scratch("folder-gray");
    for (path, v) in [
        ("train/0/a.png", 7u8),
        ("train/1/a.png", 8),
        ("test/0/a.png", 9),
        ("test/1/a.png", 10),
    ] {
        save_png(
            GrayImage::from_pixel(5, 2, image::Luma([v])),
            &root.join(path),
        );
    }
    let s = load(&root).unwrap();
    assert_eq!(
        (s.train.shape, s.train.class_names.clone()),
        ([1, 2, 5], vec!["0".to_string(), "1".to_string()])
    );
    assert_eq!(s.test.images, [[9u8; 10], [10; 10]].concat());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_image_folders_give_clear_errors() {
    type Spoil = fn(&Path);
    let cases: [(&str, Spoil, &[&str]); 8] = [
        (
            "size",
            |r| save_png(rgb(5, 3, 0), &r.join("test/dog/big.png")),
            &[
                "big.png",
                "5×3 colour (3 channels)",
                "4×3 colour",
                "same size and channel count",
            ],
        ),
        (
            "channels",
            |r| save_png(GrayImage::new(4, 3), &r.join("train/dog/gray.png")),
            &[
                "gray.png",
                "grayscale (1 channel)",
                "same size and channel count",
            ],
        ),
        (
            "undecodable",
            |r| {
                std::fs::write(
                    r.join("train/cat/broken.png"),
                    b"\x89PNG\r\n\x1a\nnot really",
                )
                .unwrap()
            },
            &["broken.png", "cannot decode the image"],
        ),
        (
            "classes",
            |r| {
                std::fs::create_dir_all(r.join("train/bird")).unwrap();
                save_png(rgb(4, 3, 0), &r.join("train/bird/b.png"));
                std::fs::rename(r.join("test/dog"), r.join("test/wolf")).unwrap();
            },
            &[
                "different class folders",
                "only in train/: [bird, dog]",
                "only in test/: [wolf]",
            ],
        ),
        (
            "transparent",
            |r| save_png(RgbaImage::new(4, 3), &r.join("train/cat/ghost.png")),
            &["ghost.png", "transparent pixels", "x=0, y=0"],
        ),
        (
            "not-image",
            |r| std::fs::write(r.join("train/dog/notes.txt"), b"hello").unwrap(),
            &["notes.txt", "not an image file"],
        ),
        (
            "empty-class",
            |r| std::fs::remove_file(r.join("test/cat/t.png")).unwrap(),
            &["cat", "class folder without images"],
        ),
        (
            "no-test",
            |r| std::fs::remove_dir_all(r.join("test")).unwrap(),
            &["test", "missing directory", "train/<class>/"],
        ),
    ];
    for (name, spoil, fragments) in cases {
        let root = colour_folder(&format!("folder-bad-{name}"));
        spoil(&root);
        assert_err(load_image_folder(&root), fragments);
        std::fs::remove_dir_all(&root).unwrap();
    }
}

// ---------------------------------------------------------------- detection, compatibility

#[test]
fn detection() {
    let idx = embedded_fashion_mnist_dir();
    let source = detect(&idx).unwrap();
    assert!(matches!(source, Source::Idx(_)), "{source:?}");
    assert!(source.to_string().starts_with("IDX files in"));

    let dir = scratch("detect");
    assert_err(
        detect(&dir),
        &[
            "no dataset found",
            "train-images-idx3-ubyte",
            "data_batch_1.bin",
            "cifar-10-batches-bin/",
            "image folder (train/<class>/*.png|jpg|jpeg",
        ],
    );
    assert_err(load(&dir.join("nowhere")), &["cannot read", "nowhere"]);
    std::fs::write(dir.join("file"), b"").unwrap();
    assert_err(load(&dir.join("file")), &["not a directory"]);
    std::fs::create_dir_all(dir.join("train")).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), b"").unwrap();
    assert_err(
        detect(&dir),
        &["more than one dataset (IDX files and an image folder)"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compatibility_with_the_model() {
    let s = load(&embedded_fashion_mnist_dir()).unwrap();
    s.train.check_compatible([1, 28, 28], 10).unwrap();
    s.test.check_compatible([1, 28, 28], 12).unwrap();
    assert_err(
        s.train.check_compatible([3, 32, 32], 10),
        &["images are 1×28×28 (channels×height×width) but the model expects 3×32×32"],
    );
    let nine = s.train.labels.iter().position(|&l| l == 9).unwrap();
    let first_big = s.train.labels.iter().position(|&l| l >= 5).unwrap();
    assert!(first_big <= nine);
    let label = s.train.labels[first_big];
    assert_err(
        s.train.check_compatible([1, 28, 28], 5),
        &[
            &format!("image {first_big} has label {label}"),
            "only 5 classes (labels 0 to 4)",
        ],
    );
    let mut broken = s.test.take(3);
    broken.images.pop();
    assert_err(
        broken.check_compatible([1, 28, 28], 10),
        &["2351 image bytes for 3 labels"],
    );
}

/// The full Fashion-MNIST, where `scripts/fetch-fashion-mnist` has placed it (it is
/// git-ignored, so a fresh clone skips this, saying so).
#[test]
fn full_fashion_mnist_if_fetched() {
    let dir = embedded_fashion_mnist_dir().join("../fashion-mnist-full");
    if !dir.is_dir() {
        println!(
            "SKIPPED: {} absent (scripts/fetch-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let s = load(&dir).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (60000, 10000));
    s.train.check_compatible([1, 28, 28], 10).unwrap();
    s.test.check_compatible([1, 28, 28], 10).unwrap();
    // The embedded subset is the first 6,000 and 1,000 images.
    let sub = load(&embedded_fashion_mnist_dir()).unwrap();
    assert_eq!(s.train.take(6000), sub.train);
    assert_eq!(s.test.take(1000), sub.test);
}
