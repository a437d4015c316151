//! Augmentation of byte images in `[c, h, w]` order: random crop with zero padding and
//! horizontal flip, the usual pair for 32×32 images. Pure functions of the image and the
//! generator, so the same generator state gives the same batch.

use crate::{DataError, Dataset, Rng};

fn check_len(image: &[u8], shape: [usize; 3]) -> Result<(), DataError> {
    let want = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if want != Some(image.len()) {
        return Err(DataError::invalid(format!(
            "an image of shape {}×{}×{} needs {} bytes, got {}",
            shape[0],
            shape[1],
            shape[2],
            want.map_or("too many".to_string(), |n| n.to_string()),
            image.len()
        )));
    }
    Ok(())
}

/// `image` padded with `pad` zero pixels on every side, then cropped back to its size at
/// offset (`dy`, `dx`) in the padded image: `dy`, `dx` in `0..=2·pad`, and `(pad, pad)` gives
/// the image unchanged. Output pixel `(y, x)` is input pixel `(y + dy − pad, x + dx − pad)`,
/// or 0 where that is outside.
pub fn crop_padded(
    image: &[u8],
    shape: [usize; 3],
    pad: usize,
    dy: usize,
    dx: usize,
) -> Result<Vec<u8>, DataError> {
    check_len(image, shape)?;
    let max = pad.saturating_mul(2);
    if dy > max || dx > max {
        return Err(DataError::invalid(format!(
            "crop offset ({dy}, {dx}) outside 0..={max} for padding {pad}"
        )));
    }
    let [c, h, w] = shape;
    let mut out = vec![0u8; image.len()];
    // Output columns x with 0 <= x + dx - pad < w, and where they come from.
    let x0 = pad.saturating_sub(dx);
    let x1 = (w + pad).saturating_sub(dx).min(w);
    let sx0 = (x0 + dx).saturating_sub(pad);
    for ch in 0..c {
        for y in 0..h {
            let Some(sy) = (y + dy).checked_sub(pad).filter(|&sy| sy < h) else {
                continue;
            };
            if x0 < x1 {
                let dst = (ch * h + y) * w;
                let src = (ch * h + sy) * w + sx0;
                out[dst + x0..dst + x1].copy_from_slice(&image[src..src + (x1 - x0)]);
            }
        }
    }
    Ok(out)
}

/// `image` mirrored left to right.
pub fn hflip(image: &[u8], shape: [usize; 3]) -> Result<Vec<u8>, DataError> {
    check_len(image, shape)?;
    let w = shape[2];
    let mut out = image.to_vec();
    if w > 0 {
        out.chunks_exact_mut(w).for_each(|row| row.reverse());
    }
    Ok(out)
}

/// Which augmentations to apply; the default applies none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Augment {
    /// Zero padding for the random crop; 0 for no crop.
    pub pad: usize,
    /// Mirror left to right with probability ½.
    pub flip: bool,
}

impl Augment {
    /// The usual CIFAR-10 augmentation: pad 4, random 32×32 crop, random flip.
    pub const CIFAR: Augment = Augment { pad: 4, flip: true };

    /// Applies the augmentation to one image. Draws from `rng`, in this order: the crop's row
    /// offset and column offset (each uniform in `0..=2·pad`, only when `pad > 0`), then the
    /// flip coin (only when `flip`).
    pub fn apply(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut Rng,
    ) -> Result<Vec<u8>, DataError> {
        check_len(image, shape)?;
        let mut out = if self.pad > 0 {
            let n = self.pad as u64 * 2 + 1;
            let dy = rng.below(n) as usize;
            let dx = rng.below(n) as usize;
            crop_padded(image, shape, self.pad, dy, dx)?
        } else {
            image.to_vec()
        };
        if self.flip && rng.coin() {
            out = hflip(&out, shape)?;
        }
        Ok(out)
    }
}

/// A batch: images one after the other, and their labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `labels.len()` images of the dataset's shape.
    pub images: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// The examples `indices` of `data` (for example a slice of [`epoch_order`](crate::epoch_order)),
/// each augmented by `augment` with draws from `rng` in index order.
pub fn batch(
    data: &Dataset,
    indices: &[usize],
    augment: &Augment,
    rng: &mut Rng,
) -> Result<Batch, DataError> {
    let n = data.image_len();
    if data.images.len() != data.len() * n {
        return Err(DataError::invalid(format!(
            "the dataset holds {} image bytes for {} images of {n} bytes",
            data.images.len(),
            data.len()
        )));
    }
    let mut images = Vec::with_capacity(indices.len() * n);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        if i >= data.len() {
            return Err(DataError::invalid(format!(
                "example {i} requested from a dataset of {}",
                data.len()
            )));
        }
        let image = &data.images[i * n..(i + 1) * n];
        images.extend(augment.apply(image, data.shape, rng)?);
        labels.push(data.labels[i]);
    }
    Ok(Batch { images, labels })
}
