//! Every reading of every file: the sniffed format is one reading among those a loader may
//! take, never the last word.
//!
//! `torch.load`, `pickle.load`, `joblib.load` and `np.load(allow_pickle=True)` read a pickle
//! from the first byte whatever the file claims to be; Keras, `np.load` and `torch.load` find
//! a zip by its end-of-central-directory record wherever the archive starts; legacy
//! `torch.load` opens a tar with Python's `tarfile`. Once the dispatcher has the primary
//! reading, this module asks the others of the same bytes and reports a second reading that
//! could run code as a polyglot. An opaque binary file is also searched for pickle imports
//! at any offset. This module owns that question only; each reading is parsed by its own module.

use std::io;

use super::source::{ReadAt, Slice};
use super::{pickle, zip, Format, Inspector, Scanned};
use crate::finding::{quote, Code, Finding};

/// The readings the primary one already covered, so they are not taken twice.
#[derive(Debug, Default)]
pub(super) struct Taken {
    pub(super) zip: bool,
    pub(super) tar: bool,
    pub(super) pickle: bool,
}

/// Window of the search for embedded pickle imports; windows overlap by more than the longest
/// import the search recognises.
const EMBEDDED_WINDOW: u64 = 8 << 20;
const EMBEDDED_OVERLAP: u64 = 4 << 10;

impl Inspector<'_> {
    pub(super) fn other_readings(
        &mut self,
        source: &dyn ReadAt,
        depth: u32,
        taken: &Taken,
        scanned: &mut Scanned,
    ) -> io::Result<()> {
        let format = scanned.format;
        if !taken.pickle && !format.carries_pickle() {
            self.pickle_from_the_first_byte(source, format, scanned)?;
        }
        let zip_family = matches!(
            format,
            Format::Zip | Format::TorchZip | Format::Npz | Format::Keras
        );
        // An end-of-central-directory signature in opaque bytes is a zip only if a directory
        // with members stands behind it: otherwise zipfile raises BadZipFile.
        if !taken.zip
            && !zip_family
            && zip::looks_like_zip(source)
            && zip::list(source, &self.limits.zip).is_ok_and(|listing| !listing.members.is_empty())
        {
            let zipped = self.zip(source, depth)?;
            let message = format!(
                "file is {format} and also a {} archive found from its end, as Keras, np.load \
                 and torch.load find it",
                zipped.format
            );
            polyglot(scanned, message, zipped, "(zip)");
        }
        if !taken.tar && !matches!(format, Format::Tar | Format::TorchTar) && super::is_tar(source)?
        {
            let tarred = self.tar(source, depth)?;
            let message = format!(
                "file is {format} and also a {} archive, as Python's tarfile (legacy torch.load) \
                 reads it",
                tarred.format
            );
            polyglot(scanned, message, tarred, "(tar)");
        }
        // Opaque top-level files only: members of archives are read by their loaders from
        // their start (done above), and a tensor storage is not searched byte by byte.
        if depth == 0 && format == Format::Unknown {
            self.embedded_pickles(source, scanned)?;
        }
        Ok(())
    }

    /// The pickle a content-sniffing loader reads from byte 0 of a file sniffed as something
    /// else: harmless when it imports nothing outside the tensor-only allowlist.
    fn pickle_from_the_first_byte(
        &mut self,
        source: &dyn ReadAt,
        format: Format,
        scanned: &mut Scanned,
    ) -> io::Result<()> {
        let Some(reading) = self.pickle_reading(source)? else {
            return Ok(());
        };
        let code: Vec<Finding> = reading
            .analysis
            .findings
            .into_iter()
            .filter(|finding| {
                matches!(
                    finding.code,
                    Code::PickleDangerousGlobal | Code::PickleExtensionCode
                )
            })
            .collect();
        if code.is_empty() {
            return Ok(());
        }
        let named: Vec<String> = code
            .iter()
            .filter_map(|finding| finding.global.as_deref())
            .take(3)
            .map(|global| format!("`{}`", quote(global)))
            .collect();
        scanned.findings.push(
            Finding::new(
                Code::PolyglotFile,
                format!(
                    "file is {format} and also a pickle that imports {} when read from its first \
                     byte (pickle.load, torch.load, joblib.load)",
                    named.join(", ")
                ),
            )
            .at("@0"),
        );
        scanned
            .findings
            .extend(code.into_iter().map(|f| f.inside("(pickle)")));
        Ok(())
    }

    /// Opaque binary data searched at every offset for the imports a pickle stream embedded
    /// in it would make, window by window so memory stays bounded.
    fn embedded_pickles(&mut self, source: &dyn ReadAt, scanned: &mut Scanned) -> io::Result<()> {
        let size = source.size();
        let limits = self.pickle_limits();
        let mut offset = 0u64;
        let mut seen = std::collections::HashSet::new();
        while offset < size {
            if let Some(finding) = self.out_of_time() {
                scanned.findings.push(finding);
                break;
            }
            let len = EMBEDDED_WINDOW.min(size - offset);
            let window = Slice::new(source, offset, len)?;
            let bytes = window.read_vec(0, len)?;
            // Every import needs a newline (GLOBAL, INST) or a STACK_GLOBAL byte.
            let imports = if memchr::memchr2(b'\n', 0x93, &bytes).is_some() {
                pickle::embedded_imports(&bytes, &limits)
            } else {
                Vec::new()
            };
            for imported in imports {
                let at = offset.saturating_add(imported.offset);
                let written = imported.global.written();
                if imported.class == pickle::GlobalClass::Dangerous && seen.insert(written.clone())
                {
                    scanned.findings.push(
                        Finding::new(
                            Code::PickleEmbedded,
                            format!(
                                "bytes at @{at} are a pickle `{}` importing `{}`, which a loader \
                                 reading from there would run",
                                imported.opcode,
                                quote(&written)
                            ),
                        )
                        .with_global(written)
                        .at(format!("@{at}")),
                    );
                }
            }
            if offset.saturating_add(len) >= size {
                break;
            }
            offset = offset.saturating_add(len.saturating_sub(EMBEDDED_OVERLAP).max(1));
        }
        Ok(())
    }
}

/// A second reading of the same bytes: the polyglot finding, then what that reading found.
fn polyglot(scanned: &mut Scanned, message: String, second: Scanned, reading: &str) {
    scanned
        .findings
        .push(Finding::new(Code::PolyglotFile, message));
    scanned
        .findings
        .extend(second.findings.into_iter().map(|f| f.inside(reading)));
}
