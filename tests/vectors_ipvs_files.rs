//! The IPVS netlink vectors (tests/vectors/ipvs/, captured from ipvsadm in
//! the test VM by capture.sh) are well formed: every line is one whole
//! netlink message, requests are single requests, each vector has both
//! directions and a README row. Codec tests build on these files.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ipvs");
const NLM_F_REQUEST: u16 = 0x1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// The messages of a `.hex` vector: `#` lines skipped, one message a line.
fn messages(path: &Path) -> Vec<Vec<u8>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let l = l.trim();
            assert!(l.len() % 2 == 0, "{}: odd hex length", path.display());
            (0..l.len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(&l[i..i + 2], 16)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                })
                .collect()
        })
        .collect()
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[test]
fn ipvs_vectors_are_whole_netlink_messages() {
    let mut names = BTreeSet::new();
    let mut count = 0;
    for entry in fs::read_dir(DIR).expect("tests/vectors/ipvs") {
        let path = entry.expect("dir entry").path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = file.strip_suffix(".hex") else {
            continue;
        };
        count += 1;
        let msgs = messages(&path);
        assert!(!msgs.is_empty(), "{file}: no message");
        for m in &msgs {
            assert!(m.len() >= 16, "{file}: shorter than nlmsghdr");
            assert_eq!(u32_at(m, 0) as usize, m.len(), "{file}: nlmsg_len");
        }
        if let Some(name) = stem.strip_suffix(".request") {
            names.insert(name.to_string());
            assert_eq!(msgs.len(), 1, "{file}: one request");
            assert_ne!(
                u16_at(&msgs[0], 6) & NLM_F_REQUEST,
                0,
                "{file}: NLM_F_REQUEST"
            );
        } else if let Some(name) = stem.strip_suffix(".reply") {
            assert!(
                path.with_file_name(format!("{name}.request.hex")).is_file(),
                "{file}: no request"
            );
            for m in &msgs {
                assert_eq!(
                    u16_at(m, 6) & NLM_F_REQUEST,
                    0,
                    "{file}: reply flagged request"
                );
            }
            let last = msgs.last().unwrap();
            let ty = u16_at(last, 4);
            if ty == NLMSG_ERROR {
                assert!(last.len() >= 36, "{file}: short NLMSG_ERROR");
            } else if msgs.len() > 1 {
                assert_eq!(ty, NLMSG_DONE, "{file}: multipart without NLMSG_DONE");
            }
        } else {
            panic!("{file}: neither .request.hex nor .reply.hex");
        }
    }
    assert!(count >= 60, "only {count} vector files");
    let readme = fs::read_to_string(format!("{DIR}/README.md")).expect("README.md");
    for n in &names {
        assert!(
            readme.contains(&format!("| `{n}` |")),
            "README has no row for {n}"
        );
    }
}
