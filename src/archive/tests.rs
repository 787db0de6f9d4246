//! Tests of the deterministic writer and the checked reader, with hostile archives built
//! by hand (the writer refuses to make them).

use super::*;

fn pack(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), 6);
    for (p, d) in files {
        w.add(p, d).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(bytes: &[u8], limits: &Limits) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let mut out = Vec::new();
    read(bytes, limits, |e| {
        let mut buf = Vec::new();
        e.data.read_to_end(&mut buf)?;
        out.push((e.path, buf));
        Ok(())
    })?;
    Ok(out)
}

/// A tar.gz with one raw entry, header fields set by hand.
fn hostile(path: &[u8], kind: tar::EntryType, link: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    {
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path);
    }
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    b.append(&h, data).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn same_files_give_same_bytes_and_read_back() {
    let files: &[(&str, &[u8])] = &[("a.txt", b"one"), ("b/c.json", b"{}"), ("b/d", b"")];
    let first = pack(files);
    assert_eq!(first, pack(files));
    // gzip header: no mtime (bytes 4..8), OS 255, no FNAME flag.
    assert_eq!(&first[4..8], &[0, 0, 0, 0]);
    assert_eq!(first[3] & 0x08, 0);
    assert_eq!(first[9], 255);
    let back = read_all(&first, &Limits::SMALL).unwrap();
    let want: Vec<_> = files
        .iter()
        .map(|(p, d)| (p.to_string(), d.to_vec()))
        .collect();
    assert_eq!(back, want);
}

#[test]
fn writer_refuses_unsorted_duplicate_and_unsafe_paths() {
    let mut w = Writer::new(Vec::new(), 1);
    w.add("b", b"").unwrap();
    assert!(matches!(w.add("a", b""), Err(ArchiveError::Order(_))));
    assert!(matches!(w.add("b", b""), Err(ArchiveError::Order(_))));
    for bad in [
        "/etc/passwd",
        "../x",
        "c/../../x",
        "c//d",
        "c/./d",
        "c\\d",
        "",
    ] {
        assert!(
            matches!(w.add(bad, b""), Err(ArchiveError::Refused { .. })),
            "{bad}"
        );
    }
}

#[test]
fn long_paths_round_trip() {
    let long = format!("d/{}", "x".repeat(300));
    let bytes = pack(&[(long.as_str(), b"z")]);
    assert_eq!(read_all(&bytes, &Limits::SMALL).unwrap()[0].0, long);
}

#[test]
fn reader_refuses_traversal_absolute_links_and_devices() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            hostile(b"../evil", tar::EntryType::Regular, None, b"x"),
            "\"..\"",
        ),
        (
            hostile(b"a/../../evil", tar::EntryType::Regular, None, b"x"),
            "\"..\"",
        ),
        (
            hostile(b"/etc/evil", tar::EntryType::Regular, None, b"x"),
            "absolute",
        ),
        (
            hostile(b"link", tar::EntryType::Symlink, Some("/etc/passwd"), b""),
            "symbolic",
        ),
        (
            hostile(b"hard", tar::EntryType::Link, Some("../../x"), b""),
            "hard link",
        ),
        (hostile(b"dev", tar::EntryType::Char, None, b""), "device"),
        (hostile(b"blk", tar::EntryType::Block, None, b""), "device"),
        (hostile(b"fifo", tar::EntryType::Fifo, None, b""), "fifo"),
        (
            hostile(b"a\x01b", tar::EntryType::Regular, None, b""),
            "control",
        ),
        (
            hostile(b"\xff\xfe", tar::EntryType::Regular, None, b""),
            "UTF-8",
        ),
    ];
    for (bytes, want) in cases {
        let err = read_all(&bytes, &Limits::SMALL).unwrap_err().to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
}

#[test]
fn reader_refuses_duplicates() {
    let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for _ in 0..2 {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, "same", &b"x"[..]).unwrap();
    }
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let err = read_all(&bytes, &Limits::SMALL).unwrap_err().to_string();
    assert!(err.contains("appears twice"), "{err}");
}

#[test]
fn reader_enforces_limits() {
    let bytes = pack(&[("a", b"1234"), ("b", b"5678"), ("c", b"9")]);
    let few = Limits {
        max_files: 2,
        ..Limits::SMALL
    };
    assert!(
        read_all(&bytes, &few)
            .unwrap_err()
            .to_string()
            .contains("more than 2 files")
    );
    let small = Limits {
        max_file_bytes: 3,
        ..Limits::SMALL
    };
    assert!(
        read_all(&bytes, &small)
            .unwrap_err()
            .to_string()
            .contains("a has 4 bytes")
    );
    let total = Limits {
        max_total_bytes: 8,
        ..Limits::SMALL
    };
    assert!(
        read_all(&bytes, &total)
            .unwrap_err()
            .to_string()
            .contains("total")
    );
    // A bomb: 8 MiB of zeros compress to a few KiB.
    let zeros = vec![0u8; 8 << 20];
    let bomb = pack(&[("zeros", &zeros)]);
    assert!(bomb.len() < 64 << 10);
    let err = read_all(
        &bomb,
        &Limits {
            max_ratio: 2,
            ..Limits::SMALL
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("per compressed byte"), "{err}");
}

#[test]
fn garbage_and_truncation_are_format_errors() {
    assert!(matches!(
        read_all(b"not gzip at all", &Limits::SMALL),
        Err(ArchiveError::Format(_))
    ));
    let bytes = pack(&[("a", &[7u8; 5000])]);
    let cut = &bytes[..bytes.len() / 2];
    assert!(read_all(cut, &Limits::SMALL).is_err());
}

#[test]
fn unpack_writes_files_and_refuses_a_full_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = pack(&[("a/b.txt", b"hi"), ("c", b"there")]);
    let stats = unpack(&bytes[..], dir.path(), &Limits::SMALL).unwrap();
    assert_eq!(stats, Stats { files: 2, bytes: 7 });
    assert_eq!(std::fs::read(dir.path().join("a/b.txt")).unwrap(), b"hi");
    assert!(unpack(&bytes[..], dir.path(), &Limits::SMALL).is_err());
    let evil = hostile(b"../escape", tar::EntryType::Regular, None, b"x");
    let fresh = tempfile::tempdir().unwrap();
    let inner = fresh.path().join("t");
    std::fs::create_dir(&inner).unwrap();
    assert!(unpack(&evil[..], &inner, &Limits::SMALL).is_err());
    assert!(!fresh.path().join("escape").exists());
}

/// Files whose bytes repeat like records do, over several compression chunks, with sizes
/// around the chunk boundary.
fn many_files(seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut x = seed;
    for i in 0..900 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = match i {
            7 => gzip::CHUNK - 512,
            8 => gzip::CHUNK,
            _ => (x >> 40) as usize % 6000,
        };
        let data: Vec<u8> = format!("{{\"record\":{i},\"noise\":{x},\"pad\":\"")
            .bytes()
            .chain((0..len).map(|j| b"abcdefghij"[(j + (x as usize % 7)) % 10]))
            .collect();
        files.push((format!("r/{i:05}.json"), data));
    }
    files
}

fn pack_with(files: &[(String, Vec<u8>)], threads: usize, encoder: gzip::Encoder) -> Vec<u8> {
    let mut w = Writer::parallel_with(Vec::new(), encoder, threads);
    for (p, d) in files {
        w.add(p, d).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn parallel_gzip_is_deterministic_and_reads_back_everywhere() {
    let encoders = gzip::Encoder::all_for_level(1);
    assert_eq!(encoders.len(), if cfg!(feature = "isal") { 2 } else { 1 });
    for encoder in encoders {
        parallel_gzip_with(encoder);
    }
}

/// Chunks a compressor cannot shrink (its output outgrows the buffer it was given) and chunks
/// of one repeated byte (it shrinks them a thousandfold) read back too.
#[test]
fn parallel_gzip_reads_back_incompressible_and_uniform_chunks() {
    let mut x = 7u64;
    let noise: Vec<u8> = (0..3 * gzip::CHUNK + 99)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect();
    let files = vec![
        ("a/noise".to_owned(), noise),
        ("b/zeros".to_owned(), vec![0u8; 2 * gzip::CHUNK + 1]),
    ];
    for encoder in gzip::Encoder::all_for_level(1) {
        for threads in [1, 3] {
            let packed = pack_with(&files, threads, encoder);
            assert_eq!(
                read_all(&packed, &Limits::LARGE).unwrap(),
                files,
                "{encoder:?}"
            );
        }
    }
}

/// A stream that ends on a chunk boundary ends with an empty last chunk, and an empty stream
/// is only that: both are still one valid gzip member.
#[test]
fn parallel_gzip_ends_on_a_chunk_boundary_and_when_empty() {
    for encoder in gzip::Encoder::all_for_level(1) {
        for len in [0, gzip::CHUNK, 2 * gzip::CHUNK] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut gz = gzip::ParallelGz::new(Vec::new(), encoder, 2);
            gz.write_all(&data).unwrap();
            let packed = gz.finish().unwrap();
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&packed[..])
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{encoder:?}, {len} bytes");
        }
    }
}

fn parallel_gzip_with(encoder: gzip::Encoder) {
    let files = many_files(42);
    let one = pack_with(&files, 1, encoder);
    let total: usize = files.iter().map(|(_, d)| d.len() + 1024).sum();
    assert!(total > 8 * gzip::CHUNK, "several chunks: {total} bytes");
    for threads in [2, 3, 8] {
        assert_eq!(
            one,
            pack_with(&files, threads, encoder),
            "{encoder:?}, {threads} threads"
        );
    }
    assert_eq!(&one[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!((&one[4..8], one[9]), (&[0u8; 4][..], 255));
    assert_eq!(read_all(&one, &Limits::LARGE).unwrap(), files);
    // One gzip member, not several: a single-member decoder reads it whole.
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&one[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut serial = Vec::new();
    flate2::read::GzDecoder::new(&pack_serial(&files)[..])
        .read_to_end(&mut serial)
        .unwrap();
    assert_eq!(tar, serial, "the same tar under either gzip");
    // The reference gzip accepts it (CRC and length in the trailer included).
    let mut gzip = std::process::Command::new("gzip")
        .args(["-t", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gzip.stdin.take().unwrap().write_all(&one).unwrap();
    assert!(gzip.wait().unwrap().success());
    // Different bytes give a different archive; an empty archive is still valid.
    assert_ne!(one, pack_with(&many_files(43), 2, encoder));
    assert!(
        read_all(&pack_with(&[], 2, encoder), &Limits::SMALL)
            .unwrap()
            .is_empty()
    );
}

fn pack_serial(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), 1);
    for (p, d) in files {
        w.add(p, d).unwrap();
    }
    w.finish().unwrap()
}
