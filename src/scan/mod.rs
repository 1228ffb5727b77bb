//! Content scanning: decide each file's format from its bytes, never from its name, and
//! collect coded findings from the parser of that format, descending into containers.
//!
//! The dispatcher here owns format sniffing, container recursion (zip, tar, compression
//! wrappers, NumPy object payloads) and the resource bounds that hold across a whole file
//! (nesting depth, inflated bytes, time). Each format has its own module that parses one kind
//! of bytes and returns findings. Scanning produces facts only: it never decides a verdict
//! (that is `policy`), never prints, and never executes or imports anything it reads.

pub mod compressed;
pub mod gguf;
mod json;
pub mod keras;
pub mod numpy;
pub mod onnx;
pub mod pickle;
mod readings;
pub mod safetensors;
pub mod source;
pub mod tar;
pub mod template;
pub mod tensorflow;
mod text;
mod walk;
pub mod zip;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::finding::{quote, Code, Finding, Severity};
use readings::Taken;
use source::{ReadAt, Slice};

pub use walk::{scan_paths, ScanError};

/// A file's format as decided from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Format {
    Pickle,
    Joblib,
    TorchZip,
    TorchTar,
    Npy,
    Npz,
    Safetensors,
    Gguf,
    Onnx,
    Keras,
    Hdf5,
    Tensorflow,
    Wasm,
    Zip,
    Tar,
    Gzip,
    Zlib,
    Bzip2,
    Xz,
    Lzma,
    Json,
    Text,
    Empty,
    Unsupported,
    Unknown,
    Symlink,
    Special,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::Joblib => "joblib",
            Format::TorchZip => "torch-zip",
            Format::TorchTar => "torch-tar",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Onnx => "onnx",
            Format::Keras => "keras",
            Format::Hdf5 => "hdf5",
            Format::Tensorflow => "tensorflow",
            Format::Wasm => "wasm",
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Zlib => "zlib",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Json => "json",
            Format::Text => "text",
            Format::Empty => "empty",
            Format::Unsupported => "unsupported",
            Format::Unknown => "unknown",
            Format::Symlink => "symlink",
            Format::Special => "special",
        }
    }

    /// Formats whose loaders can run code: the pickle family.
    pub fn carries_pickle(self) -> bool {
        matches!(
            self,
            Format::Pickle | Format::Joblib | Format::TorchZip | Format::TorchTar
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bounds that hold for one file, whatever it contains. Exceeding one is a finding.
#[derive(Debug, Clone)]
pub struct ScanLimits {
    /// Containers inside containers (zip in gzip in tar...).
    pub max_depth: u32,
    /// Output of one compressed stream or member (a bomb is refused past it, and legitimate
    /// compressed members larger than this are refused too: modelvet must see what it
    /// accepts). Output past a few MiB is kept in an anonymous temporary file, not in memory.
    pub max_inflated: u64,
    /// Output of all compressed streams and members of one file together.
    pub max_total_inflated: u64,
    /// Bytes of one pickle stream read for analysis.
    pub max_pickle_bytes: u64,
    /// Size up to which a file is checked for being UTF-8 text or JSON.
    pub max_text_bytes: u64,
    /// Size of an ONNX model parsed in memory.
    pub max_onnx_bytes: u64,
    /// Window in which a GGUF header and metadata must fit.
    pub gguf_window: u64,
    /// Stored zip members up to this size are read whole (so their CRC is checked); larger
    /// ones (tensor storages) are scanned in place, reading only what recognising them needs.
    pub max_member_read: u64,
    /// Wall-clock time per top-level file.
    pub time_per_file: Duration,
    pub pickle: pickle::PickleLimits,
    pub zip: zip::ZipLimits,
    pub tar: tar::TarLimits,
}

impl Default for ScanLimits {
    fn default() -> Self {
        ScanLimits {
            max_depth: 6,
            max_inflated: 128 << 20,
            max_total_inflated: 256 << 20,
            max_pickle_bytes: 1 << 30,
            max_text_bytes: 256 << 20,
            max_onnx_bytes: 2 << 30,
            gguf_window: 256 << 20,
            max_member_read: 1 << 20,
            time_per_file: Duration::from_secs(30),
            pickle: pickle::PickleLimits::default(),
            zip: zip::ZipLimits::default(),
            tar: tar::TarLimits::default(),
        }
    }
}

/// What to scan and how.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub limits: ScanLimits,
}

/// The scan of one file: its detected format and every finding, including those of members.
#[derive(Debug, Clone, Serialize)]
pub struct FileScan {
    pub path: PathBuf,
    pub format: Format,
    pub size: u64,
    pub findings: Vec<Finding>,
}

/// Scans the bytes behind `source`, named `name` (used only to compare the extension with the
/// content). I/O errors of the source are returned; everything else is a finding.
pub fn scan_source(source: &dyn ReadAt, name: &str, options: &ScanOptions) -> io::Result<Scanned> {
    let mut inspector = Inspector {
        limits: &options.limits,
        deadline: Instant::now() + options.limits.time_per_file,
        inflated_total: 0,
    };
    let mut scanned = inspector.inspect(source, name, 0)?;
    if let Some(finding) = extension_mismatch(name, scanned.format) {
        scanned.findings.push(finding);
    }
    Ok(scanned)
}

/// A format and the findings about bytes of that format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub format: Format,
    pub findings: Vec<Finding>,
}

impl Scanned {
    fn new(format: Format, findings: Vec<Finding>) -> Self {
        Scanned { format, findings }
    }
}

/// A WebAssembly core module, version 1.
const WASM_MAGIC: &[u8; 8] = b"\0asm\x01\0\0\0";

/// How many bytes are looked at to recognise a format.
const HEAD_LEN: u64 = 4096;

struct Inspector<'a> {
    limits: &'a ScanLimits,
    deadline: Instant,
    inflated_total: u64,
}

impl Inspector<'_> {
    /// The file's format by its content, with the findings of that reading, and then every
    /// other reading a loader may take of the same bytes: a sniffed format is never final.
    fn inspect(&mut self, source: &dyn ReadAt, name: &str, depth: u32) -> io::Result<Scanned> {
        let size = source.size();
        if size == 0 {
            let findings = model_extension(name)
                .map(|ext| {
                    Finding::new(
                        Code::ModelFileEmpty,
                        format!("file is empty, but its name ends in `.{ext}`: no loader can read a model from it"),
                    )
                })
                .into_iter()
                .collect();
            return Ok(Scanned::new(Format::Empty, findings));
        }
        let head = source.read_vec(0, size.min(HEAD_LEN))?;
        let mut taken = Taken::default();
        let mut scanned = self.primary(source, name, &head, depth, &mut taken)?;
        self.other_readings(source, depth, &taken, &mut scanned)?;
        Ok(scanned)
    }

    /// The first reading: what the content says the file is. `taken` records which of the
    /// readings that every file gets (zip, tar, pickle) this one already covered.
    fn primary(
        &mut self,
        source: &dyn ReadAt,
        name: &str,
        head: &[u8],
        depth: u32,
        taken: &mut Taken,
    ) -> io::Result<Scanned> {
        let size = source.size();
        if head.starts_with(gguf::MAGIC) {
            return self.gguf(source);
        }
        if head.starts_with(numpy::MAGIC) {
            return self.npy(source);
        }
        // libhdf5 finds the superblock after a user block too (512, 1024, 2048... bytes).
        if head.starts_with(keras::HDF5_MAGIC) || keras::looks_like_hdf5(source)? {
            return Ok(Scanned::new(Format::Hdf5, keras::check_hdf5(source)?));
        }
        if head.starts_with(WASM_MAGIC) {
            // Plugins are validated where they run (the sandbox compiles them from these
            // bytes); a WebAssembly module loads no code into the host by itself.
            return Ok(Scanned::new(Format::Wasm, Vec::new()));
        }
        if safetensors::looks_like_safetensors(head, size) {
            return self.safetensors(source);
        }
        if let Some(kind) = compressed::sniff(head) {
            if let Some(scanned) = self.decompress(source, kind, depth)? {
                return Ok(scanned);
            }
        }
        if let Some(container) = compressed::sniff_unsupported(head) {
            let finding = Finding::new(
                Code::ContainerUnsupported,
                format!("file is a `{container}` container, which modelvet cannot open to check"),
            )
            .with_hint("unpack it and scan the files inside");
            return Ok(Scanned::new(Format::Unsupported, vec![finding]));
        }
        taken.zip = true;
        if zip::looks_like_zip(source) {
            return self.zip(source, depth);
        }
        taken.tar = true;
        if is_tar(source)? {
            return self.tar(source, depth);
        }
        taken.pickle = true;
        if let Some(scanned) = self.pickle(source)? {
            return Ok(scanned);
        }
        if onnx::looks_like_onnx(head) || has_extension(name, &["onnx"]) {
            if size > self.limits.max_onnx_bytes {
                return Ok(limit_exceeded(
                    Format::Onnx,
                    format!(
                        "model of {size} bytes exceeds the ONNX limit of {}",
                        self.limits.max_onnx_bytes
                    ),
                ));
            }
            // Walked from the source: tensor payloads are skipped by offset.
            let report = onnx::check_source(source)?;
            if report.summary.is_some() || has_extension(name, &["onnx"]) {
                return Ok(Scanned::new(Format::Onnx, report.findings));
            }
        }
        // After ONNX: a `saved_model.pb` starts like a ModelProto too (`08 01 12`).
        if tensorflow::sniff(source).is_some() || has_extension(name, &["pb"]) {
            let report = tensorflow::check_source(source)?;
            return Ok(Scanned::new(Format::Tensorflow, report.findings));
        }
        // Content matched nothing; a name that claims a safe format is held to that claim, so
        // a broken `.safetensors` is refused rather than waved through as unknown bytes.
        if has_extension(name, &["safetensors"]) {
            return self.safetensors(source);
        }
        if has_extension(name, &["gguf"]) {
            return self.gguf(source);
        }
        if has_extension(name, &["npy"]) {
            return self.npy(source);
        }
        self.text_or_unknown(source, name, head)
    }

    /// GGUF metadata sits at the front but its size is only known by parsing it, so the window
    /// grows (1 MiB, 8 MiB, 64 MiB, up to the limit) only while the parser runs out of it:
    /// memory follows the metadata's size, not the model's.
    fn gguf(&mut self, source: &dyn ReadAt) -> io::Result<Scanned> {
        let size = source.size();
        let mut window = size.min(1 << 20);
        loop {
            let report = gguf::check(&source.read_vec(0, window)?, size);
            let ran_out = report
                .findings
                .iter()
                .any(|finding| finding.code == Code::ScanLimitExceeded);
            let next = window
                .saturating_mul(8)
                .min(size)
                .min(self.limits.gguf_window);
            if !ran_out || next <= window {
                return Ok(Scanned::new(Format::Gguf, report.findings));
            }
            window = next;
        }
    }

    fn npy(&mut self, source: &dyn ReadAt) -> io::Result<Scanned> {
        let check = numpy::check(source)?;
        let mut findings = check.findings;
        if let Some(header) = check.header.filter(|header| header.holds_objects) {
            let payload_len = source.size() - header.data_offset;
            let payload = Slice::new(source, header.data_offset, payload_len)?;
            match self.pickle(&payload)? {
                Some(scanned) => findings.extend(
                    scanned
                        .findings
                        .into_iter()
                        .map(|finding| finding.inside(&format!("@{}", header.data_offset))),
                ),
                None => findings.push(
                    Finding::new(
                        Code::NumpyMalformed,
                        "object array payload is not a readable pickle",
                    )
                    .at(format!("@{}", header.data_offset)),
                ),
            }
        }
        Ok(Scanned::new(Format::Npy, findings))
    }

    fn safetensors(&mut self, source: &dyn ReadAt) -> io::Result<Scanned> {
        // Whether a content-sniffing loader (torch.load, np.load, zipfile) sees another format
        // in the same bytes is asked of every file, in `other_readings`.
        let findings = safetensors::check(source)?.findings;
        Ok(Scanned::new(Format::Safetensors, findings))
    }

    /// `None` when a weak magic (zlib) turns out not to be a compressed stream after all.
    fn decompress(
        &mut self,
        source: &dyn ReadAt,
        kind: compressed::Compression,
        depth: u32,
    ) -> io::Result<Option<Scanned>> {
        let format = match kind {
            compressed::Compression::Gzip => Format::Gzip,
            compressed::Compression::Zlib => Format::Zlib,
            compressed::Compression::Bzip2 => Format::Bzip2,
            compressed::Compression::Xz => Format::Xz,
            compressed::Compression::Lzma => Format::Lzma,
            compressed::Compression::JoblibZf => Format::Joblib,
        };
        if let Some(scanned) = self.depth_exceeded(format, depth) {
            return Ok(Some(scanned));
        }
        let size = source.size();
        if size > self.limits.max_inflated {
            return Ok(Some(limit_exceeded(
                format,
                format!(
                    "compressed stream of {size} bytes exceeds the limit of {}",
                    self.limits.max_inflated
                ),
            )));
        }
        // Streamed in, spilled to a temporary file once large: memory stays bounded.
        let inflated = compressed::inflate(kind, source, self.inflate_budget())?;
        if kind == compressed::Compression::Zlib
            && inflated.bytes.size() == 0
            && inflated.finding.is_some()
        {
            return Ok(None);
        }
        self.inflated_total += inflated.bytes.size();
        let member = format!("({})", kind.name());
        let mut findings: Vec<Finding> = inflated.finding.into_iter().collect();
        let inner = self.inspect(&inflated.bytes, "", depth + 1)?;
        findings.extend(
            inner
                .findings
                .into_iter()
                .map(|finding| finding.inside(&member)),
        );
        if kind == compressed::Compression::Gzip {
            // A payload may start in any member of a multi-member gzip file.
            let members = compressed::inflate_gzip_members(source, self.inflate_budget())?;
            if members.len() > 1 {
                for (index, member) in members.iter().enumerate() {
                    let location = format!("(gzip member {})", index + 1);
                    findings.extend(member.finding.clone().map(|f| f.inside(&location)));
                    let inner = self.inspect(&member.bytes, "", depth + 1)?;
                    findings.extend(inner.findings.into_iter().map(|f| f.inside(&location)));
                }
            }
        }
        Ok(Some(Scanned::new(format, findings)))
    }

    fn zip(&mut self, source: &dyn ReadAt, depth: u32) -> io::Result<Scanned> {
        if let Some(scanned) = self.depth_exceeded(Format::Zip, depth) {
            return Ok(scanned);
        }
        let listing = zip::list(source, &self.limits.zip).map_err(io::Error::other)?;
        let mut findings = listing.findings;
        if listing.prefix_len > 0 {
            // Whatever precedes the archive is what a loader reading from byte 0 sees.
            let prefix = Slice::new(source, 0, listing.prefix_len)?;
            let inner = self.inspect(&prefix, "", depth + 1)?;
            findings.extend(inner.findings.into_iter().map(|f| f.inside("(prefix)")));
        }
        let mut member_formats = Vec::with_capacity(listing.members.len());
        let mut config_json = None;
        for member in &listing.members {
            if member.name.ends_with('/') && member.uncompressed_size == 0 {
                continue;
            }
            if let Some(finding) = self.out_of_time() {
                findings.push(finding);
                break;
            }
            let inner = self.zip_member(source, member, depth)?;
            if member.name == "config.json" {
                config_json = Some(member);
            }
            member_formats.push((member.name.as_str(), inner.format));
            findings.extend(inner.findings.into_iter().map(|f| f.inside(&member.name)));
        }

        let any_pickle = member_formats
            .iter()
            .any(|(_, format)| format.carries_pickle());
        let names = || member_formats.iter().map(|(name, _)| *name);
        let format = if any_pickle
            && names().any(|name| name == "data.pkl" || name.ends_with("/data.pkl"))
        {
            Format::TorchZip
        } else if !member_formats.is_empty()
            && member_formats
                .iter()
                .all(|(_, format)| *format == Format::Npy)
        {
            Format::Npz
        } else if config_json.is_some()
            && names().any(|name| name == "metadata.json" || name == "model.weights.h5")
        {
            Format::Keras
        } else {
            Format::Zip
        };
        if format == Format::TorchZip {
            // Tensor storages are raw bytes by design; saying so per member adds only noise to
            // a checkpoint that is rejected for its pickle anyway.
            findings.retain(|finding| finding.code != Code::UnknownFormat);
        }
        // A `config.json` that is JSON was checked as one with the other members; a Keras
        // archive's that is not is refused here.
        let config_is_json = member_formats
            .iter()
            .any(|(name, format)| *name == "config.json" && *format == Format::Json);
        if format == Format::Keras && !config_is_json {
            if let Some(member) = config_json {
                // Not JSON, so the check only has to say why: a bounded prefix tells it.
                let bytes = zip::read_member_prefix(source, member, keras::MAX_CONFIG_BYTES)
                    .map_err(io::Error::other)?;
                findings.extend(
                    keras::check_config(&bytes.bytes)
                        .into_iter()
                        .map(|f| f.inside("config.json")),
                );
            }
        }
        Ok(Scanned::new(format, findings))
    }

    fn zip_member(
        &mut self,
        source: &dyn ReadAt,
        member: &zip::Member,
        depth: u32,
    ) -> io::Result<Scanned> {
        let stored = member.method == zip::Method::Stored;
        if stored && member.compressed_size > self.limits.max_member_read {
            // Large stored members (tensor storages) are scanned in place: only the bytes
            // needed to recognise them are read.
            let window = Slice::new(source, member.data_offset, member.compressed_size)?;
            return self.inspect(&window, &member.name, depth + 1);
        }
        let budget = self.inflate_budget().min(self.limits.max_inflated);
        let read = zip::read_member_spilled(source, member, budget).map_err(io::Error::other)?;
        if !stored {
            self.inflated_total += read.bytes.size();
        }
        let mut findings = read.findings;
        if read.complete || read.bytes.size() > 0 {
            let inner = self.inspect(&read.bytes, &member.name, depth + 1)?;
            findings.extend(inner.findings);
            return Ok(Scanned::new(inner.format, findings));
        }
        Ok(Scanned::new(Format::Unknown, findings))
    }

    fn tar(&mut self, source: &dyn ReadAt, depth: u32) -> io::Result<Scanned> {
        if let Some(scanned) = self.depth_exceeded(Format::Tar, depth) {
            return Ok(scanned);
        }
        let listing = tar::list(source, &self.limits.tar).map_err(io::Error::other)?;
        let mut findings = listing.findings;
        let mut any_pickle = false;
        for member in listing
            .members
            .iter()
            .filter(|m| m.kind == tar::TarKind::File)
        {
            if let Some(finding) = self.out_of_time() {
                findings.push(finding);
                break;
            }
            let window = Slice::new(source, member.data_offset, member.size)?;
            let inner = self.inspect(&window, &member.name, depth + 1)?;
            any_pickle |= inner.format.carries_pickle();
            findings.extend(inner.findings.into_iter().map(|f| f.inside(&member.name)));
        }
        let format = if any_pickle {
            Format::TorchTar
        } else {
            Format::Tar
        };
        Ok(Scanned::new(format, findings))
    }

    /// The bytes read as a pickle from their first byte, as `pickle.load` and `torch.load`
    /// read them, through a bounded buffer and at most `max_pickle_bytes` far.
    /// `None` when no loader would take them for a pickle; printable text whose only pickle
    /// reading imports modules that cannot exist is text.
    fn pickle_reading(&mut self, source: &dyn ReadAt) -> io::Result<Option<PickleReading>> {
        let size = source.size();
        let limits = self.pickle_limits();
        let followed = size.min(self.limits.max_pickle_bytes);
        let analysis = pickle::analyse_source(&Slice::new(source, 0, followed)?, &limits)?;
        let ran_out = matches!(analysis.end, pickle::End::Truncated { .. }) && followed < size;
        if !analysis.is_pickle || (analysis.weak_evidence && text::is_printable(source)?) {
            return Ok(None);
        }
        Ok(Some(PickleReading { analysis, ran_out }))
    }

    /// The pickle reading as the file's primary format.
    fn pickle(&mut self, source: &dyn ReadAt) -> io::Result<Option<Scanned>> {
        let Some(PickleReading { analysis, ran_out }) = self.pickle_reading(source)? else {
            return Ok(None);
        };
        let mut findings = Vec::new();
        findings.push(pickle_format_finding(&analysis));
        findings.extend(analysis.findings);
        if ran_out {
            findings.push(Finding::new(
                Code::PickleLimitExceeded,
                format!(
                    "pickle stream runs past the {} bytes read for analysis",
                    self.limits.max_pickle_bytes
                ),
            ));
        }
        let joblib = analysis
            .globals
            .iter()
            .any(|imported| imported.global.module.starts_with("joblib."));
        let format = if joblib {
            Format::Joblib
        } else {
            Format::Pickle
        };
        Ok(Some(Scanned::new(format, findings)))
    }

    fn text_or_unknown(
        &mut self,
        source: &dyn ReadAt,
        name: &str,
        head: &[u8],
    ) -> io::Result<Scanned> {
        let size = source.size();
        // A file named as a template is checked as one even with control bytes in it (a
        // renderer does not care whether the text is printable).
        let unknown = |source: &dyn ReadAt| -> io::Result<Scanned> {
            let mut findings = vec![Finding::new(
                Code::UnknownFormat,
                "content is not a format modelvet recognises",
            )];
            findings.extend(json::check_text(source, name)?);
            Ok(Scanned::new(Format::Unknown, findings))
        };
        // Cheap rejection first: binary data fails within its first bytes.
        if !text::printable_prefix(head, head.len() as u64 == size)
            || size > self.limits.max_text_bytes
        {
            return unknown(source);
        }
        if !text::is_printable(source)? {
            return unknown(source);
        }
        // Streamed, so that a large tokenizer.json costs no more memory than a small one.
        let reader = io::BufReader::new(source::Reader::new(source));
        if serde_json::from_reader::<_, serde::de::IgnoredAny>(reader).is_ok() {
            return Ok(Scanned::new(Format::Json, json::check(source)?));
        }
        Ok(Scanned::new(Format::Text, json::check_text(source, name)?))
    }

    fn depth_exceeded(&self, format: Format, depth: u32) -> Option<Scanned> {
        (depth >= self.limits.max_depth).then(|| {
            Scanned::new(
                format,
                vec![Finding::new(
                    Code::ArchiveLimitExceeded,
                    format!(
                        "containers nest deeper than {} levels",
                        self.limits.max_depth
                    ),
                )],
            )
        })
    }

    fn out_of_time(&self) -> Option<Finding> {
        (Instant::now() > self.deadline).then(|| {
            Finding::new(
                Code::ScanLimitExceeded,
                format!("scan took longer than {:?}", self.limits.time_per_file),
            )
        })
    }

    fn inflate_budget(&self) -> u64 {
        self.limits
            .max_total_inflated
            .saturating_sub(self.inflated_total)
            .min(self.limits.max_inflated)
    }

    fn pickle_limits(&self) -> pickle::PickleLimits {
        pickle::PickleLimits {
            deadline: Some(self.deadline),
            ..self.limits.pickle.clone()
        }
    }
}

const CONVERT_HINT: &str =
    "convert the weights to safetensors (e.g. `safetensors.torch.save_file`) in a sandbox and scan again";

/// A pickle reading of some bytes, and whether it ran past the bytes read for analysis.
struct PickleReading {
    analysis: pickle::PickleAnalysis,
    ran_out: bool,
}

/// `pickle-format`: what the pickle holds, so that a convertible checkpoint (tensor and array
/// data only) reads differently from an attack, while both are refused.
fn pickle_format_finding(analysis: &pickle::PickleAnalysis) -> Finding {
    let protocol = analysis
        .protocol
        .map_or_else(|| "0 or 1".to_owned(), |p| p.to_string());
    let streams = match analysis.streams {
        0 | 1 => String::new(),
        n => format!(" ({n} streams)"),
    };
    let code_findings = analysis.findings.iter().any(|finding| {
        matches!(
            finding.code,
            Code::PickleDangerousGlobal | Code::PickleExtensionCode
        )
    });
    let holds = if code_findings {
        "that imports code: loading it runs that code"
    } else if analysis.globals.is_empty() {
        "holding plain data only; loading it can still run code, as every pickle can"
    } else {
        "holding tensor and array data only (every import is on the tensor-only allowlist); \
         loading it can still run code, as every pickle can"
    };
    Finding::new(
        Code::PickleFormat,
        format!("Python pickle, protocol {protocol}{streams}, {holds}"),
    )
    .with_hint(CONVERT_HINT)
}

fn limit_exceeded(format: Format, message: String) -> Scanned {
    Scanned::new(format, vec![Finding::new(Code::ScanLimitExceeded, message)])
}

/// Whether `tarfile` reads the source as an archive with something in it. A first block of
/// zeros opens as an *empty* archive, which no loader takes anything from; raw data often
/// starts that way, so it is not called a tar (what follows is still searched as bytes).
fn is_tar(source: &dyn ReadAt) -> io::Result<bool> {
    if !tar::looks_like_tar(source) {
        return Ok(false);
    }
    let first = source.read_vec(0, source.size().min(512))?;
    Ok(!first.iter().all(|byte| *byte == 0))
}

/// File-name extensions that mean a pickle (or a container of one) to the loaders that read
/// them. The one list every command uses.
pub const PICKLE_EXTENSIONS: &[&str] = &[
    "pt", "pth", "pkl", "pickle", "ckpt", "bin", "joblib", "npz", "ts",
];

/// Extensions of the other model formats: an empty file named so is a broken model.
const MODEL_EXTENSIONS: &[&str] = &[
    "safetensors",
    "gguf",
    "onnx",
    "npy",
    "h5",
    "hdf5",
    "keras",
    "pb",
    "tflite",
    "msgpack",
    "mar",
];

/// The model-format extension of `name`, if it has one.
fn model_extension(name: &str) -> Option<String> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    (PICKLE_EXTENSIONS.contains(&ext.as_str()) || MODEL_EXTENSIONS.contains(&ext.as_str()))
        .then_some(ext)
}

fn has_extension(name: &str, extensions: &[&str]) -> bool {
    Path::new(name)
        .extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| extensions.iter().any(|e| ext.eq_ignore_ascii_case(e)))
}

/// Compares a file name's extension with the detected content.
fn extension_mismatch(name: &str, format: Format) -> Option<Finding> {
    let ext = Path::new(name).extension()?.to_str()?.to_ascii_lowercase();
    let fits: &[Format] = match ext.as_str() {
        "safetensors" => &[Format::Safetensors],
        "gguf" => &[Format::Gguf],
        "onnx" => &[Format::Onnx],
        "npy" => &[Format::Npy],
        "npz" => &[Format::Npz, Format::Zip],
        "pt" | "pth" | "ckpt" | "pkl" | "pickle" | "joblib" => &[
            Format::Pickle,
            Format::Joblib,
            Format::TorchZip,
            Format::TorchTar,
            Format::Gzip,
            Format::Zlib,
            Format::Bzip2,
            Format::Xz,
            Format::Lzma,
        ],
        "keras" => &[Format::Keras],
        "h5" | "hdf5" => &[Format::Hdf5],
        "pb" => &[Format::Tensorflow, Format::Onnx],
        "wasm" => &[Format::Wasm],
        "json" => &[Format::Json, Format::Empty],
        "txt" | "md" => &[Format::Text, Format::Json, Format::Empty],
        "zip" => &[Format::Zip, Format::TorchZip, Format::Npz, Format::Keras],
        "tar" => &[Format::Tar, Format::TorchTar],
        "gz" => &[Format::Gzip],
        "bz2" => &[Format::Bzip2],
        "xz" => &[Format::Xz],
        "lzma" => &[Format::Lzma],
        _ => return None,
    };
    (!fits.contains(&format)).then(|| {
        Finding::new(
            Code::ExtensionMismatch,
            format!(
                "name ends in `.{}` but the content is {format}",
                quote(&ext)
            ),
        )
        .with_severity(Severity::Info)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_json_is_parsed_as_a_stream() {
        let json = format!("{{\"vocab\": [{}\"end\"]}}", "\"token\", ".repeat(300_000));
        let scanned = scan_source(
            &json.into_bytes(),
            "tokenizer.json",
            &ScanOptions::default(),
        )
        .unwrap();
        assert_eq!(scanned.format, Format::Json);
    }
}
