//! Dense attribute storage: the attribute messages live in a fractal heap, indexed by name in
//! a version 2 B-tree. Every record of the name index is visited and its heap object resolved
//! (managed objects by walking the doubling table, huge objects through the heap's own B-tree,
//! tiny objects inline in the heap ID).

use super::header::{self, AttributeInfo};
use super::{
    le, limit, malformed, unsupported, Attribute, Cursor, Error, File, Span, Storage,
    MAX_ATTRIBUTES, MAX_READ,
};

/// B-tree record types: huge fractal heap objects (not filtered, indirectly addressed) and
/// the attribute name index.
const BTREE_HUGE: u8 = 1;
const BTREE_ATTRIBUTE_NAMES: u8 = 8;
/// Deepest B-tree and fractal heap indirect block nesting followed.
const MAX_DEPTH: u16 = 32;

/// Appends the dense attributes described by an attribute info message.
pub(super) fn attributes(
    file: &File<'_>,
    info: &AttributeInfo,
    want: &dyn Fn(&[u8]) -> bool,
    out: &mut Vec<Attribute>,
) -> Result<(), Error> {
    if file.is_undefined(info.heap) {
        // No dense storage was ever created (libver='latest' writes the message anyway).
        return Ok(());
    }
    if file.is_undefined(info.name_index) {
        return Err(malformed(
            "attribute info (heap without name index)",
            info.at,
        ));
    }
    let heap = Heap::open(file, info.heap)?;
    let records = btree_records(file, info.name_index, BTREE_ATTRIBUTE_NAMES)?;
    for record in records {
        // Heap ID (8 bytes), message flags, creation order, name hash.
        let mut cur = Cursor::new(&record, info.name_index);
        let id = cur.bytes(8)?;
        let flags = cur.u8()?;
        if flags & 0x02 != 0 {
            return Err(unsupported("dense attribute stored as a shared message"));
        }
        let span = heap.object(file, id)?;
        out.push(header::attribute(file, &span, Storage::Dense, want)?);
        if out.len() > MAX_ATTRIBUTES {
            return Err(limit("attribute count"));
        }
    }
    Ok(())
}

/// The parts of a fractal heap header needed to find objects.
struct Heap {
    at: u64,
    id_len: u16,
    huge_btree: u64,
    table_width: u64,
    start_block: u64,
    max_direct: u64,
    /// Rows of the doubling table that hold direct blocks.
    direct_rows: u64,
    /// Bytes of a heap offset (block offsets, managed object offsets) and of a managed length.
    offset_size: u8,
    length_size: u8,
    root: u64,
    root_rows: u64,
    checksummed: bool,
}

impl Heap {
    fn open(file: &File<'_>, at: u64) -> Result<Self, Error> {
        let head = file.read_upto(at, 256, "fractal heap header")?;
        let mut cur = Cursor::new(&head, at);
        if cur.bytes(4)? != b"FRHP" || cur.u8()? != 0 {
            return Err(malformed("fractal heap signature", at));
        }
        let id_len = cur.u16()?;
        let filters = cur.u16()?;
        if filters != 0 {
            return Err(unsupported("fractal heap with I/O filters"));
        }
        let flags = cur.u8()?;
        let max_managed = cur.u32()?;
        cur.uint(file.lengths)?; // next huge object ID
        let huge_btree = cur.uint(file.offsets)?;
        cur.uint(file.lengths)?; // free space in managed blocks
        cur.uint(file.offsets)?; // free-space manager
        for _ in 0..8 {
            // Managed space, allocated space, iterator offset, managed/huge/tiny sizes and
            // counts: statistics, not needed to find an object.
            cur.uint(file.lengths)?;
        }
        let table_width = u64::from(cur.u16()?);
        let start_block = cur.uint(file.lengths)?;
        let max_direct = cur.uint(file.lengths)?;
        let max_heap_bits = cur.u16()?;
        let _start_rows = cur.u16()?;
        let root = cur.uint(file.offsets)?;
        let root_rows = u64::from(cur.u16()?);
        let pow2 = |n: u64| n != 0 && n.is_power_of_two();
        if !pow2(table_width) || !pow2(start_block) || !pow2(max_direct) || max_direct < start_block
        {
            return Err(malformed("fractal heap doubling table", at));
        }
        if max_direct > MAX_READ || !(1..=64).contains(&max_heap_bits) || root_rows > 64 {
            return Err(limit("fractal heap geometry"));
        }
        let direct_rows = u64::from(max_direct.ilog2()) - u64::from(start_block.ilog2()) + 2;
        let offset_size = u8::try_from(max_heap_bits.div_ceil(8))
            .map_err(|_| malformed("fractal heap size", at))?;
        // libhdf5: the smaller of the bytes for an offset within the largest direct block and
        // the bytes needed to encode the largest managed object size.
        let direct_bytes = max_direct.ilog2().div_ceil(8);
        let managed_bytes = u64::from(u64::from(max_managed).checked_ilog2().unwrap_or(0) / 8 + 1);
        let length_size = u8::try_from(u64::from(direct_bytes).min(managed_bytes))
            .map_err(|_| malformed("fractal heap size", at))?;
        Ok(Heap {
            at,
            id_len,
            huge_btree,
            table_width,
            start_block,
            max_direct,
            direct_rows,
            offset_size,
            length_size,
            root,
            root_rows,
            checksummed: flags & 0x02 != 0,
        })
    }

    /// Where the object a heap ID names is.
    fn object<'i>(&self, file: &File<'_>, id: &'i [u8]) -> Result<Span<'i>, Error> {
        let mut cur = Cursor::new(id, self.at);
        let first = cur.u8()?;
        if first & 0xC0 != 0 {
            return Err(malformed("fractal heap ID version", self.at));
        }
        match (first >> 4) & 0x03 {
            0 => {
                let offset = cur.uint(self.offset_size)?;
                let len = cur.uint(self.length_size)?;
                self.managed(file, offset, len)
            }
            1 => self.huge(file, id),
            2 => {
                // Tiny objects hold their bytes in the ID itself.
                let (len, start) = if self.id_len <= 18 {
                    (usize::from(first & 0x0F) + 1, 1)
                } else {
                    let low = id.get(1).copied().unwrap_or_default();
                    ((usize::from(first & 0x0F) << 8 | usize::from(low)) + 1, 2)
                };
                let bytes = id
                    .get(start..start + len)
                    .ok_or_else(|| malformed("tiny fractal heap object", self.at))?;
                Ok(Span::Memory(bytes))
            }
            _ => Err(malformed("fractal heap ID type", self.at)),
        }
    }

    /// A managed object: find the direct block holding heap offset `offset`.
    fn managed<'i>(&self, file: &File<'_>, offset: u64, len: u64) -> Result<Span<'i>, Error> {
        if file.is_undefined(self.root) {
            return Err(malformed("fractal heap (object in an empty heap)", self.at));
        }
        let (mut block, mut rows, mut base) = (self.root, self.root_rows, 0u64);
        if rows == 0 {
            return self.in_direct(file, block, self.start_block, offset, len);
        }
        for _ in 0..MAX_DEPTH {
            let head_len = 4 + 1 + u64::from(file.offsets) + u64::from(self.offset_size);
            let sig = file.read(block, 4, "fractal heap indirect block")?;
            if sig != b"FHIB" {
                return Err(malformed("fractal heap indirect block signature", block));
            }
            let rel = offset
                .checked_sub(base)
                .ok_or_else(|| malformed("fractal heap offset", block))?;
            let (row, col, block_size, start) = self.locate(rel, rows, block)?;
            let entry = row
                .checked_mul(self.table_width)
                .and_then(|i| i.checked_add(col))
                .and_then(|i| i.checked_mul(u64::from(file.offsets)))
                .and_then(|i| i.checked_add(head_len))
                .and_then(|i| block.checked_add(i))
                .ok_or_else(|| malformed("fractal heap indirect block entry", block))?;
            let bytes = file.read(entry, u64::from(file.offsets), "fractal heap block address")?;
            let child = le(&bytes);
            if file.is_undefined(child) {
                return Err(malformed(
                    "fractal heap (object in an unallocated block)",
                    block,
                ));
            }
            let within = rel - start;
            if row < self.direct_rows {
                return self.in_direct(file, child, block_size, within, len);
            }
            // A child indirect block covers `block_size` bytes with rows of its own.
            let unit = self
                .start_block
                .checked_mul(self.table_width)
                .ok_or_else(|| malformed("fractal heap geometry", self.at))?;
            rows = u64::from(block_size.ilog2())
                .checked_sub(u64::from(unit.ilog2()))
                .map(|r| r + 1)
                .ok_or_else(|| malformed("fractal heap indirect block size", child))?;
            base = base
                .checked_add(start)
                .ok_or_else(|| malformed("fractal heap offset", child))?;
            block = child;
        }
        Err(limit("fractal heap depth"))
    }

    /// Row, column, block size and start offset (relative to the indirect block) of the block
    /// holding relative offset `rel`.
    fn locate(&self, rel: u64, rows: u64, at: u64) -> Result<(u64, u64, u64, u64), Error> {
        let bad = || malformed("fractal heap offset (outside its indirect block)", at);
        let mut row_start = 0u64;
        for row in 0..rows.min(64) {
            let size = if row < 2 {
                self.start_block
            } else {
                self.start_block
                    .checked_shl((row - 1) as u32)
                    .ok_or_else(bad)?
            };
            let span = size.checked_mul(self.table_width).ok_or_else(bad)?;
            let row_end = row_start.checked_add(span).ok_or_else(bad)?;
            if rel < row_end {
                let col = (rel - row_start) / size;
                return Ok((row, col, size, row_start + col * size));
            }
            row_start = row_end;
        }
        Err(bad())
    }

    /// An object `within` bytes into the direct block at `block` (offsets count from the
    /// block's start, header included).
    fn in_direct<'i>(
        &self,
        file: &File<'_>,
        block: u64,
        size: u64,
        within: u64,
        len: u64,
    ) -> Result<Span<'i>, Error> {
        let sig = file.read(block, 4, "fractal heap direct block")?;
        if sig != b"FHDB" {
            return Err(malformed("fractal heap direct block signature", block));
        }
        let header = 4
            + 1
            + u64::from(file.offsets)
            + u64::from(self.offset_size)
            + if self.checksummed { 4 } else { 0 };
        let end = within.checked_add(len);
        if within < header || end.is_none_or(|end| end > size) || size > self.max_direct {
            return Err(malformed(
                "fractal heap object (outside its direct block)",
                block,
            ));
        }
        let address = block
            .checked_add(within)
            .ok_or_else(|| malformed("fractal heap object address", block))?;
        Ok(Span::File { address, len })
    }

    /// A huge object: its ID is a key into the heap's huge-object B-tree.
    fn huge<'i>(&self, file: &File<'_>, id: &[u8]) -> Result<Span<'i>, Error> {
        let direct = u64::from(file.offsets) + u64::from(file.lengths);
        if u64::from(self.id_len.saturating_sub(1)) >= direct {
            // Large IDs hold the address and length themselves.
            let mut cur = Cursor::new(id, self.at);
            cur.skip(1)?;
            let address = cur.uint(file.offsets)?;
            let len = cur.uint(file.lengths)?;
            return Ok(Span::File { address, len });
        }
        if file.is_undefined(self.huge_btree) {
            return Err(malformed(
                "fractal heap (huge object without a B-tree)",
                self.at,
            ));
        }
        let key_len = usize::from(self.id_len.saturating_sub(1)).min(8);
        let key = le(id.get(1..1 + key_len).unwrap_or_default());
        for record in btree_records(file, self.huge_btree, BTREE_HUGE)? {
            let mut cur = Cursor::new(&record, self.huge_btree);
            let address = cur.uint(file.offsets)?;
            let len = cur.uint(file.lengths)?;
            if cur.uint(file.lengths)? == key {
                return Ok(Span::File { address, len });
            }
        }
        Err(malformed(
            "fractal heap (huge object ID not in its B-tree)",
            self.at,
        ))
    }
}

/// Every record of a version 2 B-tree of the given type, leaves and internal nodes alike.
fn btree_records(file: &File<'_>, at: u64, kind: u8) -> Result<Vec<Vec<u8>>, Error> {
    let head = file.read_upto(at, 64, "B-tree header")?;
    let mut cur = Cursor::new(&head, at);
    if cur.bytes(4)? != b"BTHD" || cur.u8()? != 0 {
        return Err(malformed("B-tree header signature", at));
    }
    if cur.u8()? != kind {
        return Err(malformed(&format!("B-tree type (expected {kind})"), at));
    }
    let node_size = u64::from(cur.u32()?);
    let record_size = u64::from(cur.u16()?);
    let depth = cur.u16()?;
    cur.skip(2)?;
    let root = cur.uint(file.offsets)?;
    let root_records = u64::from(cur.u16()?);
    let total = cur.uint(file.lengths)?;
    if depth > MAX_DEPTH || node_size > MAX_READ {
        return Err(limit("B-tree geometry"));
    }
    // Each record type has one size: heap ID, flags, creation order and name hash for the
    // name index; address, length and ID for huge objects.
    let expected = match kind {
        BTREE_ATTRIBUTE_NAMES => 8 + 1 + 4 + 4,
        _ => u64::from(file.offsets) + 2 * u64::from(file.lengths),
    };
    if record_size != expected {
        return Err(malformed(&format!("B-tree record size {record_size}"), at));
    }
    if total > MAX_ATTRIBUTES as u64 {
        return Err(limit("B-tree records"));
    }
    if file.is_undefined(root) {
        return Ok(Vec::new());
    }
    let geometry = Geometry::new(node_size, record_size, depth, file.offsets)
        .ok_or_else(|| malformed("B-tree node size", at))?;
    let mut out = Vec::new();
    let mut stack = vec![(root, depth, root_records)];
    while let Some((node, level, records)) = stack.pop() {
        if out.len() as u64 > total {
            return Err(malformed("B-tree (more records than its header says)", at));
        }
        let bytes = file.read(node, node_size, "B-tree node")?;
        let mut cur = Cursor::new(&bytes, node);
        let sig = cur.bytes(4)?;
        let expected: &[u8] = if level == 0 { b"BTLF" } else { b"BTIN" };
        if sig != expected || cur.u8()? != 0 || cur.u8()? != kind {
            return Err(malformed("B-tree node signature", node));
        }
        let max = geometry.max_records(level);
        if records > max {
            return Err(malformed("B-tree node record count", node));
        }
        for _ in 0..records {
            out.push(cur.bytes(record_size as usize)?.to_vec());
        }
        if level > 0 {
            for _ in 0..=records {
                let child = cur.uint(file.offsets)?;
                let child_records = cur.uint(geometry.record_count_size)?;
                if level > 1 {
                    cur.uint(geometry.total_size(level - 1))?;
                }
                stack.push((child, level - 1, child_records));
            }
        }
        if stack.len() > MAX_ATTRIBUTES {
            return Err(limit("B-tree nodes"));
        }
    }
    if out.len() as u64 != total {
        return Err(malformed(
            "B-tree (record count differs from its header)",
            at,
        ));
    }
    Ok(out)
}

/// Per-depth record capacities of a version 2 B-tree, as libhdf5 derives them from the node
/// size: they fix how wide the record-count fields of child pointers are.
struct Geometry {
    /// Max records per node at each depth, and the cumulative max under a node at that depth.
    max: Vec<u64>,
    cumulative: Vec<u64>,
    record_count_size: u8,
}

impl Geometry {
    fn new(node_size: u64, record_size: u64, depth: u16, offsets: u8) -> Option<Self> {
        // Signature, version, type and checksum.
        const PREFIX: u64 = 10;
        let leaf = node_size.checked_sub(PREFIX)? / record_size;
        if leaf == 0 {
            return None;
        }
        let record_count_size = enc_size(leaf);
        let mut max = vec![leaf];
        let mut cumulative = vec![leaf];
        for level in 1..=u64::from(depth) {
            let below = *cumulative.last()?;
            let total_size = if level > 1 {
                u64::from(enc_size(below))
            } else {
                0
            };
            let pointer = u64::from(offsets) + u64::from(record_count_size) + total_size;
            let here = node_size.checked_sub(PREFIX + pointer)? / (record_size + pointer);
            if here == 0 {
                return None;
            }
            max.push(here);
            cumulative.push(here.checked_add(1)?.checked_mul(below)?.checked_add(here)?);
        }
        Some(Geometry {
            max,
            cumulative,
            record_count_size,
        })
    }

    fn max_records(&self, level: u16) -> u64 {
        self.max.get(usize::from(level)).copied().unwrap_or(0)
    }

    /// Bytes of the "total records" field of a pointer to a child at `level`.
    fn total_size(&self, level: u16) -> u8 {
        self.cumulative
            .get(usize::from(level))
            .map_or(8, |n| enc_size(*n))
    }
}

/// libhdf5's `H5VM_limit_enc_size`: bytes needed to encode values up to `n`.
fn enc_size(n: u64) -> u8 {
    (n.checked_ilog2().unwrap_or(0) / 8 + 1) as u8
}
