//! Reading through a bounded buffer gives the answers reading the whole input gives, at every
//! buffer size; arguments too long to hold take their documented fail-closed readings.

use std::io;

use super::window::{Memory, Sizes, MAX_ARG};
use super::*;

fn sizes(chunk: usize, max_arg: usize) -> Sizes {
    Sizes { chunk, max_arg }
}

fn with(bytes: &[u8], sizes: Sizes) -> PickleAnalysis {
    analyse_with(&Memory(bytes), &PickleLimits::default(), sizes).unwrap()
}

fn names(analysis: &PickleAnalysis) -> Vec<String> {
    analysis
        .globals
        .iter()
        .map(|imported| imported.global.qualified())
        .collect()
}

fn codes(analysis: &PickleAnalysis) -> Vec<&'static str> {
    analysis.findings.iter().map(|f| f.code.as_str()).collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x95];
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn short_unicode(text: &str) -> Vec<u8> {
    let mut out = vec![0x8c, text.len() as u8];
    out.extend_from_slice(text.as_bytes());
    out
}

/// Inputs covering every reading path: lines, length-prefixed arguments, nested pickles,
/// several streams, the recovery scan, and frames each dialect reads differently.
fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = vec![
        b"cos\nsystem\n(S'ls'\ntR.".to_vec(),
        b"(lp0\nI1\naI2\naF1.5\naL7L\naVos\\u0041\np1\ng1\na.".to_vec(),
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.".to_vec(),
        b"\x80\x02N\x00 raw array bytes \x01\x02 cos\nsystem\n\xff\xfe tail".to_vec(),
        b"\x80\x02N.cos\nsystem\n\x00".to_vec(),
        b"\x80\x02\x00 junk cos\nsystem\n".to_vec(),
        b"cos\nsys".to_vec(),
        b"\x80\x02\x82\x01)R\x83\x00\x01)R0.".to_vec(),
    ];
    // A nested pickle in BINBYTES and in latin-1 text.
    let payload = b"cos\nsystem\n(S'id'\ntR.";
    let mut nested = b"\x80\x03cbuiltins\nbytes\nB".to_vec();
    nested.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    nested.extend_from_slice(payload);
    nested.extend_from_slice(b"\x85R.");
    corpus.push(nested);
    let inner = "\u{80}\u{2}cos\nsystem\n.";
    let mut latin = b"\x80\x02c_codecs\nencode\nX".to_vec();
    latin.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    latin.extend_from_slice(inner.as_bytes());
    latin.extend_from_slice(b"\x85R.");
    corpus.push(latin);
    // Frames: well formed, straddled by an argument, by a line, past the end, and nested.
    let mut body = short_unicode("os");
    body.push(0x94);
    body.extend(short_unicode("system"));
    body.extend_from_slice(b"\x94\x93\x94)R.");
    let mut framed = b"\x80\x04".to_vec();
    framed.extend(frame(&body));
    corpus.push(framed);
    let mut straddle = b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00".to_vec();
    straddle.extend(short_unicode("os"));
    straddle.extend(short_unicode("system"));
    straddle.extend_from_slice(b"\x93)R.");
    corpus.push(straddle);
    // GLOBAL's lines run past a 4-byte frame: Python refuses, C reads on; CFile reads the
    // line fresh from where its buffer ends.
    let mut line_past = b"\x80\x04".to_vec();
    line_past.extend(frame(b"N0cb"));
    line_past.extend_from_slice(b"uiltins\nset\n0cos\nsystem\n.");
    corpus.push(line_past);
    let mut fresh = b"\x80\x04".to_vec();
    fresh.extend(frame(b"N0X\x06"));
    fresh.extend_from_slice(b"\x00\x00\x00system0cposix\nsystem\n.");
    corpus.push(fresh);
    let mut two_frames = b"\x80\x04".to_vec();
    two_frames.extend(frame(b"\x95\x02\x00\x00\x00\x00\x00\x00\x00N."));
    corpus.push(two_frames);
    corpus.push(b"\x80\x04\x95\xe8\x03\x00\x00\x00\x00\x00\x00N.".to_vec());
    // Several streams, the last one framed and cut.
    let mut streams = b"\x80\x02N.\x80\x02K\x01.".to_vec();
    streams.extend_from_slice(b"\x80\x04");
    streams.extend(frame(b"cos\nsystem\n"));
    corpus.push(streams);
    // Many opcodes, so the stream runs past any buffer many times.
    let mut long = b"\x80\x02]q\x00".to_vec();
    for index in 0..2000u32 {
        long.extend_from_slice(b"J");
        long.extend_from_slice(&index.to_le_bytes());
        long.extend_from_slice(b"aI12345\naVabc\naS'de\\x66'\na");
    }
    long.extend_from_slice(b"cos\nsystem\n.");
    corpus.push(long);
    corpus
}

/// Every input, and many one-byte mutations and cuts of it, read through buffers of many
/// sizes: the answer never depends on the buffer.
#[test]
fn answers_do_not_depend_on_the_buffer_size() {
    let limits = PickleLimits {
        max_opcodes: 200_000,
        ..PickleLimits::default()
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in corpus() {
        let mut inputs = vec![seed.clone()];
        for _ in 0..40 {
            let mut bytes = seed.clone();
            let at = (next() % bytes.len() as u64) as usize;
            let values = [0x00, 0x0a, 0x28, 0x2e, 0x63, 0x80, 0x93, 0x95, 0xff, 0x01];
            bytes[at] = values[(next() % values.len() as u64) as usize];
            inputs.push(bytes.clone());
            inputs.push(bytes[..at].to_vec());
        }
        for bytes in inputs {
            let whole = analyse(&bytes, &limits);
            for chunk in [1, 2, 3, 5, 8, 13, 64] {
                let streamed =
                    analyse_with(&Memory(&bytes), &limits, sizes(chunk, MAX_ARG)).unwrap();
                assert_eq!(streamed, whole, "chunk {chunk}: {bytes:?}");
            }
        }
    }
}

#[test]
fn frames_across_the_buffer_boundary_in_each_dialect() {
    // Each frame-reading difference shows up whatever the buffer size.
    let framed = corpus()
        .into_iter()
        .filter(|bytes| bytes.contains(&0x95) && bytes.len() < 512);
    for seed in framed {
        let whole = analyse(&seed, &PickleLimits::default());
        for chunk in 1..=seed.len() {
            assert_eq!(with(&seed, sizes(chunk, MAX_ARG)), whole, "chunk {chunk}");
        }
    }
    // The line-past-the-frame input is one where the dialects disagree.
    let mut line_past = b"\x80\x04".to_vec();
    line_past.extend(frame(b"N0cb"));
    line_past.extend_from_slice(b"uiltins\nset\n0cos\nsystem\n.");
    let analysis = with(&line_past, sizes(3, MAX_ARG));
    // C reads the line on, Python refuses it, and the file reader takes it fresh.
    assert_eq!(
        names(&analysis),
        ["builtins.set", "os.system", "uiltins.set"]
    );
}

#[test]
fn lines_across_the_buffer_boundary() {
    let bytes = b"cbuiltins\ngetattr\n(S'a long quoted string'\nI123456789\ntR.";
    let whole = analyse(bytes, &PickleLimits::default());
    assert_eq!(names(&whole), ["builtins.getattr"]);
    for chunk in 1..bytes.len() {
        assert_eq!(with(bytes, sizes(chunk, MAX_ARG)), whole);
    }
}

#[test]
fn huge_binbytes8_with_a_nested_pickle_at_its_start() {
    // Larger than both the materialising cap and the inline limit: analysed where it lies.
    let payload = b"\x80\x02cos\nsystem\n(S'id'\ntR.";
    let size = (machine::INLINE_NESTED + 1000) as u64;
    let mut bytes = b"\x80\x04\x8e".to_vec();
    bytes.extend_from_slice(&size.to_le_bytes());
    let content_at = bytes.len() as u64;
    bytes.extend_from_slice(payload);
    bytes.resize(bytes.len() + size as usize - payload.len(), 0);
    bytes.extend_from_slice(b"\x94.");
    for sizes in [sizes(4096, 16), sizes(1 << 20, MAX_ARG), Sizes::default()] {
        let analysis = with(&bytes, sizes);
        assert_eq!(names(&analysis), ["os.system"]);
        assert_eq!(analysis.globals[0].via, Via::Nested);
        assert_eq!(analysis.globals[0].offset, content_at + 2);
        assert_eq!(analysis.end, End::Complete);
        assert!(codes(&analysis).contains(&"pickle-nested"));
    }
}

#[test]
fn long_lines_take_fail_closed_readings() {
    let small = sizes(4, 16);
    let long = "x".repeat(40);
    // INT, FLOAT, LONG: taken as valid, and the stream goes on to the import.
    for op in ["I", "F", "L"] {
        let bytes = format!("{op}{long}\n0cos\nsystem\n.");
        assert!(analyse(bytes.as_bytes(), &PickleLimits::default())
            .globals
            .iter()
            .all(|g| g.via == Via::Recovery));
        let analysis = with(bytes.as_bytes(), small);
        assert!(analysis.is_pickle);
        assert_eq!(names(&analysis), ["os.system"], "{op}");
        assert_eq!(analysis.globals[0].via, Via::Stream);
    }
    // The recovery scan runs from the long line too: the union of both readings.
    let bytes = cat(&[b"\x80\x02I", long.as_bytes(), b"\nC\x0dZZcos\nsystem\n0N."]);
    let analysis = with(&bytes, small);
    assert_eq!(analysis.end, End::Complete);
    assert_eq!(names(&analysis), ["os.system"]);
    assert_eq!(analysis.globals[0].via, Via::Recovery);
    // GLOBAL: the import is recorded under what was read of the name.
    let bytes = format!("c{long}\nsystem\n.");
    let analysis = with(bytes.as_bytes(), small);
    assert_eq!(names(&analysis), [format!("{long}.system")]);
    assert_eq!(analysis.end, End::Complete);
    // STRING: still refused unquoted; quoted, a string of unknown content.
    let bytes = format!("S'{long}'\n.");
    assert_eq!(with(bytes.as_bytes(), small).end, End::Complete);
    let bytes = format!("S{long}\n.");
    assert_eq!(
        with(bytes.as_bytes(), small).end,
        End::Invalid { offset: 0 }
    );
    // STACK_GLOBAL on such a string names it by its length.
    let bytes = cat(&[b"V", long.as_bytes(), b"\nVsystem\n\x93."]);
    assert_eq!(names(&with(&bytes, small)), ["<40-byte name>.system"]);
}

#[test]
fn long_memo_keys_make_the_memo_unknown() {
    let small = sizes(4, 16);
    let key = "1".repeat(40);
    // Whole, the key does not fit an index and CPython stops.
    let bytes = cat(&[b"\x80\x02Np", key.as_bytes(), b"\n0g7\ng8\n\x93."]);
    let whole = analyse(&bytes, &PickleLimits::default());
    assert!(whole.globals.is_empty());
    // Too long to read: later GETs of keys never stored push unknown values.
    let analysis = with(&bytes, small);
    assert_eq!(names(&analysis), ["?.?"]);
    assert_eq!(analysis.globals[0].class, GlobalClass::Dangerous);
    assert_eq!(analysis.end, End::Complete);
    // A GET with such a key pushes an unknown value.
    let bytes = cat(&[b"\x80\x02g", key.as_bytes(), b"\nVsystem\n\x93."]);
    assert_eq!(names(&with(&bytes, small)), ["?.system"]);
}

#[test]
fn long_text_is_checked_in_pieces() {
    let small = sizes(7, 16);
    let binunicode = |text: &[u8]| {
        let mut out = b"\x80\x04X".to_vec();
        out.extend_from_slice(&(text.len() as u32).to_le_bytes());
        out.extend_from_slice(text);
        out.extend_from_slice(b"\x94.");
        out
    };
    // ASCII holding a pickle at its start: analysed where it lies.
    let text = b"cos\nsystem\n.and some more text after it";
    let analysis = with(&binunicode(text), small);
    assert_eq!(
        analysis,
        analyse(&binunicode(text), &PickleLimits::default())
    );
    assert_eq!(names(&analysis), ["os.system"]);
    assert_eq!(analysis.globals[0].offset, 7);
    // Not UTF-8, far into it: refused as CPython refuses it.
    let mut bad = b"cos\nsystem\n.".repeat(4);
    bad.push(0xff);
    let analysis = with(&binunicode(&bad), small);
    assert_eq!(
        analysis,
        analyse(&binunicode(&bad), &PickleLimits::default())
    );
    assert_eq!(analysis.end, End::Invalid { offset: 2 });
    assert!(analysis.globals.iter().all(|g| g.via == Via::Recovery));
    // Non-ASCII latin-1 text that starts like an opcode cannot be decoded in pieces.
    let latin = "c\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}".as_bytes();
    let analysis = with(&binunicode(latin), small);
    assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
    // Text that does not start like an opcode is plain text.
    let plain = "\u{e9}t\u{e9} and more than sixteen bytes".as_bytes();
    assert!(with(&binunicode(plain), small).findings.is_empty());
}

#[test]
fn read_errors_are_returned() {
    struct Failing(Vec<u8>);
    impl ReadAt for Failing {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            if offset + buf.len() as u64 > 8 {
                return Err(io::Error::other("disk on fire"));
            }
            self.0.as_slice().read_exact_at(buf, offset)
        }
    }
    let source = Failing(b"\x80\x02N0N0N0N0N0N0N0N.".to_vec());
    let error = analyse_source(&source, &PickleLimits::default()).unwrap_err();
    assert_eq!(error.to_string(), "disk on fire");
    let error = analyse_with(&source, &PickleLimits::default(), sizes(2, 16)).unwrap_err();
    assert_eq!(error.to_string(), "disk on fire");
}

#[test]
fn long_lines_are_judged_where_a_part_decides() {
    let small = sizes(4, 16);
    let digits = "1".repeat(40);
    // A byte no number holds, or a NUL, decides as the whole line does.
    for line in [
        format!("11!{digits}"),
        format!("1\0{digits}!"),
        format!("x\0{digits}"),
        format!("{digits}\0!"),
    ] {
        let bytes = cat(&[b"\x80\x02I", line.as_bytes(), b"\nN."]);
        let whole = analyse(&bytes, &PickleLimits::default());
        let streamed = with(&bytes, small);
        // Messages quote at most the part that decided.
        assert_eq!(streamed.end, whole.end, "{line:?}");
        assert_eq!(codes(&streamed), codes(&whole), "{line:?}");
    }
    // PERSID, INST and GLOBAL names are checked whole, in pieces.
    let long = "a".repeat(40);
    for bytes in [
        cat(&[b"P", long.as_bytes(), b"\xff\n."]),
        cat(&[b"(i", long.as_bytes(), b"\xe9\nb\n."]),
        cat(&[b"c", long.as_bytes(), b"\xe9\nb\n."]),
        cat(&[b"c", long.as_bytes(), b"\xff\nb\n."]),
        cat(&[b"S'", long.as_bytes(), b"\\x4'\n."]),
        cat(&[b"V", long.as_bytes(), b"\\u12\n."]),
        cat(&[b"P", long.as_bytes(), b"\n."]),
    ] {
        let whole = analyse(&bytes, &PickleLimits::default());
        assert_eq!(with(&bytes, small), whole, "{bytes:?}");
    }
    // Text that may hold a pickle but is too long to decode is reported, not passed over.
    let bytes = cat(&[b"S'cos\\nsystem\\n.", long.as_bytes(), b"'\n."]);
    let analysis = with(&bytes, small);
    assert_eq!(codes(&analysis), ["pickle-limit-exceeded"]);
    assert_eq!(analysis.end, End::Complete);
}
