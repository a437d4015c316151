//! The checkpoint tensor reader refuses every file the safetensors format does not allow, with
//! an error naming the file and the problem: tensors that overlap or leave gaps, a body shorter
//! or longer than its tensors, a header length past the end of the file. (The hand-written
//! reader used before accepted overlapping tensors, gaps and trailing bytes.)

use std::path::Path;

use qfx_train::safetensors::from_bytes;

/// A file with the JSON `header` (padded with spaces to 8 bytes) and the body `data`.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut head = header.as_bytes().to_vec();
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&head);
    out.extend_from_slice(data);
    out
}

/// The little-endian bytes of `0.0, 1.0, 2.0, …` (`n` values).
fn counting(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

/// Two `[2]` tensors `a` and `b` at the given byte ranges.
fn two_tensors(a: [usize; 2], b: [usize; 2]) -> String {
    format!(
        r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":[{},{}]}},"b":{{"dtype":"F32","shape":[2],"data_offsets":[{},{}]}}}}"#,
        a[0], a[1], b[0], b[1]
    )
}

const NAME: &str = "run/checkpoints/step-00000001/model.safetensors";

/// Why reading `bytes` did not give an error containing `want` (and naming the file), if it
/// did not.
fn not_refused(bytes: &[u8], want: &str) -> Option<String> {
    match from_bytes(bytes, Path::new(NAME)) {
        Ok((tensors, _)) => Some(format!(
            "accepted as {:?}",
            tensors
                .iter()
                .map(|t| (&t.name, &t.data))
                .collect::<Vec<_>>()
        )),
        Err(e) => {
            let message = e.to_string();
            (!message.contains(NAME) || !message.contains(want))
                .then(|| format!("`{message}` does not name the file or lacks `{want}`"))
        }
    }
}

#[track_caller]
fn refused(bytes: &[u8], want: &str) {
    if let Some(why) = not_refused(bytes, want) {
        panic!("{why}");
    }
}

#[test]
fn a_well_formed_file_reads_back() {
    let (tensors, metadata) = from_bytes(
        &file(&two_tensors([0, 8], [8, 16]), &counting(4)),
        Path::new(NAME),
    )
    .unwrap();
    let got: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|t| (t.name.as_str(), &t.shape[..], &t.data[..]))
        .collect();
    assert_eq!(
        got,
        [
            ("a", &[2][..], &[0.0, 1.0][..]),
            ("b", &[2][..], &[2.0, 3.0][..])
        ]
    );
    assert!(metadata.is_empty());
}

#[test]
fn malformed_files_are_refused_with_clear_errors() {
    let truncated = {
        let whole = file(&two_tensors([0, 8], [8, 16]), &counting(4));
        whole[..whole.len() - 4].to_vec()
    };
    let header_past_the_end = {
        let mut f = file(&two_tensors([0, 8], [8, 16]), &counting(4));
        let n = f.len() as u64 + 100;
        f[..8].copy_from_slice(&n.to_le_bytes());
        f
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "overlapping tensors",
            file(&two_tensors([0, 8], [4, 12]), &counting(3)),
            "overlapping tensors, or a gap",
        ),
        (
            "a gap between tensors",
            file(&two_tensors([0, 8], [12, 20]), &counting(5)),
            "overlapping tensors, or a gap",
        ),
        (
            "bytes after the last tensor",
            file(&two_tensors([0, 8], [8, 16]), &counting(5)),
            "bytes after the last tensor",
        ),
        ("a truncated body", truncated, "truncated"),
        (
            "a header length beyond the file",
            header_past_the_end,
            "runs past the end of the file",
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(what, bytes, want)| {
            not_refused(bytes, want).map(|why| format!("{what}: {why}"))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn only_f32_tensors_are_read() {
    let header = r#"{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}"#;
    refused(&file(header, &counting(2)), "only F32");
}
