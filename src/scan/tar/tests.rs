//! Unit tests of the parent module, built from raw bytes.
use std::io::Read as _;

use super::*;

// ---- hand assembly of tar headers ------------------------------------------------------

fn octal(field: &mut [u8], value: u64) {
    let text = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(text.as_bytes());
}

fn seal(block: &mut [u8; 512]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|b| u64::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

fn header(name: &str, typeflag: u8, size: u64, link: &str) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], 0o644);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0);
    block[156] = typeflag;
    block[157..157 + link.len()].copy_from_slice(link.as_bytes());
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    seal(&mut block);
    block
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

/// Headers with their data, then the two end-of-archive blocks.
fn archive(entries: &[([u8; 512], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (block, data) in entries {
        out.extend_from_slice(block);
        out.extend_from_slice(&padded(data));
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while len != body.len() + len.to_string().len() {
            len += 1;
        }
        out.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    out
}

fn walk(bytes: &[u8]) -> TarListing {
    list(&bytes.to_vec(), &TarLimits::default()).unwrap()
}

fn codes(listing: &TarListing) -> Vec<Code> {
    listing.findings.iter().map(|f| f.code).collect()
}

fn gunzip(hex: &[&str]) -> Vec<u8> {
    let text: String = hex.concat();
    let gz: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut out)
        .unwrap();
    out
}

// ---- valid archives --------------------------------------------------------------------

#[test]
fn lists_a_ustar_archive() {
    let bytes = archive(&[
        (header("model/", b'5', 0, ""), b""),
        (header("model/pickle", b'0', 600, ""), &[7; 600]),
        (header("model/tensors", b'\0', 3, ""), b"abc"),
        (header("model/v7dir/", b'\0', 0, ""), b""),
    ]);
    assert!(looks_like_tar(&bytes));
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let summary: Vec<_> = listing
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.kind, m.size, m.data_offset))
        .collect();
    assert_eq!(
        summary,
        [
            ("model", TarKind::Directory, 0, 512),
            ("model/pickle", TarKind::File, 600, 1024),
            ("model/tensors", TarKind::File, 3, 2560),
            ("model/v7dir", TarKind::Directory, 0, 3584),
        ]
    );
    assert_eq!(&bytes[2560..2563], b"abc");
}

#[test]
fn walks_tars_written_by_python() {
    // tarfile GNU_FORMAT and PAX_FORMAT: a directory, a member with a 160-byte name, a
    // file and a symlink.
    let gnu = gunzip(&[
        "1f8b0800000000000203edd74d0a83301404e077949c409398e8b607f00e25da2062fca1da456fdfe0a2a008",
        "4221d2d6f91679ee271393b6bf59175350dc4b959aa7b79e1bdf19e79298a6033cc6c9dc19a3938ae228bee4",
        "7d57e575d704cc7f23f777e652e975fe994e89e5c83fb876eebff31be0fa754b675a1b0d8d23f8e9fc77cf7f",
        "a196fd4f64e207e3e87f70435d36ceb2e239d9116d386bffc7a9bf9b2ad40ed8bfff25cbfe0bae35fa7f0853",
        "942801feffe12eff9fbcff8450521393618f25f41f0000000000000000000000fed20b208f612e00280000",
    ]);
    let pax = gunzip(&[
        "1f8b0800000000000203edd73d0a83301c05f0cc3d454ea0498ce954e8d8b13728518315e3076ac1debee250",
        "50049746a4bedf90b86578be7fb4a812637de2141b2829c77d30df179ecf4c0a4243b28157dbe96638921c93",
        "e77bfef5aefb9bd18969dce5bf90fb377311aa69fe9c09c108ed91bf73fc2c69adbbe7a5180781adcaf4b1bb",
        "a5d485f1eadc9e08fcd816b1afce7f2ea7fd0f442087fe33f4dfb93a8b736b68f4ee4c8b361cb5ff6d57353a",
        "75f506ac7fff05f3fb5f71f47f133a8a5102dcff5999efe8ff8f73a9424285dbb184fe030000000000000000",
        "0000c05ffa00757674f200280000",
    ]);
    let long = format!("model/{}name.pkl", "long_".repeat(30));
    for bytes in [gnu, pax] {
        assert!(looks_like_tar(&bytes));
        let listing = walk(&bytes);
        assert_eq!(listing.findings, vec![]);
        let names: Vec<_> = listing.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["model", long.as_str(), "model/storages", "model/link"]
        );
        let pickle = &listing.members[1];
        let at = pickle.data_offset as usize;
        assert_eq!(&bytes[at..at + pickle.size as usize], b"pickle bytes");
        let link = &listing.members[3];
        assert_eq!(link.kind, TarKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some("storages"));
    }
}

#[test]
fn gnu_long_names_override_the_header_name() {
    let long = format!("dir/{}", "x".repeat(200));
    let name_data = [long.as_bytes(), b"\0"].concat();
    let bytes = archive(&[
        (
            header("././@LongLink", b'L', name_data.len() as u64, ""),
            &name_data,
        ),
        (header(&long[..100], b'0', 4, ""), b"data"),
    ]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.members.len(), 1);
    assert_eq!(listing.members[0].name, long);
    assert_eq!(listing.members[0].data_offset, 512 * 3);
}

#[test]
fn pax_path_and_size_override_the_header() {
    let records = pax(&[("path", "real/name.pkl"), ("size", "5"), ("mtime", "1.5")]);
    let bytes = archive(&[
        (
            header("PaxHeaders/x", b'x', records.len() as u64, ""),
            &records,
        ),
        (header("short", b'0', 0, ""), b"hello"),
        (header("after", b'0', 2, ""), b"ok"),
    ]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let member = &listing.members[0];
    assert_eq!((member.name.as_str(), member.size), ("real/name.pkl", 5));
    assert_eq!(listing.members[1].name, "after");
    assert_eq!(listing.members[1].data_offset, 512 * 5);
}

#[test]
fn ustar_prefix_is_joined() {
    let mut block = header("file.pkl", b'0', 1, "");
    block[345..352].copy_from_slice(b"a/b/c/d");
    seal(&mut block);
    let listing = walk(&archive(&[(block, b"x")]));
    assert_eq!(listing.members[0].name, "a/b/c/d/file.pkl");
}

#[test]
fn base256_sizes_are_read() {
    let mut block = header("big", b'0', 0, "");
    block[124..136].fill(0);
    block[124] = 0x80;
    block[135] = 3;
    seal(&mut block);
    let listing = walk(&archive(&[(block, b"abc")]));
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.members[0].size, 3);
    // Negative: not listed, and `tarfile` would seek backwards.
    block[124] = 0xff;
    seal(&mut block);
    let listing = walk(&archive(&[(block, b"abc")]));
    assert_eq!(
        codes(&listing),
        [Code::ArchiveMalformed, Code::ArchiveMalformed]
    );
    assert!(listing.members.is_empty());
}

#[test]
fn sniffs_ustar_gnu_and_v7_headers() {
    let ustar = header("a", b'0', 0, "");
    assert!(looks_like_tar(&ustar.to_vec()));
    let mut gnu = ustar;
    gnu[257..265].copy_from_slice(b"ustar  \0");
    seal(&mut gnu);
    assert!(looks_like_tar(&gnu.to_vec()));
    let mut v7 = ustar;
    v7[257..265].fill(0);
    seal(&mut v7);
    assert!(looks_like_tar(&v7.to_vec()));
    let mut bad = ustar;
    bad[0] = b'b';
    assert!(!looks_like_tar(&bad.to_vec()));
    // `tarfile` opens a first block of zeros as an empty archive.
    assert!(looks_like_tar(&vec![0u8; 1024]));
    assert!(!looks_like_tar(&vec![0u8; 511]));
    assert!(!looks_like_tar(&b"PK\x03\x04".to_vec()));
    // A v7-looking block with text where numbers belong is not a tar.
    let mut text = v7;
    text[100..108].copy_from_slice(b"garbage!");
    seal(&mut text);
    assert!(!looks_like_tar(&text.to_vec()));
}

#[test]
fn archive_without_end_blocks_is_accepted_like_tarfile() {
    let mut bytes = header("a", b'0', 1, "").to_vec();
    bytes.extend_from_slice(&padded(b"x"));
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.members.len(), 1);
}

// ---- broken or hostile archives --------------------------------------------------------

#[test]
fn bad_checksum_stops_the_walk() {
    let mut second = header("second", b'0', 1, "");
    second[0] = b'S';
    let bytes = archive(&[(header("first", b'0', 1, ""), b"x"), (second, b"y")]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing), [Code::ArchiveMalformed]);
    assert!(listing.findings[0].message.contains("checksum"));
    assert_eq!(listing.findings[0].location.as_deref(), Some("@1024"));
    assert_eq!(listing.members.len(), 1);
}

#[test]
fn truncation_is_malformed() {
    let bytes = archive(&[(header("a", b'0', 2000, ""), &[1; 2000])]);
    // Cut in the header, in the data, in the padding: the last still lists the member, as
    // `tarfile` does before it raises on the next header.
    for (cut, listed) in [(100, 0), (512 + 1000, 0), (512 + 2048 - 1, 1)] {
        let listing = walk(&bytes[..cut]);
        assert!(!listing.findings.is_empty(), "cut at {cut}");
        assert!(
            codes(&listing).iter().all(|c| *c == Code::ArchiveMalformed),
            "cut at {cut}"
        );
        assert_eq!(listing.members.len(), listed, "cut at {cut}");
    }
    let mut block = header("a", b'0', 0, "");
    octal(&mut block[124..136], 0o77777777777);
    seal(&mut block);
    let listing = walk(&archive(&[(block, b"")]));
    assert!(listing.findings[0]
        .message
        .contains("`a` runs past the end"));
    assert!(listing.members.is_empty());
}

#[test]
fn data_after_the_end_blocks_is_extra() {
    let mut bytes = archive(&[(header("a", b'0', 1, ""), b"x")]);
    bytes.resize(10240, 0);
    assert_eq!(walk(&bytes).findings, vec![]);
    bytes.extend_from_slice(&header("hidden.pkl", b'0', 0, ""));
    let listing = walk(&bytes);
    assert_eq!(codes(&listing), [Code::ArchiveExtraData]);
    assert!(listing.findings[0].message.contains("@10240"));
    assert_eq!(listing.members.len(), 1);
    // A lone zero block ends the archive for tarfile: what follows is hidden from it.
    let mut bytes = header("a", b'0', 0, "").to_vec();
    bytes.extend_from_slice(&[0; 512]);
    bytes.extend_from_slice(&archive(&[(header("b", b'0', 0, ""), b"")]));
    assert_eq!(codes(&walk(&bytes)), [Code::ArchiveExtraData]);
}

#[test]
fn links_out_of_the_archive_are_unsafe() {
    let bytes = archive(&[
        (header("ok", b'2', 0, "sub/target"), b""),
        (header("up", b'2', 0, "../../etc/passwd"), b""),
        (header("abs", b'1', 0, "/etc/shadow"), b""),
    ]);
    let listing = walk(&bytes);
    assert_eq!(
        codes(&listing),
        [Code::ArchiveUnsafePath, Code::ArchiveUnsafePath]
    );
    assert!(listing.findings[0].message.contains("symlink `up`"));
    assert!(listing.findings[1].message.contains("hardlink `abs`"));
    assert_eq!(listing.members[2].kind, TarKind::Hardlink);
    assert_eq!(
        listing.members[2].link_target.as_deref(),
        Some("/etc/shadow")
    );
    let listing = walk(&archive(&[(header("../escape", b'0', 0, ""), b"")]));
    assert_eq!(codes(&listing), [Code::ArchiveUnsafePath]);
}

#[test]
fn link_with_data_size_is_ambiguous() {
    let listing = walk(&archive(&[(header("l", b'2', 512, "t"), b"")]));
    assert!(listing.findings[0]
        .message
        .contains("declares 512 data bytes"));
}

#[test]
fn duplicates_specials_and_sparse_files_are_reported() {
    let bytes = archive(&[
        (header("a", b'0', 0, ""), b""),
        (header("a", b'0', 0, ""), b""),
        (header("dev", b'3', 0, ""), b""),
        (header("holes", b'S', 0, ""), b""),
    ]);
    let listing = walk(&bytes);
    assert_eq!(
        codes(&listing),
        [
            Code::ArchiveMalformed,
            Code::SpecialFile,
            Code::ArchiveUnsupported
        ]
    );
    assert_eq!(listing.members[3].kind, TarKind::Other(b'S'));
}

#[test]
fn extended_headers_are_bounded_and_checked() {
    let data = vec![b'a'; 4096];
    let bytes = archive(&[
        (header("L", b'L', data.len() as u64, ""), &data),
        (header("x", b'0', 0, ""), b""),
    ]);
    let limits = TarLimits {
        max_header_bytes: 1024,
        ..TarLimits::default()
    };
    let listing = list(&bytes, &limits).unwrap();
    assert_eq!(codes(&listing), [Code::ArchiveLimitExceeded]);

    // tarfile trusts the record length over the newline: the value runs into the padding.
    let garbage = b"12 path=x\n".to_vec();
    let bytes = archive(&[
        (header("p", b'x', garbage.len() as u64, ""), &garbage),
        (header("x", b'0', 0, ""), b""),
    ]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing), [Code::ArchiveUnsafePath]);
    assert_eq!(listing.members[0].name, "x\n\0");

    let global = pax(&[("path", "everything")]);
    let bytes = archive(&[
        (header("g", b'g', global.len() as u64, ""), &global),
        (header("x", b'0', 0, ""), b""),
    ]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing), [Code::ArchiveMalformed]);
    assert_eq!(listing.members[0].name, "everything");

    let long = b"one\0".to_vec();
    let path = pax(&[("path", "two")]);
    let bytes = archive(&[
        (header("L", b'L', long.len() as u64, ""), &long),
        (header("x", b'x', path.len() as u64, ""), &path),
        (header("x", b'0', 0, ""), b""),
    ]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing), [Code::ArchiveHeaderMismatch]);
    // The outermost extended header wins in `tarfile`.
    assert_eq!(listing.members[0].name, "one");

    let mut chain = Vec::new();
    for _ in 0..20 {
        chain.push((header("L", b'L', 2, ""), &b"a\0"[..]));
    }
    assert_eq!(codes(&walk(&archive(&chain))), [Code::ArchiveMalformed]);
}

#[test]
fn member_count_is_bounded() {
    let entries: Vec<_> = (0..5)
        .map(|i| (header(&format!("m{i}"), b'0', 0, ""), &b""[..]))
        .collect();
    let limits = TarLimits {
        max_members: 2,
        ..TarLimits::default()
    };
    let listing = list(&archive(&entries), &limits).unwrap();
    assert_eq!(codes(&listing), [Code::ArchiveLimitExceeded]);
    assert_eq!(listing.members.len(), 2);
}

/// Deterministic stand-in for the fuzz target: mutated archives never panic (debug
/// builds also trap arithmetic overflow).
#[test]
fn survives_mutated_archives() {
    let records = pax(&[("path", "p/q"), ("size", "3")]);
    let long = b"a/long/name\0".to_vec();
    let seed = archive(&[
        (header("x", b'x', records.len() as u64, ""), &records),
        (header("f", b'0', 0, ""), b"abc"),
        (header("L", b'L', long.len() as u64, ""), &long),
        (header("s", b'2', 0, "../t"), b""),
    ]);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..600 {
        let mut bytes = seed.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.truncate(at.max(1)),
                _ => bytes[at] = [0, 0xFF, 0x80, b'7'][(next() % 4) as usize],
            }
        }
        let _ = looks_like_tar(&bytes);
        let _ = walk(&bytes);
        // Re-seal the first header so mutations also get past its checksum.
        if bytes.len() >= 512 {
            let mut block: [u8; 512] = bytes[..512].try_into().unwrap();
            seal(&mut block);
            bytes[..512].copy_from_slice(&block);
            let _ = walk(&bytes);
        }
    }
}

#[test]
fn io_failures_are_errors() {
    struct Failing;
    impl ReadAt for Failing {
        fn size(&self) -> u64 {
            1024
        }
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
            Err(io::Error::other("disk on fire"))
        }
    }
    assert!(matches!(
        list(&Failing, &TarLimits::default()),
        Err(TarError::Read { offset: 0, .. })
    ));
    assert!(!looks_like_tar(&Failing));
}
