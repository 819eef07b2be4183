//! HTTP_GET response reading: every split of the input gives the same
//! verdict; size caps, garbage, early closes, digests and status ranges.

use keepalived_rs::check::http::{
    Expect, HttpError, Progress, Response, ResponseReader, MAX_BODY_BYTES, MAX_HEAD_BYTES,
};
use keepalived_rs::config::model::StatusRange;
use md5::{Digest, Md5};

fn md5(data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md5::digest(data));
    out
}

fn expect_digest(body: &[u8]) -> Expect {
    Expect {
        status: Vec::new(),
        digest: Some(md5(body)),
        always_hash: false,
    }
}

/// Feeds `parts` in order, then EOF if still needed.
fn run(expect: &Expect, parts: &[&[u8]]) -> Result<Response, HttpError> {
    let mut reader = ResponseReader::new(expect.clone());
    for part in parts {
        match reader.feed(part)? {
            Progress::NeedMore => {}
            Progress::Done(r) => return Ok(r),
        }
    }
    match reader.finish()? {
        Progress::Done(r) => Ok(r),
        Progress::NeedMore => panic!("finish never asks for more"),
    }
}

/// The verdict must not depend on how the bytes were split.
fn same_at_every_split(expect: &Expect, wire: &[u8]) -> Result<Response, HttpError> {
    let whole = run(expect, &[wire]);
    for cut in 0..=wire.len() {
        let split = run(expect, &[&wire[..cut], &wire[cut..]]);
        assert_eq!(
            format!("{split:?}"),
            format!("{whole:?}"),
            "split at {cut} of {}",
            wire.len()
        );
    }
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    assert_eq!(
        format!("{:?}", run(expect, &bytes)),
        format!("{whole:?}"),
        "byte by byte"
    );
    let threes: Vec<&[u8]> = wire.chunks(3).collect();
    assert_eq!(
        format!("{:?}", run(expect, &threes)),
        format!("{whole:?}"),
        "3 bytes at a time"
    );
    whole
}

const BODY: &[u8] = b"<html>hello, keepalived</html>\n";

#[test]
fn content_length_body() {
    let wire = [
        b"HTTP/1.0 200 OK\r\nContent-Length: 31\r\nServer: t\r\n\r\n".as_slice(),
        BODY,
    ]
    .concat();
    let r = same_at_every_split(&expect_digest(BODY), &wire).expect("passes");
    assert_eq!(r.status, 200);
    assert_eq!(r.digest, Some(md5(BODY)));
    assert_eq!(r.body_len, BODY.len() as u64);
    // Trailing garbage after Content-Length is not part of the body.
    let mut extra = wire.clone();
    extra.extend_from_slice(b"JUNK");
    assert!(run(&expect_digest(BODY), &[&extra]).is_ok());
}

#[test]
fn body_until_close() {
    let wire = [b"HTTP/1.0 200 OK\r\nServer: t\r\n\r\n".as_slice(), BODY].concat();
    let r = same_at_every_split(&expect_digest(BODY), &wire).expect("passes");
    assert_eq!(r.digest, Some(md5(BODY)));
}

#[test]
fn chunked_body_is_hashed_as_sent() {
    // keepalived 2.2.7 hashes a chunked body with its framing (the chunk
    // sizes and CRLFs), through the last chunk's trailer.
    const CHUNKED: &[u8] =
        b"7\r\n<html>h\r\n18;ext=1\r\nello, keepalived</html>\n\r\n0\r\nX-Trailer: 1\r\n\r\n";
    let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend_from_slice(CHUNKED);
    let r = same_at_every_split(&expect_digest(CHUNKED), &wire).expect("passes");
    assert_eq!(r.digest, Some(md5(CHUNKED)));
    assert_eq!(r.body_len, CHUNKED.len() as u64);
    // The de-chunked body's digest is a mismatch, as in keepalived.
    assert!(matches!(
        run(&expect_digest(BODY), &[&wire]),
        Err(HttpError::Digest(_))
    ));
    // Bytes after the end of the chunked body are not part of it.
    wire.extend_from_slice(b"garbage");
    let r = run(&expect_digest(CHUNKED), &[&wire]).expect("passes");
    assert_eq!(r.digest, Some(md5(CHUNKED)));
}

#[test]
fn chunked_digest_matches_keepalived_genhash() {
    // /usr/bin/genhash (keepalived 2.2.7) printed 5a92a56fcd3d89814522ce70e1445dbd
    // for this response from a test server; the de-chunked body
    // "hello chunked world\n" would be 5f907dce6ebdf96638b6189f646fa6be.
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
6\r\nhello \r\ne\r\nchunked world\n\r\n0\r\n\r\n";
    let expect = Expect {
        always_hash: true,
        ..Expect::default()
    };
    let r = same_at_every_split(&expect, wire).expect("passes");
    let hex: String = r
        .digest
        .unwrap_or_default()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, "5a92a56fcd3d89814522ce70e1445dbd");
}

#[test]
fn status_only_checks_stop_after_the_head() {
    let expect = Expect::default();
    let wire = b"HTTP/1.0 204 No Content\r\n\r\n";
    let r = same_at_every_split(&expect, wire).expect("2xx passes by default");
    assert_eq!((r.status, r.digest), (204, None));
}

#[test]
fn status_codes_and_ranges() {
    let with = |ranges: &[(u16, u16)]| Expect {
        status: ranges
            .iter()
            .map(|&(first, last)| StatusRange { first, last })
            .collect(),
        digest: None,
        always_hash: false,
    };
    let response = |code: u16| format!("HTTP/1.0 {code} X\r\n\r\n").into_bytes();
    assert_eq!(
        run(&Expect::default(), &[&response(200)]).map(|r| r.status),
        Ok(200)
    );
    assert_eq!(
        run(&Expect::default(), &[&response(299)]).map(|r| r.status),
        Ok(299)
    );
    assert_eq!(
        run(&Expect::default(), &[&response(301)]),
        Err(HttpError::Status(301))
    );
    assert_eq!(
        run(&Expect::default(), &[&response(199)]),
        Err(HttpError::Status(199))
    );
    let list = with(&[(200, 200), (301, 302), (500, 599)]);
    for (code, ok) in [
        (200, true),
        (201, false),
        (301, true),
        (302, true),
        (303, false),
        (503, true),
    ] {
        assert_eq!(run(&list, &[&response(code)]).is_ok(), ok, "status {code}");
    }
    // A wrong status fails before any body is read.
    let wire = b"HTTP/1.0 404 Not Found\r\nContent-Length: 100000\r\n\r\npartial";
    assert_eq!(
        same_at_every_split(&expect_digest(BODY), wire),
        Err(HttpError::Status(404))
    );
}

#[test]
fn wrong_digest() {
    let wire = [
        b"HTTP/1.0 200 OK\r\nContent-Length: 31\r\n\r\n".as_slice(),
        BODY,
    ]
    .concat();
    let other = expect_digest(b"something else");
    assert_eq!(
        same_at_every_split(&other, &wire),
        Err(HttpError::Digest(md5(BODY)))
    );
}

#[test]
fn early_close() {
    let expect = expect_digest(BODY);
    // Closed in the head, or before Content-Length bytes, or mid-chunk.
    assert_eq!(
        run(&expect, &[b"HTTP/1.0 200 OK\r\nContent-Le"]),
        Err(HttpError::EarlyClose)
    );
    assert_eq!(run(&expect, &[b""]), Err(HttpError::EarlyClose));
    assert_eq!(
        run(
            &expect,
            &[b"HTTP/1.0 200 OK\r\nContent-Length: 31\r\n\r\n<html>"]
        ),
        Err(HttpError::EarlyClose)
    );
    assert_eq!(
        run(
            &expect,
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1f\r\n<ht"]
        ),
        Err(HttpError::EarlyClose)
    );
    // Without a digest the head is enough, even if the body is cut.
    assert!(run(
        &Expect::default(),
        &[b"HTTP/1.0 200 OK\r\nContent-Length: 31\r\n\r\n<h"]
    )
    .is_ok());
}

#[test]
fn garbage_is_rejected_at_every_split() {
    let expect = expect_digest(BODY);
    for wire in [
        b"SSH-2.0-OpenSSH_9.2\r\n".as_slice(),
        b"HTTP/1.0 2x0 OK\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nBad Header\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: nope\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
    ] {
        let verdict = same_at_every_split(&expect, wire);
        assert!(
            !matches!(verdict, Ok(_) | Err(HttpError::EarlyClose)),
            "{:?} gave {verdict:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn oversize_heads_and_bodies() {
    let expect = expect_digest(BODY);
    let mut head = b"HTTP/1.0 200 OK\r\n".to_vec();
    while head.len() <= MAX_HEAD_BYTES {
        head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert!(matches!(
        run(&expect, &[&head]),
        Err(HttpError::HeadTooLarge | HttpError::BadHead(_))
    ));
    // A declared length over the cap fails at once.
    let declared = format!(
        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY_BYTES + 1
    );
    assert_eq!(
        run(&expect, &[declared.as_bytes()]),
        Err(HttpError::BodyTooLarge)
    );
    // A body without length that never ends fails once it passes the cap.
    let mut reader = ResponseReader::new(expect.clone());
    assert_eq!(
        reader.feed(b"HTTP/1.0 200 OK\r\n\r\n"),
        Ok(Progress::NeedMore)
    );
    let block = vec![b'a'; 1 << 20];
    let mut verdict = Ok(Progress::NeedMore);
    for _ in 0..=(MAX_BODY_BYTES >> 20) {
        verdict = reader.feed(&block);
        if verdict.is_err() {
            break;
        }
    }
    assert_eq!(verdict, Err(HttpError::BodyTooLarge));
    // A chunk announcing more than the cap.
    let huge = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        MAX_BODY_BYTES + 1
    );
    assert_eq!(
        run(&expect, &[huge.as_bytes()]),
        Err(HttpError::BodyTooLarge)
    );
    // An endless chunk-size line.
    let mut endless = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    endless.extend(std::iter::repeat(b'0').take(5000));
    assert!(matches!(
        run(&expect, &[&endless]),
        Err(HttpError::BadChunk(_))
    ));
}

#[test]
fn empty_bodies() {
    let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
    let r = same_at_every_split(&expect_digest(b""), wire).expect("passes");
    assert_eq!(r.digest, Some(md5(b"")));
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let r = same_at_every_split(&expect_digest(b"0\r\n\r\n"), chunked).expect("passes");
    assert_eq!(r.body_len, 5);
}

#[test]
fn seeded_mutations_never_panic() {
    // Deterministic xorshift mutations of valid responses: any verdict is
    // fine, a panic is not.
    let seeds: [&[u8]; 3] = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.0 302 Found\r\nLocation: /\r\n\r\n",
    ];
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let expect = expect_digest(b"hello");
    for seed in seeds {
        for _ in 0..2000 {
            let mut m = seed.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % m.len();
                match next() % 3 {
                    0 => m[i] = next() as u8,
                    1 => {
                        m.remove(i);
                    }
                    _ => m.insert(i, next() as u8),
                }
                if m.is_empty() {
                    m.push(b'H');
                }
            }
            let cut = (next() as usize) % (m.len() + 1);
            let _ = run(&expect, &[&m[..cut], &m[cut..]]);
        }
    }
}
