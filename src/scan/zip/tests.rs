//! Unit tests of the parent module, built from raw bytes.
use std::io::Write as _;

use super::*;

// ---- hand assembly of zip records -----------------------------------------------------

#[derive(Clone)]
struct Spec {
    name: Vec<u8>,
    local_name: Vec<u8>,
    method: u16,
    flags: u16,
    local_flags: u16,
    crc: u32,
    data: Vec<u8>,
    size: u32,
    extra: Vec<u8>,
}

fn crc(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

fn deflate(content: &[u8]) -> Vec<u8> {
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap()
}

impl Spec {
    fn with(name: &str, method: u16, content: &[u8], data: Vec<u8>) -> Spec {
        Spec {
            name: name.as_bytes().to_vec(),
            local_name: name.as_bytes().to_vec(),
            method,
            flags: 0,
            local_flags: 0,
            crc: crc(content),
            data,
            size: content.len() as u32,
            extra: Vec::new(),
        }
    }

    fn stored(name: &str, content: &[u8]) -> Spec {
        Spec::with(name, 0, content, content.to_vec())
    }

    fn deflated(name: &str, content: &[u8]) -> Spec {
        Spec::with(name, 8, content, deflate(content))
    }

    fn flags(mut self, flags: u16) -> Spec {
        self.flags = flags;
        self.local_flags = flags;
        self
    }

    fn local(&self) -> Vec<u8> {
        let mut out = LOCAL_SIG.to_vec();
        out.extend_from_slice(&20u16.to_le_bytes());
        out.extend_from_slice(&self.local_flags.to_le_bytes());
        out.extend_from_slice(&self.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.local_name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(self.extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.local_name);
        out.extend_from_slice(&self.extra);
        out
    }

    /// Local header followed by the data.
    fn record(&self) -> Vec<u8> {
        [self.local(), self.data.clone()].concat()
    }

    fn central(&self, offset: u32) -> Vec<u8> {
        let mut out = CENTRAL_SIG.to_vec();
        out.extend_from_slice(&[20, 3, 20, 0]);
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.crc.to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&self.name);
        out
    }
}

fn eocd(entries: u16, cd_size: u32, cd_offset: u32, comment: &[u8]) -> Vec<u8> {
    let mut out = EOCD_SIG.to_vec();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    out.extend_from_slice(comment);
    out
}

/// Appends the central directory (entries as given) and the end record to `body`.
fn finish(mut body: Vec<u8>, centrals: &[Vec<u8>]) -> Vec<u8> {
    let cd_offset = body.len() as u32;
    let cd = centrals.concat();
    body.extend_from_slice(&cd);
    body.extend_from_slice(&eocd(
        centrals.len() as u16,
        cd.len() as u32,
        cd_offset,
        b"",
    ));
    body
}

/// A well-formed archive of `specs`, laid out back to back.
fn build(specs: &[Spec]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut centrals = Vec::new();
    for spec in specs {
        centrals.push(spec.central(body.len() as u32));
        body.extend_from_slice(&spec.record());
    }
    finish(body, &centrals)
}

fn walk(bytes: &[u8]) -> ZipListing {
    list(&bytes.to_vec(), &ZipLimits::default()).unwrap()
}

fn codes(findings: &[Finding]) -> Vec<Code> {
    findings.iter().map(|f| f.code).collect()
}

fn has(findings: &[Finding], code: Code) -> bool {
    findings.iter().any(|f| f.code == code)
}

fn message(findings: &[Finding], code: Code) -> String {
    findings
        .iter()
        .find(|f| f.code == code)
        .map(|f| f.message.clone())
        .unwrap_or_else(|| panic!("no {code} in {findings:?}"))
}

fn read(bytes: &[u8], member: &Member) -> MemberBytes {
    read_member(&bytes.to_vec(), member, 1 << 20).unwrap()
}

fn unhex(lines: &[&str]) -> Vec<u8> {
    let text: String = lines.concat();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

// ---- valid archives --------------------------------------------------------------------

#[test]
fn lists_and_reads_stored_and_deflated_members() {
    let pickle = b"\x80\x02}q\x00.".repeat(50);
    let bytes = build(&[
        Spec::stored("archive/version", b"3\n"),
        Spec::deflated("archive/data.pkl", &pickle),
        Spec::stored("archive/", b""),
    ]);
    assert!(looks_like_zip(&bytes));
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.prefix_len, 0);
    let names: Vec<_> = listing.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["archive/version", "archive/data.pkl", "archive/"]);
    let version = &listing.members[0];
    assert_eq!(version.method, Method::Stored);
    assert_eq!(version.data_offset, 30 + 15);
    assert_eq!(&bytes[45..47], b"3\n");
    let data = &listing.members[1];
    assert_eq!(data.method, Method::Deflated);
    assert_eq!(data.uncompressed_size, pickle.len() as u64);
    let got = read(&bytes, data);
    assert_eq!(got.findings, vec![]);
    assert!(got.complete);
    assert_eq!(got.bytes, pickle);
    let got = read(&bytes, version);
    assert_eq!((got.bytes.as_slice(), got.complete), (&b"3\n"[..], true));
    let empty = read(&bytes, &listing.members[2]);
    assert!(empty.complete && empty.bytes.is_empty() && empty.findings.is_empty());
}

#[test]
fn empty_archive_is_just_an_end_record() {
    let bytes = eocd(0, 0, 0, b"");
    assert!(looks_like_zip(&bytes));
    let listing = walk(&bytes);
    assert!(listing.members.is_empty());
    assert_eq!(listing.findings, vec![]);
}

#[test]
fn archive_comment_is_fine_but_bytes_after_it_are_not() {
    let mut bytes = build(&[Spec::stored("a", b"x")]);
    let cut = bytes.len() - 2;
    bytes.truncate(cut);
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(b"note");
    assert_eq!(walk(&bytes).findings, vec![]);
    bytes.extend_from_slice(b"TRAILING JUNK");
    let listing = walk(&bytes);
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);
    assert!(message(&listing.findings, Code::ArchiveExtraData).contains("13 bytes follow"));
    assert_eq!(listing.members.len(), 1);
}

#[test]
fn reads_bzip2_and_lzma_members() {
    let content = b"tensor bytes ".repeat(40);
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
    bz.write_all(&content).unwrap();
    let bz = bz.finish().unwrap();
    let mut lz = Vec::new();
    lzma_rs::lzma_compress(&mut content.as_slice(), &mut lz).unwrap();
    // .lzma header: 5 property bytes, 8 size bytes; zip keeps the properties only.
    let zip_lzma = [&[9, 20, 5, 0][..], &lz[..5], &lz[13..]].concat();
    let bytes = build(&[
        Spec::with("b.bin", 12, &content, bz),
        Spec::with("l.bin", 14, &content, zip_lzma).flags(FLAG_LZMA_EOS),
    ]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.members[0].method, Method::Bzip2);
    assert_eq!(listing.members[1].method, Method::Lzma);
    for member in &listing.members {
        let got = read(&bytes, member);
        assert_eq!(got.findings, vec![], "{}", member.name);
        assert!(got.complete);
        assert_eq!(got.bytes, content);
        let prefix = read_member_prefix(&bytes, member, 10).unwrap();
        assert_eq!(prefix.bytes, &content[..10], "{}", member.name);
        assert!(!prefix.complete);
    }
}

#[test]
fn walks_zips_written_by_python() {
    // zipfile.writestr with ZIP_STORED, ZIP_DEFLATED, ZIP_BZIP2 and ZIP_LZMA members.
    let bytes = unhex(&[
        "504b030414000000000069457c5d17dbf3380d0000000d00000005000000612e74787468656c6c6f2073746f",
        "7265640a504b030414000000080069457c5d74b454860b0000007800000010000000617263686976652f6461",
        "74612e706b6c6b60aa2d64d06ba03b0900504b03042e0000000c0069457c5d55e0c0223b0000006e00000005",
        "000000632e62696e425a68393141592653593ece53c200001d99804000100034204410200020a55346350832",
        "62349a4e275389b2626275313f1772453850903ece53c2504b03043f0002000e0069457c5dacdf8829200000",
        "006400000005000000642e62696e090405005d0000800000361e89dd7d492406806b1215d3e16a877fffb0e2",
        "0000504b0102140314000000000069457c5d17dbf3380d0000000d0000000500000000000000000000008001",
        "00000000612e747874504b0102140314000000080069457c5d74b454860b0000007800000010000000000000",
        "0000000000800130000000617263686976652f646174612e706b6c504b01022e032e0000000c0069457c5d55",
        "e0c0223b0000006e000000050000000000000000000000800169000000632e62696e504b01023f033f000200",
        "0e0069457c5dacdf882920000000640000000500000000000000000000008001c7000000642e62696e504b05",
        "060000000004000400d70000000a0100000000",
    ]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let expected: [&[u8]; 4] = [
        b"hello stored\n",
        &b"\x80\x02}q\x00.".repeat(20),
        &b"bzip2 data ".repeat(10),
        &b"lzma data ".repeat(10),
    ];
    assert_eq!(listing.members.len(), 4);
    for (member, want) in listing.members.iter().zip(expected) {
        let got = read(&bytes, member);
        assert_eq!(got.findings, vec![], "{}", member.name);
        assert_eq!(got.bytes, want);
    }

    // Written to an unseekable stream: data descriptors with signatures.
    let bytes = unhex(&[
        "504b03041400080008000000210000000000000000000000000007000000782f792e6e70799bec17ea1b10c9",
        "40320000504b07086e076be60b00000038000000504b03041400080008000000210000000000000000000000",
        "0000050000007a2e747874abaaaa0200504b0708ca3d27c30500000003000000504b01021403140008000800",
        "000021006e076be60b00000038000000070000000000000000000000800100000000782f792e6e7079504b01",
        "02140314000800080000002100ca3d27c305000000030000000500000000000000000000008001400000007a",
        "2e747874504b0506000000000200020068000000780000000000",
    ]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let got = read(&bytes, &listing.members[1]);
    assert_eq!((got.bytes.as_slice(), got.findings.len()), (&b"zzz"[..], 0));
}

#[test]
fn data_descriptors_must_agree_with_the_directory() {
    let content = b"described later";
    let mut spec = Spec::deflated("d.pkl", content).flags(FLAG_DESCRIPTOR);
    let (crc32, compressed) = (spec.crc, spec.data.len() as u32);
    spec.local_flags = FLAG_DESCRIPTOR;
    let central = spec.central(0);
    // Local copies zeroed, as streaming writers leave them.
    spec.crc = 0;
    let mut record = spec.local();
    record[18..26].fill(0);
    record.extend_from_slice(&spec.data);
    let descriptor = |crc: u32| {
        let mut d = DESCRIPTOR_SIG.to_vec();
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&compressed.to_le_bytes());
        d.extend_from_slice(&(content.len() as u32).to_le_bytes());
        d
    };
    let good = finish(
        [record.clone(), descriptor(crc32)].concat(),
        std::slice::from_ref(&central),
    );
    let listing = walk(&good);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(read(&good, &listing.members[0]).bytes, content);
    // Without the signature (12 bytes) is also a layout writers use.
    let unsigned = finish(
        [record.clone(), descriptor(crc32)[4..].to_vec()].concat(),
        std::slice::from_ref(&central),
    );
    assert_eq!(walk(&unsigned).findings, vec![]);
    let bad = finish([record, descriptor(crc32 ^ 1)].concat(), &[central]);
    let listing = walk(&bad);
    assert_eq!(codes(&listing.findings), [Code::ArchiveHeaderMismatch]);
    assert!(listing.findings[0].message.contains("data descriptor"));
}

#[test]
fn corrupt_extra_fields_are_malformed() {
    let mut spec = Spec::stored("a", b"x");
    let mut bytes = build(&[spec.clone()]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    // A zip64 field too short for the saturated size, then a field running past the block.
    for (extra, saturate, why) in [
        (vec![1, 0, 4, 0, 0, 0, 0, 0], true, "too short"),
        (vec![9, 9, 200, 0, 1], false, "corrupt extra field"),
    ] {
        spec.extra = Vec::new();
        let record = spec.record();
        let mut central = spec.central(0);
        central[30..32].copy_from_slice(&(extra.len() as u16).to_le_bytes());
        if saturate {
            central[20..24].fill(0xFF);
        }
        central.extend_from_slice(&extra);
        bytes = finish(record, &[central]);
        let listing = walk(&bytes);
        assert!(
            message(&listing.findings, Code::ArchiveMalformed).contains(why),
            "{extra:?}: {listing:?}"
        );
    }
}

#[test]
fn reads_zip64_archives() {
    let content = b"zip64 member data";
    let mut local = LOCAL_SIG.to_vec();
    local.extend_from_slice(&[45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    local.extend_from_slice(&crc(content).to_le_bytes());
    local.extend_from_slice(&[0xFF; 8]);
    local.extend_from_slice(&1u16.to_le_bytes());
    local.extend_from_slice(&20u16.to_le_bytes());
    local.push(b'z');
    local.extend_from_slice(&[1, 0, 16, 0]);
    local.extend_from_slice(&(content.len() as u64).to_le_bytes());
    local.extend_from_slice(&(content.len() as u64).to_le_bytes());
    local.extend_from_slice(content);

    let mut central = CENTRAL_SIG.to_vec();
    central.extend_from_slice(&[45, 3, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    central.extend_from_slice(&crc(content).to_le_bytes());
    central.extend_from_slice(&[0xFF; 8]);
    central.extend_from_slice(&1u16.to_le_bytes());
    central.extend_from_slice(&28u16.to_le_bytes());
    central.extend_from_slice(&[0; 10]);
    central.extend_from_slice(&[0xFF; 4]);
    central.push(b'z');
    central.extend_from_slice(&[1, 0, 24, 0]);
    central.extend_from_slice(&(content.len() as u64).to_le_bytes());
    central.extend_from_slice(&(content.len() as u64).to_le_bytes());
    central.extend_from_slice(&0u64.to_le_bytes());

    let mut bytes = local;
    let cd_offset = bytes.len() as u64;
    bytes.extend_from_slice(&central);
    let record_offset = bytes.len() as u64;
    bytes.extend_from_slice(&ZIP64_EOCD_SIG);
    bytes.extend_from_slice(&44u64.to_le_bytes());
    bytes.extend_from_slice(&[45, 3, 45, 0]);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&(central.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&cd_offset.to_le_bytes());
    bytes.extend_from_slice(&ZIP64_LOCATOR_SIG);
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&record_offset.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&EOCD_SIG);
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&[0xFF; 4]);
    bytes.extend_from_slice(&[0xFF; 8]);
    bytes.extend_from_slice(&[0; 2]);

    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let member = &listing.members[0];
    assert_eq!(member.compressed_size, content.len() as u64);
    assert_eq!(member.data_offset, 30 + 1 + 20);
    assert_eq!(read(&bytes, member).bytes, content);

    // The same archive behind prepended bytes: every offset moves with it.
    let shifted = [b"#!/bin/sh\nexit 0\n".to_vec(), bytes.clone()].concat();
    let listing = walk(&shifted);
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);
    assert_eq!(listing.prefix_len, 17);
    assert_eq!(read(&shifted, &listing.members[0]).bytes, content);

    // A locator that points somewhere else than the record it sits after.
    let mut lying = bytes.clone();
    let at = lying.len() - 22 - 20 + 8;
    lying[at..at + 8].copy_from_slice(&5u64.to_le_bytes());
    let listing = walk(&lying);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("zip64 locator"));
}

// ---- loader-differential tricks --------------------------------------------------------

#[test]
fn crc_mismatch_is_found_and_bytes_still_returned() {
    let mut spec = Spec::deflated("data.pkl", b"payload payload payload");
    spec.crc ^= 1;
    let bytes = build(&[spec]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::ArchiveCrcMismatch]);
    assert_eq!(got.bytes, b"payload payload payload");
    assert!(got.complete);
    assert_eq!(got.findings[0].location.as_deref(), Some("data.pkl"));
}

#[test]
fn encryption_flags_on_plain_data_are_found_and_ignored_for_reading() {
    for flag in [FLAG_ENCRYPTED, FLAG_STRONG_ENCRYPTION, FLAG_MASKED_HEADERS] {
        let bytes = build(&[Spec::stored("data.pkl", b"plain").flags(flag)]);
        let listing = walk(&bytes);
        assert_eq!(
            codes(&listing.findings),
            [Code::ArchiveEncrypted],
            "{flag:#x}"
        );
        assert!(listing.members[0].is_marked_encrypted());
        assert_eq!(read(&bytes, &listing.members[0]).bytes, b"plain");
    }
    // Set only in the local header: both a mismatch and an encryption mark.
    let mut spec = Spec::stored("data.pkl", b"plain");
    spec.local_flags = FLAG_ENCRYPTED;
    let listing = walk(&build(&[spec]));
    assert!(has(&listing.findings, Code::ArchiveEncrypted));
    assert!(has(&listing.findings, Code::ArchiveHeaderMismatch));
}

#[test]
fn local_and_central_names_must_agree() {
    let mut spec = Spec::stored("archive/data.pkl", b"x");
    spec.local_name = b"archive/evil.pkl".to_vec();
    let bytes = build(&[spec]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing.findings), [Code::ArchiveHeaderMismatch]);
    let text = message(&listing.findings, Code::ArchiveHeaderMismatch);
    assert!(text.contains("`archive/data.pkl`") && text.contains("`archive/evil.pkl`"));
    let member = &listing.members[0];
    assert_eq!(member.name, "archive/data.pkl");
    assert_eq!(member.local_name.as_deref(), Some(&b"archive/evil.pkl"[..]));
    assert_eq!(read(&bytes, member).bytes, b"x");
}

#[test]
fn local_method_crc_and_sizes_must_agree() {
    let spec = Spec::stored("a", b"abc");
    let mut bytes = build(&[spec]);
    bytes[8] = 8; // local method: deflated
    bytes[14] ^= 0xFF; // local crc
    let listing = walk(&bytes);
    let messages: Vec<_> = listing
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("method 8"));
    assert!(messages[1].contains("crc-32"));
}

#[test]
fn prefix_junk_is_found_and_offsets_follow_python() {
    let inner = build(&[
        Spec::stored("a.txt", b"hello"),
        Spec::deflated("b.pkl", b"world world"),
    ]);
    let bytes = [vec![0x90; 100], inner].concat();
    assert!(looks_like_zip(&bytes));
    let listing = walk(&bytes);
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);
    assert!(message(&listing.findings, Code::ArchiveExtraData).contains("100 bytes precede"));
    assert_eq!(listing.prefix_len, 100);
    assert_eq!(listing.members[0].local_header_offset, 100);
    assert_eq!(read(&bytes, &listing.members[0]).bytes, b"hello");
    assert_eq!(read(&bytes, &listing.members[1]).bytes, b"world world");
}

#[test]
fn junk_between_directory_and_end_record_is_a_gap() {
    let spec = Spec::stored("a", b"x");
    let mut body = spec.record();
    let cd_offset = body.len() as u32;
    let cd = spec.central(0);
    body.extend_from_slice(&cd);
    body.extend_from_slice(&[0x41; 40]);
    body.extend_from_slice(&eocd(1, cd.len() as u32, cd_offset, b""));
    let listing = walk(&body);
    assert_eq!(listing.prefix_len, 0);
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);
    assert!(message(&listing.findings, Code::ArchiveExtraData).contains("40 unreferenced"));
}

#[test]
fn member_hidden_in_a_gap_is_found() {
    let a = Spec::stored("a", b"first");
    let hidden = Spec::stored("hidden.pkl", b"cos\nsystem\n");
    let b = Spec::stored("b", b"second");
    let mut body = a.record();
    body.extend_from_slice(&hidden.record());
    let b_offset = body.len() as u32;
    body.extend_from_slice(&b.record());
    let bytes = finish(body, &[a.central(0), b.central(b_offset)]);
    let listing = walk(&bytes);
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);
    let text = message(&listing.findings, Code::ArchiveExtraData);
    assert!(text.contains("hidden from the central directory"), "{text}");
    assert!(text.contains(&format!("@{}", a.record().len())));
    assert_eq!(listing.members.len(), 2);

    // A gap too small for a member but holding the signature is still reported.
    let mut body = a.record();
    body.extend_from_slice(b"PK\x03\x04..");
    let b_offset = body.len() as u32;
    body.extend_from_slice(&b.record());
    let listing = walk(&finish(body, &[a.central(0), b.central(b_offset)]));
    assert_eq!(codes(&listing.findings), [Code::ArchiveExtraData]);

    // Nor can a small gap hide a bare pickle (torch never leaves gaps).
    let mut body = a.record();
    body.extend_from_slice(b"\x80\x02cos\nsystem\n.");
    let b_offset = body.len() as u32;
    body.extend_from_slice(&b.record());
    let listing = walk(&finish(body, &[a.central(0), b.central(b_offset)]));
    assert!(message(&listing.findings, Code::ArchiveExtraData).contains("hold data"));

    // A small gap of zero padding is fine.
    let mut body = a.record();
    body.extend_from_slice(&[0; 8]);
    let b_offset = body.len() as u32;
    body.extend_from_slice(&b.record());
    let listing = walk(&finish(body, &[a.central(0), b.central(b_offset)]));
    assert_eq!(listing.findings, vec![]);
}

#[test]
fn overlapping_members_are_malformed() {
    // The inner member's local header and data live inside the outer member's data.
    let inner = Spec::stored("inner.pkl", b"evil");
    let outer = Spec::stored("outer.bin", &inner.record());
    let bytes = finish(
        outer.record(),
        &[
            outer.central(0),
            inner.central(30 + outer.name.len() as u32),
        ],
    );
    let listing = walk(&bytes);
    assert_eq!(codes(&listing.findings), [Code::ArchiveMalformed]);
    let text = message(&listing.findings, Code::ArchiveMalformed);
    assert!(
        text.contains("`inner.pkl`") && text.contains("`outer.bin`"),
        "{text}"
    );
    assert_eq!(listing.members.len(), 2);
    assert_eq!(read(&bytes, &listing.members[1]).bytes, b"evil");
}

#[test]
fn duplicate_names_are_malformed() {
    let a = Spec::stored("data.pkl", b"one");
    let b = Spec::stored("data.pkl", b"two");
    let listing = walk(&build(&[a, b]));
    assert_eq!(codes(&listing.findings), [Code::ArchiveMalformed]);
    let text = message(&listing.findings, Code::ArchiveMalformed);
    assert!(
        text.contains("duplicate member name `data.pkl`") && text.contains("archive-malformed")
    );
    assert_eq!(listing.members.len(), 2);
}

#[test]
fn unsafe_names_are_reported() {
    for (name, problem) in [
        ("../../etc/passwd", "`..`"),
        ("a/../../b", "`..`"),
        ("/abs/path", "absolute"),
        ("dir\\file", "backslash"),
        ("C:evil", "drive letter"),
        ("nul\0byte", "nul byte"),
        ("esc\x1b[31m", "control"),
    ] {
        let listing = walk(&build(&[Spec::stored(name, b"x")]));
        assert_eq!(
            codes(&listing.findings),
            [Code::ArchiveUnsafePath],
            "{name:?}"
        );
        let text = message(&listing.findings, Code::ArchiveUnsafePath);
        assert!(text.contains(problem), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\0'), "{text:?}");
    }
    for fine in ["a..b", "..hidden/x", "dir/"] {
        assert_eq!(
            walk(&build(&[Spec::stored(fine, b"x")])).findings,
            vec![],
            "{fine}"
        );
    }
    let mut spec = Spec::stored("caf\u{e9}", b"x");
    let listing = walk(&build(&[spec.clone()]));
    assert_eq!(codes(&listing.findings), [Code::ArchiveUnsafePath]);
    spec = spec.flags(FLAG_UTF8);
    assert_eq!(walk(&build(&[spec])).findings, vec![]);
}

// ---- broken structure ------------------------------------------------------------------

#[test]
fn unlistable_archives_are_malformed_not_errors() {
    let good = build(&[Spec::stored("a", b"x"), Spec::stored("b", b"y")]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", Vec::new()),
        ("no end record", good[..good.len() - 22].to_vec()),
        ("local header only", Spec::stored("a", b"x").record()),
        ("directory larger than file", {
            let mut b = good.clone();
            let n = b.len();
            b[n - 10..n - 6].copy_from_slice(&10_000u32.to_le_bytes());
            b
        }),
        ("directory offset into end record", {
            let mut b = good.clone();
            let n = b.len();
            b[n - 6..n - 2].copy_from_slice(&(n as u32).to_le_bytes());
            b
        }),
    ];
    for (what, bytes) in cases {
        let listing = walk(&bytes);
        assert!(
            has(&listing.findings, Code::ArchiveMalformed),
            "{what}: {listing:?}"
        );
        assert!(listing.members.is_empty(), "{what}");
    }
    // Python's zipfile reads these (it ignores disk numbers and takes a short comment), so
    // they are listed as it lists them; other readers disagree, so they are malformed too.
    let mut comment_past_end = good.clone();
    let n = comment_past_end.len();
    comment_past_end[n - 2] = 9;
    let mut multi_disk = good.clone();
    multi_disk[n - 18] = 1;
    for (what, bytes) in [
        ("comment past end", comment_past_end),
        ("multi-disk", multi_disk),
    ] {
        let listing = walk(&bytes);
        assert!(
            has(&listing.findings, Code::ArchiveMalformed),
            "{what}: {listing:?}"
        );
        assert_eq!(listing.members.len(), 2, "{what}");
    }
}

#[test]
fn truncated_or_miscounted_directory_is_malformed() {
    let specs = [Spec::stored("a", b"x"), Spec::stored("b", b"y")];
    let mut body = Vec::new();
    for spec in &specs {
        body.extend_from_slice(&spec.record());
    }
    let cd_offset = body.len() as u32;
    let full = [specs[0].central(0), specs[1].central(32)].concat();
    // The directory is cut inside the second entry but the end record is consistent
    // with the cut: the second entry is unreadable.
    let cut = &full[..full.len() - 10];
    let mut bytes = body.clone();
    bytes.extend_from_slice(cut);
    bytes.extend_from_slice(&eocd(2, cut.len() as u32, cd_offset, b""));
    let listing = walk(&bytes);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("entry 1 is truncated"));
    assert_eq!(listing.members.len(), 1);

    // Whole entries, but a count that disagrees (miniz trusts the count, Python the size).
    let mut bytes = body;
    bytes.extend_from_slice(&full);
    bytes.extend_from_slice(&eocd(3, full.len() as u32, cd_offset, b""));
    let listing = walk(&bytes);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("declares 3 entries"));
    assert_eq!(listing.members.len(), 2);
}

#[test]
fn member_data_past_end_of_file_is_malformed() {
    let mut spec = Spec::stored("a", b"x");
    let record = spec.record();
    spec.data = vec![0; 1000];
    let bytes = finish(record, &[spec.central(0)]);
    let listing = walk(&bytes);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("`a`"));
    assert!(listing.members.is_empty());
    // read_member guards on its own against a member that does not fit the source.
    let good = build(&[Spec::stored("a", b"x")]);
    let mut member = walk(&good).members[0].clone();
    member.compressed_size = 1000;
    let got = read(&good, &member);
    assert_eq!(codes(&got.findings), [Code::ArchiveMalformed]);
    assert!(!got.complete);
}

#[test]
fn bad_local_signature_is_malformed() {
    let mut bytes = build(&[Spec::stored("a", b"x")]);
    bytes[0] = b'X';
    let listing = walk(&bytes);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("no local header"));
    assert!(listing.members.is_empty());
}

#[test]
fn later_end_record_signature_is_reported() {
    let mut bytes = build(&[Spec::stored("a", b"x")]);
    let n = bytes.len();
    bytes[n - 2] = 6;
    bytes.extend_from_slice(b"PK\x05\x06");
    bytes.extend_from_slice(b"xx");
    let listing = walk(&bytes);
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("follow the record"));
    assert_eq!(listing.members.len(), 1);
}

#[test]
fn limits_are_findings() {
    let specs: Vec<_> = (0..5)
        .map(|i| Spec::stored(&format!("m{i}"), b"x"))
        .collect();
    let bytes = build(&specs);
    let limits = ZipLimits {
        max_members: 3,
        ..ZipLimits::default()
    };
    let listing = list(&bytes, &limits).unwrap();
    assert!(has(&listing.findings, Code::ArchiveLimitExceeded));
    assert_eq!(listing.members.len(), 3);
    let limits = ZipLimits {
        max_central_directory: 10,
        ..ZipLimits::default()
    };
    let listing = list(&bytes, &limits).unwrap();
    assert_eq!(codes(&listing.findings), [Code::ArchiveLimitExceeded]);
    let limits = ZipLimits {
        max_name_len: 1,
        ..ZipLimits::default()
    };
    let listing = list(&bytes, &limits).unwrap();
    assert_eq!(listing.findings.len(), 5);
}

#[test]
fn repeated_findings_are_summarised() {
    let specs: Vec<_> = (0..100).map(|_| Spec::stored("same", b"x")).collect();
    let listing = walk(&build(&specs));
    assert_eq!(listing.findings.len(), MAX_FINDINGS_PER_CODE + 1);
    assert!(listing
        .findings
        .last()
        .unwrap()
        .message
        .contains("67 more `archive-malformed`"));
}

// ---- reading members -------------------------------------------------------------------

#[test]
fn unsupported_method_is_a_finding() {
    let bytes = build(&[Spec::with("z.bin", 93, b"x", b"zstd?".to_vec())]);
    let listing = walk(&bytes);
    assert_eq!(listing.findings, vec![]);
    assert_eq!(listing.members[0].method, Method::Other(93));
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::ArchiveUnsupported]);
    assert!(!got.complete && got.bytes.is_empty());
}

#[test]
fn deflate_bomb_stops_at_the_output_limit() {
    let zeros = vec![0u8; 4 << 20];
    let bytes = build(&[Spec::deflated("bomb.pkl", &zeros)]);
    let listing = walk(&bytes);
    let member = &listing.members[0];
    assert!(member.compressed_size < 10_000);
    let got = read_member(&bytes, member, 1 << 20).unwrap();
    assert_eq!(codes(&got.findings), [Code::ArchiveLimitExceeded]);
    assert!(got.findings[0]
        .message
        .contains("more than the 1048576-byte limit"));
    assert_eq!(got.bytes.len(), 1 << 20);
    assert!(!got.complete);

    // A member that lies about its size is cut at the declared size.
    let mut liar = Spec::deflated("liar.pkl", &zeros);
    liar.size = 1000;
    let bytes = build(&[liar]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::ArchiveLimitExceeded]);
    assert!(got.findings[0]
        .message
        .contains("past its declared size of 1000"));
    assert_eq!(got.bytes.len(), 1000);

    // And one that holds less than it declares disagrees with its header.
    let mut short = Spec::deflated("short.pkl", b"abc");
    short.size = 10;
    let bytes = build(&[short]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::ArchiveHeaderMismatch]);
    assert!(got.findings[0]
        .message
        .contains("holds 3 bytes but declares 10"));
}

#[test]
fn large_members_spill_to_disk_with_the_same_checks() {
    use crate::scan::source::{Spilled, SPILL_AT};
    let content: Vec<u8> = (0..(SPILL_AT as u32 / 4 + 100_000))
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    for spec in [
        Spec::deflated("big.bin", &content),
        Spec::stored("big.bin", &content),
    ] {
        let bytes = build(&[spec]);
        let listing = walk(&bytes);
        let member = &listing.members[0];
        let got = read_member_spilled(&bytes, member, 64 << 20).unwrap();
        assert!(
            got.complete && got.findings.is_empty(),
            "{:?}",
            got.findings
        );
        assert!(matches!(got.bytes, Spilled::File(_)));
        assert_eq!(got.bytes.size(), content.len() as u64);
        let tail = got.bytes.read_vec(content.len() as u64 - 7, 7).unwrap();
        assert_eq!(tail, content[content.len() - 7..]);
        // A bound below the content keeps exactly the bound and says so.
        let cut = read_member_spilled(&bytes, member, 1 << 20).unwrap();
        assert!(!cut.complete);
        assert_eq!(cut.bytes.size(), 1 << 20);
        assert_eq!(codes(&cut.findings), [Code::ArchiveLimitExceeded]);
        // A wrong CRC is still found on spilled bytes.
        let mut bad = member.clone();
        bad.crc32 ^= 1;
        let got = read_member_spilled(&bytes, &bad, 64 << 20).unwrap();
        assert_eq!(codes(&got.findings), [Code::ArchiveCrcMismatch]);
    }
}

#[test]
fn prefix_reads_stop_early() {
    let content: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let bytes = build(&[
        Spec::deflated("big.bin", &content),
        Spec::stored("raw.bin", &content),
    ]);
    let listing = walk(&bytes);
    for member in &listing.members {
        let got = read_member_prefix(&bytes, member, 100).unwrap();
        assert_eq!(got.bytes, &content[..100]);
        assert!(!got.complete && got.findings.is_empty());
        let got = read_member_prefix(&bytes, member, 10 << 20).unwrap();
        assert_eq!(got.bytes, content);
        assert!(got.complete);
    }
}

#[test]
fn corrupt_streams_are_compression_malformed() {
    let content = b"some pickle bytes that compress ".repeat(20);
    let mut spec = Spec::deflated("data.pkl", &content);
    let len = spec.data.len();
    spec.data.truncate(len / 2);
    let bytes = build(&[spec]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::CompressionMalformed]);
    assert!(got.findings[0].message.contains("truncated"));
    assert!(!got.complete);

    let bytes = build(&[Spec::with("bad.bin", 8, b"x", vec![0xFF; 16])]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::CompressionMalformed]);

    for method in [12, 14] {
        let bytes = build(&[Spec::with("bad.bin", method, b"x", vec![0x42; 16])]);
        let listing = walk(&bytes);
        let got = read(&bytes, &listing.members[0]);
        assert_eq!(
            codes(&got.findings),
            [Code::CompressionMalformed],
            "{method}"
        );
    }
}

#[test]
fn data_after_the_compressed_stream_is_extra() {
    let mut spec = Spec::deflated("data.pkl", b"short");
    spec.data.extend_from_slice(b"hidden after the stream end");
    let bytes = build(&[spec]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert_eq!(codes(&got.findings), [Code::ArchiveExtraData]);
    assert_eq!(got.bytes, b"short");
}

#[test]
fn stored_size_disagreement_is_a_mismatch() {
    let mut spec = Spec::stored("a", b"abcdef");
    spec.size = 3;
    let bytes = build(&[spec]);
    let listing = walk(&bytes);
    let got = read(&bytes, &listing.members[0]);
    assert!(has(&got.findings, Code::ArchiveLimitExceeded));
    assert_eq!(got.bytes, b"abc");
}

#[test]
fn sniffing_rejects_other_formats() {
    assert!(!looks_like_zip(&b"\x80\x02}q\x00.".to_vec()));
    assert!(!looks_like_zip(&Vec::new()));
    assert!(!looks_like_zip(&b"PK\x05\x06short".to_vec()));
    assert!(looks_like_zip(&b"PK\x03\x04".to_vec()));
}

/// Deterministic stand-in for the fuzz target: mutated archives never panic (debug
/// builds also trap arithmetic overflow).
#[test]
fn survives_mutated_archives() {
    let seeds = [
        build(&[
            Spec::stored("a.txt", b"hello"),
            Spec::deflated("b.pkl", &b"pickle ".repeat(30)),
            Spec::stored("c/", b""),
        ]),
        [
            b"junk".to_vec(),
            build(&[Spec::deflated("x", b"yyyyyyyyyyyy")]),
        ]
        .concat(),
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..600 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 4 {
                0 => bytes[at] = next() as u8,
                1 => bytes[at] = [0, 0xFF, 0x7F, 0x80][(next() % 4) as usize],
                2 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, next() as u8),
            }
        }
        let listing = walk(&bytes);
        for member in &listing.members {
            let _ = read_member(&bytes, member, 1 << 16).unwrap();
            let _ = read_member_prefix(&bytes, member, 7).unwrap();
        }
    }
}

#[test]
fn io_failures_are_errors() {
    struct Failing;
    impl ReadAt for Failing {
        fn size(&self) -> u64 {
            100
        }
        fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
            Err(io::Error::other("disk on fire"))
        }
    }
    assert!(matches!(
        list(&Failing, &ZipLimits::default()),
        Err(ZipError::Read { offset: 0, .. })
    ));
}

#[test]
fn the_last_whole_end_record_wins_as_in_python() {
    // A second, empty end record after the real one, its comment length running past the end
    // of the file: Python and miniz take it (an empty archive), whatever the comment says.
    let mut bytes = build(&[Spec::stored("a", b"x")]);
    let mut last = eocd(0, 0, 0, b"");
    let n = last.len();
    last[n - 2..].copy_from_slice(&0xFFFFu16.to_le_bytes());
    bytes.extend_from_slice(&last);
    let listing = walk(&bytes);
    assert!(listing.members.is_empty());
    assert!(message(&listing.findings, Code::ArchiveMalformed).contains("runs 65535 bytes past"));
}
