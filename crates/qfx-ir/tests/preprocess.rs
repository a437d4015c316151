//! Input normalization in the IR: documents written before tables existed read as pixel
//! normalization and are written back unchanged; a table's per-feature standardization
//! (`"input": "values"`) round-trips, fits any input shape, and computes `(v − mean) / std` per
//! feature (per channel of a signal) in `f32`.

use qfx_fixed::Format;
use qfx_ir::{Layer, Model, Op, Preprocess, PreprocessInput, INPUT, IR_VERSION};

fn model(input_shape: Vec<usize>, preprocess: Option<Preprocess>) -> Model {
    let f: Format = "ap_fixed<8,3>".parse().unwrap();
    Model {
        version: IR_VERSION,
        name: "p".into(),
        input_shape,
        preprocess,
        layers: vec![Layer {
            name: "q".into(),
            inputs: vec![INPUT.into()],
            op: Op::Quantize,
            output: f,
        }],
    }
}

#[test]
fn pixel_documents_read_and_write_as_before() {
    let m = model(vec![1, 2, 2], Some(Preprocess::uniform(0.5, 0.25)));
    let text = m.to_json();
    // No new key in a pixel document: older readers (whose Preprocess refuses unknown keys)
    // still read what this version writes for images.
    assert!(!text.contains("\"input\":"), "{text}");
    let old = text.replace("\"std\": [\n      0.25\n    ]", "\"std\": [0.25]");
    let back = Model::from_json(&old).unwrap();
    assert_eq!(back.preprocess.unwrap().input, PreprocessInput::Pixels);
    assert_eq!(
        Preprocess::uniform(0.5, 0.25).apply(&[0, 255, 51, 102], [1, 2, 2]),
        [-2.0, 2.0, (0.2f32 - 0.5) / 0.25, (0.4f32 - 0.5) / 0.25]
    );
}

#[test]
fn value_standardization_round_trips_and_applies_per_feature() {
    let p = Preprocess::values(vec![1.0, -2.0, 0.5], vec![2.0, 0.5, 4.0]);
    let m = model(vec![3], Some(p.clone()));
    m.resolve().unwrap();
    let text = m.to_json();
    assert!(text.contains("\"input\": \"values\""), "{text}");
    assert_eq!(Model::from_json(&text).unwrap(), m);
    assert_eq!(
        p.apply_values(&[3.0, -1.0, 0.5, 1.0, -2.0, 4.5], &[3]),
        [1.0, 2.0, 0.0, 0.0, 0.0, 1.0]
    );
    // A signal [2 channels, 3 positions]: one mean and std per channel.
    let s = Preprocess::values(vec![1.0, 10.0], vec![1.0, 2.0]);
    assert_eq!(
        s.apply_values(&[1.0, 2.0, 3.0, 10.0, 12.0, 14.0], &[2, 3]),
        [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]
    );
    // Values fit any input; pixels need [c, h, w]; one value per feature or one in all.
    #[track_caller]
    fn refused(m: Model, want: &str) {
        let err = m.resolve().unwrap_err().to_string();
        assert!(err.contains(want), "`{err}` lacks `{want}`");
    }
    model(vec![2, 3], Some(s)).resolve().unwrap();
    refused(
        model(vec![3], Some(Preprocess::uniform(0.0, 1.0))),
        "image preprocessing needs a [c, h, w] input",
    );
    refused(
        model(vec![4], Some(Preprocess::values(vec![0.0; 3], vec![1.0]))),
        "preprocess mean has 3 values for 4 channels",
    );
    refused(
        model(vec![3], Some(Preprocess::values(vec![0.0], vec![0.0]))),
        "std must be positive",
    );
    // An unknown kind of input is refused, not read as pixels.
    let bad = text.replace("\"values\"", "\"bytes\"");
    assert!(Model::from_json(&bad).is_err());
}
