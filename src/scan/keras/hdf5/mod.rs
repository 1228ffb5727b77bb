//! A bounded reader of the one part of an HDF5 file that Keras's legacy `.h5` format puts code
//! in: the attributes of the root group.
//!
//! It finds the superblock (versions 0-3, at offset 0 or any power of two from 512, as libhdf5
//! searches), reads the root group's object header (version 1 or 2, following continuation
//! blocks) and returns its attributes, both the compact ones stored in the header and the dense
//! ones stored in a fractal heap indexed by a version 2 B-tree (`dense`). String values are
//! decoded whether fixed-length or variable-length (held in the global heap); other values are
//! returned as raw bytes. Everything is read through [`ReadAt`] with checked offsets and caps
//! on every size, count and depth, so memory follows the attributes asked for, not the file.
//! Datasets, groups below the root and checksums are never looked at: a file whose root group
//! uses a feature this reader does not implement (filtered heaps, shared messages, committed
//! datatypes) is an [`Error::Unsupported`], never a partial answer. Deciding what a Keras
//! config means is `keras`'s job; this module only reads structure.

mod dense;
mod header;

use std::collections::HashMap;
use std::io;

use crate::scan::source::ReadAt;

pub use header::Shape;

/// The eight bytes that open an HDF5 superblock.
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Largest value read for one attribute (a Keras `model_config` of a big model is a few MB).
pub const MAX_VALUE: u64 = 64 << 20;

/// Largest object header (all chunks together) of the root group.
const MAX_HEADER_BYTES: u64 = 16 << 20;
/// Most header messages and continuation chunks followed.
const MAX_MESSAGES: usize = 65_536;
const MAX_CHUNKS: usize = 1_024;
/// Most attributes on the root group, compact and dense together.
const MAX_ATTRIBUTES: usize = 65_536;
/// Most positioned reads in one run, a bound on time whatever the structure.
const MAX_READS: u64 = 1_000_000;
/// Largest single metadata read (heap blocks, B-tree nodes, chunks).
const MAX_READ: u64 = 16 << 20;
/// Most bytes read in one run, and most bytes of values kept (duplicate attributes could
/// otherwise point at the same large region again and again).
const MAX_TOTAL_READ: u64 = 1 << 30;
const MAX_TOTAL_VALUES: u64 = 256 << 20;
/// Most variable-length string elements decoded for one file.
const MAX_VLEN_ITEMS: u64 = 1 << 20;

/// Why the root attributes could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source failed to read (not the file's fault).
    #[error("cannot read the file")]
    Io(#[from] io::Error),
    /// No superblock signature at any offset libhdf5 looks at.
    #[error("no HDF5 superblock signature at offset 0 or any power of two from 512")]
    NoSuperblock,
    /// The structure is inconsistent, truncated or points outside the file.
    #[error("malformed HDF5 {what} at byte {at}")]
    Malformed { what: String, at: u64 },
    /// A valid HDF5 feature this reader does not implement.
    #[error("unsupported HDF5 feature: {what}")]
    Unsupported { what: String },
    /// A bound on sizes, counts, depth or work was reached.
    #[error("HDF5 structure exceeds a bound: {what}")]
    Limit { what: String },
}

/// One attribute of the root group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name as stored (HDF5 names are byte strings, normally UTF-8).
    pub name: Vec<u8>,
    /// How the attribute was stored: in the object header, or in dense storage.
    pub storage: Storage,
    /// The HDF5 datatype class (0 fixed-point, 1 float, 3 string, 9 variable-length...).
    pub class: u8,
    /// Bytes per element as stored (for a variable-length string, the heap reference size).
    pub element_size: u32,
    pub shape: Shape,
    /// The value, when it was asked for (`None` for attributes not asked for).
    pub value: Option<Value>,
}

/// Where an attribute message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Compact,
    Dense,
}

/// The value of an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Fixed-length strings: each element's bytes, trailing NUL padding removed (as h5py and
    /// NumPy return them).
    Fixed(Vec<Vec<u8>>),
    /// Variable-length strings from the global heap, exactly as stored.
    Variable(Vec<Vec<u8>>),
    /// Any other datatype: the raw element bytes in file order.
    Raw(Vec<u8>),
}

/// The offset of the first superblock signature, searched where libhdf5 searches: 0, 512,
/// 1024, 2048... up to the end of the file.
pub fn find_superblock(source: &dyn ReadAt) -> io::Result<Option<u64>> {
    let size = source.size();
    let mut at = 0u64;
    loop {
        if at.checked_add(8).is_none_or(|end| end > size) {
            return Ok(None);
        }
        let mut magic = [0u8; 8];
        source.read_exact_at(&mut magic, at)?;
        if &magic == SIGNATURE {
            return Ok(Some(at));
        }
        at = match at {
            0 => 512,
            n => match n.checked_mul(2) {
                Some(next) => next,
                None => return Ok(None),
            },
        };
    }
}

/// Reads every attribute of the root group. Values are read only for the names `want`
/// accepts, so a file with large unrelated attributes costs no memory for them.
pub fn root_attributes(
    source: &dyn ReadAt,
    want: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<Attribute>, Error> {
    let at = find_superblock(source)?.ok_or(Error::NoSuperblock)?;
    let file = File::open(source, at)?;
    let messages = header::read(&file, file.root)?;
    let mut attributes = Vec::new();
    for body in &messages.attributes {
        let span = Span::Memory(body.as_slice());
        attributes.push(header::attribute(&file, &span, Storage::Compact, want)?);
    }
    if let Some(info) = messages.attribute_info {
        dense::attributes(&file, &info, want, &mut attributes)?;
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(limit("attribute count"));
    }
    Ok(attributes)
}

/// A global heap collection's objects: index -> (address, size).
type Collection = HashMap<u16, (u64, u64)>;

/// An open HDF5 file: the source, where its addresses start and how wide they are.
pub(crate) struct File<'a> {
    source: &'a dyn ReadAt,
    /// Absolute position of the superblock; every file address is relative to it.
    base: u64,
    /// Size of offsets (addresses) and of lengths, in bytes.
    offsets: u8,
    lengths: u8,
    /// The root group's object header address.
    root: u64,
    reads: std::cell::Cell<u64>,
    bytes_read: std::cell::Cell<u64>,
    values: std::cell::Cell<u64>,
    /// Global heap collections already indexed: object index -> (address, size).
    collections: std::cell::RefCell<HashMap<u64, Collection>>,
}

impl<'a> File<'a> {
    fn open(source: &'a dyn ReadAt, base: u64) -> Result<Self, Error> {
        let size = source.size();
        let len = size.saturating_sub(base).min(256);
        let head = source.read_vec(base, len)?;
        let mut cur = Cursor::new(&head, base);
        cur.skip(8)?;
        let version = cur.u8()?;
        let mut file = File {
            source,
            base,
            offsets: 8,
            lengths: 8,
            root: 0,
            reads: std::cell::Cell::new(0),
            bytes_read: std::cell::Cell::new(0),
            values: std::cell::Cell::new(0),
            collections: std::cell::RefCell::new(HashMap::new()),
        };
        let (offsets, lengths) = match version {
            0 | 1 => {
                // Free-space, root group and shared-header versions, one reserved byte.
                cur.skip(4)?;
                let sizes = (cur.u8()?, cur.u8()?);
                // Reserved, group leaf/internal K, consistency flags, and in version 1 the
                // indexed-storage K and two reserved bytes.
                cur.skip(if version == 1 { 13 } else { 9 })?;
                sizes
            }
            2 | 3 => {
                let sizes = (cur.u8()?, cur.u8()?);
                cur.skip(1)?;
                sizes
            }
            other => return Err(unsupported(format!("superblock version {other}"))),
        };
        let sizes = format!("size of offsets {offsets} / size of lengths {lengths}");
        match (offsets, lengths) {
            (2 | 4 | 8, 2 | 4 | 8) => {}
            // Valid HDF5, but wider than any address this reader (or a real file) needs.
            (2 | 4 | 8 | 16, 2 | 4 | 8 | 16) => return Err(unsupported(sizes)),
            _ => return Err(malformed(&format!("superblock ({sizes})"), base)),
        }
        file.offsets = offsets;
        file.lengths = lengths;
        // Base address, then (v0/1) free-space info, end of file, driver info and the root
        // group symbol table entry, or (v2/3) extension, end of file and root header address.
        // libhdf5 replaces the stored base by where it found the superblock.
        cur.uint(offsets)?;
        let root = if version < 2 {
            cur.skip(usize::from(offsets) * 3)?;
            // Symbol table entry: link name offset, then the object header address.
            cur.uint(offsets)?;
            cur.uint(offsets)?
        } else {
            cur.skip(usize::from(offsets) * 2)?;
            cur.uint(offsets)?
        };
        if file.is_undefined(root) {
            return Err(malformed("superblock root group address", base));
        }
        file.root = root;
        Ok(file)
    }

    /// Whether an address is the "undefined" value (all bits set at the file's offset size).
    fn is_undefined(&self, address: u64) -> bool {
        let bits = u32::from(self.offsets) * 8;
        address == u64::MAX >> (64 - bits)
    }

    /// Reads `len` bytes at a file address (relative to the superblock).
    fn read(&self, address: u64, len: u64, what: &str) -> Result<Vec<u8>, Error> {
        let at = self.absolute(address, len, what)?;
        if len > MAX_READ.max(MAX_VALUE) {
            return Err(limit(what));
        }
        let total = self.bytes_read.get().saturating_add(len);
        self.bytes_read.set(total);
        if total > MAX_TOTAL_READ {
            return Err(limit("bytes read"));
        }
        Ok(self.source.read_vec(at, len)?)
    }

    /// Accounts for `len` bytes of attribute values kept in memory.
    fn keep(&self, len: u64) -> Result<(), Error> {
        let total = self.values.get().saturating_add(len);
        self.values.set(total);
        if total > MAX_TOTAL_VALUES {
            return Err(limit("total size of attribute values"));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at a file address, fewer if the file ends first.
    fn read_upto(&self, address: u64, len: u64, what: &str) -> Result<Vec<u8>, Error> {
        let at = self.absolute(address, 0, what)?;
        let len = len.min(self.source.size().saturating_sub(at));
        self.read(address, len, what)
    }

    fn absolute(&self, address: u64, len: u64, what: &str) -> Result<u64, Error> {
        let reads = self.reads.get().saturating_add(1);
        self.reads.set(reads);
        if reads > MAX_READS {
            return Err(limit("number of reads"));
        }
        let at = self
            .base
            .checked_add(address)
            .filter(|at| {
                at.checked_add(len)
                    .is_some_and(|end| end <= self.source.size())
            })
            .ok_or_else(|| malformed(&format!("{what} (address {address} past the end)"), 0))?;
        Ok(at)
    }

    /// A variable-length object from the global heap: collection address and object index.
    fn global_object(&self, collection: u64, index: u16) -> Result<(u64, u64), Error> {
        if let Some(found) = self
            .collections
            .borrow()
            .get(&collection)
            .map(|objects| objects.get(&index).copied())
        {
            return found.ok_or_else(|| malformed("global heap object index", collection));
        }
        let objects = self.index_collection(collection)?;
        let found = objects.get(&index).copied();
        let mut cache = self.collections.borrow_mut();
        if cache.len() < 256 {
            cache.insert(collection, objects);
        }
        found.ok_or_else(|| malformed("global heap object index", collection))
    }

    fn index_collection(&self, collection: u64) -> Result<Collection, Error> {
        let lengths = u64::from(self.lengths);
        let head = self.read(collection, 8 + lengths, "global heap collection")?;
        let mut cur = Cursor::new(&head, collection);
        if cur.bytes(4)? != b"GCOL" || cur.u8()? != 1 {
            return Err(malformed("global heap collection signature", collection));
        }
        cur.skip(3)?;
        let size = cur.uint(self.lengths)?;
        let object_header = 8 + lengths;
        let mut objects = HashMap::new();
        let mut pos = 8 + lengths;
        while pos
            .checked_add(object_header)
            .is_some_and(|end| end <= size)
        {
            let at = collection
                .checked_add(pos)
                .ok_or_else(|| malformed("global heap object", collection))?;
            let head = self.read(at, object_header, "global heap object")?;
            let mut cur = Cursor::new(&head, at);
            let index = cur.u16()?;
            cur.skip(6)?;
            let len = cur.uint(self.lengths)?;
            if index == 0 {
                // The free-space object ends the collection's objects.
                break;
            }
            let data = pos + object_header;
            let end = data
                .checked_add(len)
                .filter(|end| *end <= size)
                .ok_or_else(|| malformed("global heap object size", at))?;
            if objects.len() >= 65_536 {
                return Err(limit("global heap objects"));
            }
            objects.entry(index).or_insert((collection + data, len));
            // Objects are padded to a multiple of eight bytes.
            pos = end
                .checked_add(7)
                .map(|end| end & !7)
                .ok_or_else(|| malformed("global heap object size", at))?;
        }
        Ok(objects)
    }
}

/// The bytes of one attribute message: in memory (compact storage, tiny heap objects) or a
/// range of the file (dense storage), read only as far as needed.
pub(crate) enum Span<'b> {
    Memory(&'b [u8]),
    File { address: u64, len: u64 },
}

impl Span<'_> {
    fn len(&self) -> u64 {
        match self {
            Span::Memory(bytes) => bytes.len() as u64,
            Span::File { len, .. } => *len,
        }
    }

    /// `len` bytes from `offset` within the span (the caller has bounded `len`).
    fn read(&self, file: &File<'_>, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
        let end = offset
            .checked_add(len)
            .filter(|end| *end <= self.len())
            .ok_or_else(|| malformed("attribute message (value past its end)", offset))?;
        match self {
            Span::Memory(bytes) => {
                let start = usize::try_from(offset).map_err(|_| limit("attribute size"))?;
                let end = usize::try_from(end).map_err(|_| limit("attribute size"))?;
                bytes
                    .get(start..end)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| malformed("attribute message", offset))
            }
            Span::File { address, .. } => {
                let at = address
                    .checked_add(offset)
                    .ok_or_else(|| malformed("attribute address", *address))?;
                file.read(at, len, "attribute message")
            }
        }
    }
}

/// A little-endian reader over bytes read from `origin`, for error positions.
pub(crate) struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
    origin: u64,
}

impl<'b> Cursor<'b> {
    pub(crate) fn new(bytes: &'b [u8], origin: u64) -> Self {
        Cursor {
            bytes,
            pos: 0,
            origin,
        }
    }

    pub(crate) fn at(&self) -> u64 {
        self.origin.saturating_add(self.pos as u64)
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'b [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| malformed("structure (length overflow)", self.at()))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| malformed("structure (truncated)", self.at()))?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.bytes(n).map(|_| ())
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.uint(1)? as u8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        Ok(self.uint(2)? as u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        Ok(self.uint(4)? as u32)
    }

    /// An unsigned little-endian integer of `n` bytes (at most eight).
    pub(crate) fn uint(&mut self, n: u8) -> Result<u64, Error> {
        if n > 8 {
            return Err(unsupported(format!("{n}-byte integer")));
        }
        let bytes = self.bytes(usize::from(n))?;
        Ok(le(bytes))
    }
}

/// A little-endian unsigned integer of up to eight bytes.
pub(crate) fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte))
}

pub(crate) fn malformed(what: &str, at: u64) -> Error {
    Error::Malformed {
        what: what.to_owned(),
        at,
    }
}

pub(crate) fn unsupported(what: impl Into<String>) -> Error {
    Error::Unsupported { what: what.into() }
}

pub(crate) fn limit(what: &str) -> Error {
    Error::Limit {
        what: what.to_owned(),
    }
}

#[cfg(test)]
mod tests;
