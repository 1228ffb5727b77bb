//! Object headers (versions 1 and 2, with continuation chunks) and the attribute messages in
//! them: name, datatype, dataspace and value.

use super::{
    le, limit, malformed, unsupported, Attribute, Cursor, Error, File, Span, Storage, Value,
    MAX_CHUNKS, MAX_HEADER_BYTES, MAX_MESSAGES, MAX_VALUE, MAX_VLEN_ITEMS,
};

/// Header message types this reader acts on.
const MSG_ATTRIBUTE: u16 = 0x0C;
const MSG_CONTINUATION: u16 = 0x10;
const MSG_ATTRIBUTE_INFO: u16 = 0x15;

/// Message flag: the message is stored in the shared-message heap, not in the header.
const FLAG_SHARED: u8 = 0x02;

/// Longest attribute message prefix holding name, datatype and dataspace (three u16 sizes).
const MAX_ATTRIBUTE_HEAD: u64 = 8 + 1 + 3 * (65_535 + 7);

/// The messages of an object header that matter for attributes.
pub(super) struct Messages {
    /// Bodies of attribute messages (compact storage), in header order.
    pub(super) attributes: Vec<Vec<u8>>,
    /// The attribute info message, present when attributes may be stored densely.
    pub(super) attribute_info: Option<AttributeInfo>,
}

/// Where dense attributes live: a fractal heap and the B-tree indexing it by name.
pub(super) struct AttributeInfo {
    pub(super) heap: u64,
    pub(super) name_index: u64,
    pub(super) at: u64,
}

/// The shape of an attribute's dataspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Scalar,
    Null,
    Simple(Vec<u64>),
}

impl Shape {
    /// Number of elements, or `None` if the product overflows.
    pub fn elements(&self) -> Option<u64> {
        match self {
            Shape::Scalar => Some(1),
            Shape::Null => Some(0),
            Shape::Simple(dims) => dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d)),
        }
    }
}

/// Reads the object header at `address`, following continuation chunks.
pub(super) fn read(file: &File<'_>, address: u64) -> Result<Messages, Error> {
    let mut out = Messages {
        attributes: Vec::new(),
        attribute_info: None,
    };
    let mut budget = MAX_HEADER_BYTES;
    let prefix = file.read_upto(address, 4, "object header")?;
    let v2 = prefix == b"OHDR";
    let mut chunks: Vec<(u64, u64)> = Vec::new();
    let mut count = 0usize;
    let (first, order) = if v2 {
        first_chunk_v2(file, address)?
    } else {
        (first_chunk_v1(file, address)?, false)
    };
    chunks.push(first);
    let mut next = 0usize;
    while let Some(&(at, len)) = chunks.get(next) {
        next += 1;
        if next > MAX_CHUNKS {
            return Err(limit("object header continuation chunks"));
        }
        budget = budget
            .checked_sub(len)
            .ok_or_else(|| limit("object header size"))?;
        let chunk = file.read(at, len, "object header chunk")?;
        let mut cur = Cursor::new(&chunk, at);
        let end = if v2 {
            // Continuation chunks open with their own signature; every chunk ends with a
            // checksum (not verified: a file libhdf5 rejects is not loaded at all).
            if next > 1 && cur.bytes(4)? != b"OCHK" {
                return Err(malformed("object header continuation signature", at));
            }
            chunk.len().saturating_sub(4)
        } else {
            chunk.len()
        };
        let head_len = if v2 { 4 + usize::from(order) * 2 } else { 8 };
        while cur.pos().checked_add(head_len).is_some_and(|e| e <= end) {
            let (kind, size, flags) = if v2 {
                let kind = u16::from(cur.u8()?);
                let size = cur.u16()?;
                let flags = cur.u8()?;
                if order {
                    cur.skip(2)?;
                }
                (kind, size, flags)
            } else {
                let kind = cur.u16()?;
                let size = cur.u16()?;
                let flags = cur.u8()?;
                cur.skip(3)?;
                (kind, size, flags)
            };
            let message_at = cur.at();
            if cur.pos().saturating_add(usize::from(size)) > end {
                return Err(malformed(
                    "object header message (past its chunk)",
                    message_at,
                ));
            }
            let body = cur.bytes(usize::from(size))?;
            count += 1;
            if count > MAX_MESSAGES {
                return Err(limit("object header messages"));
            }
            match kind {
                MSG_ATTRIBUTE | MSG_ATTRIBUTE_INFO if flags & FLAG_SHARED != 0 => {
                    return Err(unsupported("shared attribute message"));
                }
                MSG_ATTRIBUTE => out.attributes.push(body.to_vec()),
                MSG_ATTRIBUTE_INFO => {
                    if out.attribute_info.is_some() {
                        return Err(malformed(
                            "object header (two attribute info messages)",
                            message_at,
                        ));
                    }
                    out.attribute_info = Some(attribute_info(file, body, message_at)?);
                }
                MSG_CONTINUATION => {
                    let mut c = Cursor::new(body, message_at);
                    let at = c.uint(file.offsets)?;
                    let len = c.uint(file.lengths)?;
                    if chunks.contains(&(at, len)) {
                        return Err(malformed("object header (continuation loop)", message_at));
                    }
                    chunks.push((at, len));
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The first chunk of a version 1 header: 16-byte prefix (version, reserved, message count,
/// reference count, chunk size, padding), then messages.
fn first_chunk_v1(file: &File<'_>, address: u64) -> Result<(u64, u64), Error> {
    let head = file.read(address, 16, "object header")?;
    let mut cur = Cursor::new(&head, address);
    let version = cur.u8()?;
    if version != 1 {
        return Err(malformed(
            &format!("object header (version {version})"),
            address,
        ));
    }
    cur.skip(7)?;
    let size = u64::from(cur.u32()?);
    let start = address
        .checked_add(16)
        .ok_or_else(|| malformed("object header address", address))?;
    Ok((start, size))
}

/// The first chunk of a version 2 header: `OHDR`, version, flags, optional times and
/// attribute phase change values, chunk size (1-8 bytes). Returns the chunk (messages and
/// checksum) and whether messages carry a creation order.
fn first_chunk_v2(file: &File<'_>, address: u64) -> Result<((u64, u64), bool), Error> {
    let head = file.read_upto(address, 4 + 2 + 16 + 4 + 8, "object header")?;
    let mut cur = Cursor::new(&head, address);
    cur.skip(4)?;
    let version = cur.u8()?;
    if version != 2 {
        return Err(malformed(
            &format!("object header (version {version})"),
            address,
        ));
    }
    let flags = cur.u8()?;
    if flags & 0x20 != 0 {
        cur.skip(16)?;
    }
    if flags & 0x10 != 0 {
        cur.skip(4)?;
    }
    let size = cur.uint(1 << (flags & 0x03))?;
    let start = address
        .checked_add(cur.pos() as u64)
        .ok_or_else(|| malformed("object header address", address))?;
    // The chunk's messages are followed by a 4-byte checksum, read with them.
    let len = size
        .checked_add(4)
        .ok_or_else(|| malformed("object header size", address))?;
    Ok(((start, len), flags & 0x04 != 0))
}

fn attribute_info(file: &File<'_>, body: &[u8], at: u64) -> Result<AttributeInfo, Error> {
    let mut cur = Cursor::new(body, at);
    let version = cur.u8()?;
    if version != 0 {
        return Err(malformed(
            &format!("attribute info (version {version})"),
            at,
        ));
    }
    let flags = cur.u8()?;
    if flags & 0x01 != 0 {
        cur.skip(2)?;
    }
    let heap = cur.uint(file.offsets)?;
    let name_index = cur.uint(file.offsets)?;
    Ok(AttributeInfo {
        heap,
        name_index,
        at,
    })
}

/// Parses one attribute message; reads its value when `want` accepts its name.
pub(super) fn attribute(
    file: &File<'_>,
    span: &Span<'_>,
    storage: Storage,
    want: &dyn Fn(&[u8]) -> bool,
) -> Result<Attribute, Error> {
    let head = span.read(file, 0, span.len().min(MAX_ATTRIBUTE_HEAD))?;
    let mut cur = Cursor::new(&head, 0);
    let version = cur.u8()?;
    let flags = cur.u8()?;
    let name_size = usize::from(cur.u16()?);
    let type_size = usize::from(cur.u16()?);
    let space_size = usize::from(cur.u16()?);
    let pad = |n: usize| {
        if version == 1 {
            n.next_multiple_of(8)
        } else {
            n
        }
    };
    match version {
        1 | 2 => {}
        3 => cur.skip(1)?,
        other => {
            return Err(malformed(
                &format!("attribute message (version {other})"),
                0,
            ))
        }
    }
    let name_field = cur.bytes(pad(name_size))?;
    // libhdf5 keeps `name_size - 1` bytes (the size counts a terminator it does not check)
    // and, being C, stops at the first NUL: names are compared as it reads them.
    let name = name_field
        .get(..name_size.saturating_sub(1))
        .map(|name| name.split(|b| *b == 0).next().unwrap_or(name))
        .unwrap_or_default()
        .to_vec();
    let datatype = cur.bytes(pad(type_size))?;
    let dataspace = cur.bytes(pad(space_size))?;
    let data_at = cur.pos() as u64;
    let (class, element_size, vlen_string) = datatype_of(datatype)?;
    let shape = shape_of(dataspace, file.lengths)?;
    let mut attribute = Attribute {
        name,
        storage,
        class,
        element_size,
        shape,
        value: None,
    };
    if !want(&attribute.name) {
        return Ok(attribute);
    }
    if flags & 0x03 != 0 {
        return Err(unsupported(
            "attribute with a shared (committed) datatype or dataspace",
        ));
    }
    let elements = attribute
        .shape
        .elements()
        .ok_or_else(|| limit("attribute element count"))?;
    let len = elements
        .checked_mul(u64::from(element_size))
        .filter(|len| *len <= MAX_VALUE)
        .ok_or_else(|| limit("attribute value size"))?;
    file.keep(len)?;
    let data = span.read(file, data_at, len)?;
    let size = usize::try_from(element_size).map_err(|_| limit("attribute element size"))?;
    attribute.value = Some(match (class, vlen_string) {
        (3, _) => Value::Fixed(
            data.chunks(size.max(1))
                .map(|item| {
                    let end = item.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                    item.get(..end).unwrap_or_default().to_vec()
                })
                .collect(),
        ),
        (9, true) => Value::Variable(vlen_strings(file, &data, size, elements)?),
        _ => Value::Raw(data),
    });
    Ok(attribute)
}

/// Class, element size and whether it is a variable-length string.
fn datatype_of(bytes: &[u8]) -> Result<(u8, u32, bool), Error> {
    let mut cur = Cursor::new(bytes, 0);
    let class_version = cur.u8()?;
    let bits = cur.bytes(3)?;
    let size = cur.u32()?;
    let class = class_version & 0x0F;
    let version = class_version >> 4;
    if !(1..=5).contains(&version) {
        return Err(malformed(&format!("datatype (version {version})"), 0));
    }
    let vlen_string = class == 9 && le(bits) & 0x0F == 1;
    Ok((class, size, vlen_string))
}

fn shape_of(bytes: &[u8], lengths: u8) -> Result<Shape, Error> {
    let mut cur = Cursor::new(bytes, 0);
    let version = cur.u8()?;
    let rank = cur.u8()?;
    let _flags = cur.u8()?;
    let kind = match version {
        1 => {
            cur.skip(5)?;
            u8::from(rank > 0)
        }
        2 => cur.u8()?,
        other => return Err(malformed(&format!("dataspace (version {other})"), 0)),
    };
    match kind {
        0 => Ok(Shape::Scalar),
        2 => Ok(Shape::Null),
        1 => {
            if rank > 32 {
                return Err(malformed("dataspace rank", 0));
            }
            let dims = (0..rank)
                .map(|_| cur.uint(lengths))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Shape::Simple(dims))
        }
        other => Err(malformed(&format!("dataspace type {other}"), 0)),
    }
}

/// Variable-length strings: each element is a length, a global heap collection address and
/// an object index.
fn vlen_strings(
    file: &File<'_>,
    data: &[u8],
    size: usize,
    elements: u64,
) -> Result<Vec<Vec<u8>>, Error> {
    let reference = 4 + usize::from(file.offsets) + 4;
    if size != reference {
        return Err(malformed(
            &format!("variable-length element size {size}"),
            0,
        ));
    }
    if elements > MAX_VLEN_ITEMS {
        return Err(limit("variable-length elements"));
    }
    let mut total = 0u64;
    let mut out = Vec::new();
    for item in data.chunks(reference) {
        let mut cur = Cursor::new(item, 0);
        let len = u64::from(cur.u32()?);
        let collection = cur.uint(file.offsets)?;
        let index = cur.u32()?;
        if len == 0 {
            // An empty (or null) string has no heap object.
            out.push(Vec::new());
            continue;
        }
        total = total
            .checked_add(len)
            .filter(|total| *total <= MAX_VALUE)
            .ok_or_else(|| limit("variable-length string size"))?;
        let index =
            u16::try_from(index).map_err(|_| malformed("global heap object index", collection))?;
        let (at, stored) = file.global_object(collection, index)?;
        if stored < len {
            return Err(malformed(
                "global heap object (shorter than its string)",
                at,
            ));
        }
        file.keep(len)?;
        out.push(file.read(at, len, "global heap object")?);
    }
    Ok(out)
}
