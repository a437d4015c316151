//! Image folders: `root/train/<class>/*.png|jpg|jpeg` and `root/test/<class>/…`.
//!
//! - Classes are the sub-folder names sorted (byte order); both splits must have the same set,
//!   and every class folder must hold at least one image. Labels follow that order.
//! - Images are read in file-name order within a class; the format is recognised from the
//!   content (a PNG named `.jpg` still loads). Files whose names start with `.` are skipped;
//!   any other file that is not `.png`, `.jpg` or `.jpeg` is refused, and so is anything named
//!   like an image that is not a regular file (a FIFO, a device).
//! - Every image must have the size and the channel count of the first one: grayscale is one
//!   channel, colour three. 16-bit images are reduced to 8 bits. An alpha channel is dropped when
//!   every pixel is opaque, and refused otherwise (the colour under a transparent pixel is
//!   arbitrary: flatten such images onto a background first).

use std::path::{Path, PathBuf};

use crate::{DataError, Dataset, Splits};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
const LAYOUT: &str = "expected an image folder: train/<class>/*.png|jpg|jpeg and test/<class>/…";

/// One decoded image: `[c, h, w]` and its planar bytes.
struct Image {
    shape: [usize; 3],
    pixels: Vec<u8>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The entries of `dir` sorted by name, hidden ones (`.name`) left out.
fn entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_str()
            .ok_or_else(|| DataError::format(&path, "the name is not valid UTF-8"))?
            .to_string();
        if !name.starts_with('.') {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The class folders of one split, sorted.
fn classes(split: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    if !split.is_dir() {
        return Err(DataError::format(
            split,
            format!("missing directory: {LAYOUT}"),
        ));
    }
    let entries = entries(split)?;
    if let Some((_, file)) = entries.iter().find(|(_, p)| !p.is_dir()) {
        return Err(DataError::format(
            file,
            format!("not in a class folder: {LAYOUT}"),
        ));
    }
    if entries.is_empty() {
        return Err(DataError::format(
            split,
            format!("no class folders: {LAYOUT}"),
        ));
    }
    Ok(entries)
}

fn decode(path: &Path) -> Result<Image, DataError> {
    // A FIFO named like an image would block the open forever: regular files only.
    let (file, _) = crate::files::open_regular(path)?;
    let img = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(io(path))?
        .decode()
        .map_err(|e| DataError::format(path, format!("cannot decode the image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let colour = img.color();
    let channels = if colour.has_color() { 3 } else { 1 };
    // Interleaved 8-bit samples, alpha last where there is one.
    let (samples, stride) = match (colour.has_color(), colour.has_alpha()) {
        (true, true) => (img.to_rgba8().into_raw(), 4),
        (true, false) => (img.to_rgb8().into_raw(), 3),
        (false, true) => (img.to_luma_alpha8().into_raw(), 2),
        (false, false) => (img.to_luma8().into_raw(), 1),
    };
    if stride > channels {
        if let Some(i) = samples
            .chunks_exact(stride)
            .position(|px| px[stride - 1] != 255)
        {
            return Err(DataError::format(
                path,
                format!(
                    "has transparent pixels (the first at x={}, y={}); only fully opaque \
                     images are accepted (their alpha channel is dropped): flatten it onto a \
                     background first",
                    i % w.max(1),
                    i / w.max(1)
                ),
            ));
        }
    }
    let plane = w * h;
    let mut pixels = vec![0u8; channels * plane];
    for (i, px) in samples.chunks_exact(stride).enumerate() {
        for c in 0..channels {
            pixels[c * plane + i] = px[c];
        }
    }
    Ok(Image {
        shape: [channels, h, w],
        pixels,
    })
}

fn describe(shape: [usize; 3]) -> String {
    let kind = match shape[0] {
        1 => "grayscale (1 channel)",
        _ => "colour (3 channels)",
    };
    format!("{}×{} {kind}", shape[2], shape[1])
}

/// The first image read: its path and shape, which every other image must match.
type Reference = Option<(PathBuf, [usize; 3])>;

fn load_split(
    classes: &[(String, PathBuf)],
    names: &[String],
    first: &mut Reference,
) -> Result<Dataset, DataError> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for (label, (_, dir)) in classes.iter().enumerate() {
        let files = entries(dir)?;
        if files.is_empty() {
            return Err(DataError::format(
                dir,
                "class folder without images: every class needs at least one",
            ));
        }
        for (name, path) in files {
            let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
            if path.is_dir() || !ext.is_some_and(|e| EXTENSIONS.contains(&e.as_str())) {
                return Err(DataError::format(
                    &path,
                    "not an image file: a class folder holds only .png, .jpg and .jpeg files",
                ));
            }
            let img = decode(&path)?;
            match first {
                None => *first = Some((path.clone(), img.shape)),
                Some((p, shape)) if *shape != img.shape => {
                    return Err(DataError::format(
                        &path,
                        format!(
                            "{}, but {} is {}: all images must have the same size and channel \
                             count",
                            describe(img.shape),
                            p.display(),
                            describe(*shape)
                        ),
                    ))
                }
                Some(_) => {}
            }
            images.extend_from_slice(&img.pixels);
            labels.push(label as u8);
        }
    }
    Ok(Dataset {
        images,
        labels,
        shape: first.as_ref().map_or([0; 3], |(_, s)| *s),
        classes: names.len(),
        class_names: names.to_vec(),
    })
}

/// Loads an image folder: `root/train/<class>/*.png|jpg|jpeg` and `root/test/<class>/…` (see
/// the module documentation for the rules). The class names are in
/// [`Dataset::class_names`](crate::Dataset::class_names).
pub fn load_image_folder(root: &Path) -> Result<Splits, DataError> {
    let train_classes = classes(&root.join("train"))?;
    let test_classes = classes(&root.join("test"))?;
    let names: Vec<String> = train_classes.iter().map(|(n, _)| n.clone()).collect();
    let test_names: Vec<String> = test_classes.iter().map(|(n, _)| n.clone()).collect();
    if names != test_names {
        let only = |a: &[String], b: &[String]| {
            a.iter()
                .filter(|n| !b.contains(n))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(DataError::format(
            root,
            format!(
                "train/ and test/ have different class folders (only in train/: [{}]; only in \
                 test/: [{}]); both splits need the same classes",
                only(&names, &test_names),
                only(&test_names, &names)
            ),
        ));
    }
    if names.len() > 256 {
        return Err(DataError::format(
            root,
            format!(
                "{} class folders; at most 256 classes are supported",
                names.len()
            ),
        ));
    }
    let mut first = None;
    let train = load_split(&train_classes, &names, &mut first)?;
    let test = load_split(&test_classes, &names, &mut first)?;
    Ok(Splits { train, test })
}
