//! Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2), shown through the JPEG preview
//! that every camera embeds beside its sensor data.
//!
//! That preview is what digiKam and Immich show: it is the camera's own rendering (white
//! balance, curve, lens corrections), usually full-size or close, and decoding it costs no
//! more than any JPEG. A demosaic would be slower, would need per-camera colour data, and the
//! Rust crates that do it (rawloader, rawler) are LGPL, which this MIT/Apache project cannot
//! take. So this module only finds the JPEG, with small parsers of its own:
//!
//! - TIFF-based kinds (DNG, CR2, NEF, ARW, ORF, RW2) are walked IFD by IFD: the chain, SubIFDs,
//!   the EXIF IFD and the Nikon and Olympus maker notes, which hold previews of their own.
//!   A candidate is any `JPEGInterchangeFormat` pair, any single JPEG-compressed strip, RW2's
//!   `JpgFromRaw` (tag 0x002E), and Olympus's `PreviewImageStart`/`Length`.
//! - RAF's header points at its JPEG; CR3 is ISO-BMFF, with `PRVW` and `THMB` boxes and a full
//!   size JPEG as the first track's sample.
//!
//! Every candidate is checked to be a complete baseline or progressive JPEG (the lossless JPEG
//! that CR2 and DNG use for sensor data is not one), and the one with the most pixels that fits
//! [`MAX_DECODE_BYTES`] wins. Offsets and lengths come from the file and are hostile: every one
//! is bounds-checked, every walk is bounded, loops are cut.
//!
//! The orientation is the RAW's own (tag 0x0112 of IFD0, or CR3's `CMT1`), else the preview
//! JPEG's EXIF (RAF). [`decode_preview`] applies it to the JPEG's pixels and ignores the
//! JPEG's own EXIF, so that it is never applied twice.

use std::collections::HashSet;
use std::io::Cursor;
use std::ops::Range;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};

use super::{jpeg_is_complete, MAX_DECODE_BYTES, MAX_SIDE};

/// The smallest shorter side a preview may have: the model's input crop. Every RAW also holds a
/// thumbnail of about 160×120, which would be upscaled into a blur; such a file is refused.
pub const MIN_PREVIEW_SHORTER: u32 = 224;

/// The kinds of camera RAW whose preview this module finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawKind {
    Dng,
    Cr2,
    Cr3,
    Nef,
    Arw,
    Raf,
    Orf,
    Rw2,
}

impl RawKind {
    pub const ALL: [RawKind; 8] = [
        RawKind::Dng,
        RawKind::Cr2,
        RawKind::Cr3,
        RawKind::Nef,
        RawKind::Arw,
        RawKind::Raf,
        RawKind::Orf,
        RawKind::Rw2,
    ];

    /// The name users know the kind by, as in the file extension.
    pub fn name(self) -> &'static str {
        match self {
            RawKind::Dng => "DNG",
            RawKind::Cr2 => "CR2",
            RawKind::Cr3 => "CR3",
            RawKind::Nef => "NEF",
            RawKind::Arw => "ARW",
            RawKind::Raf => "RAF",
            RawKind::Orf => "ORF",
            RawKind::Rw2 => "RW2",
        }
    }

    /// File extensions of the kind, lower case (for the scan's list).
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            RawKind::Dng => &["dng"],
            RawKind::Cr2 => &["cr2"],
            RawKind::Cr3 => &["cr3"],
            RawKind::Nef => &["nef"],
            RawKind::Arw => &["arw"],
            RawKind::Raf => &["raf"],
            RawKind::Orf => &["orf"],
            RawKind::Rw2 => &["rw2"],
        }
    }
}

/// The JPEG to show for a RAW file, and how to turn its pixels upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preview<'a> {
    pub kind: RawKind,
    /// A complete baseline or progressive JPEG, a slice of the file.
    pub jpeg: &'a [u8],
    /// The transform that makes the JPEG's stored pixels upright (its own EXIF is ignored).
    pub orientation: Orientation,
    /// The JPEG's stored size, before `orientation`.
    pub width: u32,
    pub height: u32,
}

impl Preview<'_> {
    /// The size of the upright picture: the stored one, turned where the orientation turns.
    pub fn upright_size(&self) -> (u32, u32) {
        use Orientation::{Rotate270, Rotate270FlipH, Rotate90, Rotate90FlipH};
        match self.orientation {
            Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH => (self.height, self.width),
            _ => (self.width, self.height),
        }
    }

    /// The most memory [`decode_preview`] holds for pixels: the decoder's RGB, and a turned
    /// copy where the orientation is not the identity (for the decode budget).
    pub fn pixel_bytes(&self) -> u64 {
        let rgb = u64::from(self.width) * u64::from(self.height) * 3;
        match self.orientation {
            Orientation::NoTransforms => rgb,
            _ => 2 * rgb,
        }
    }
}

/// The RAW kind of a file from its first bytes (64 are enough for the kinds with a magic of
/// their own: CR2, CR3, RAF, ORF, RW2). A NEF, ARW or DNG starts like any TIFF; for those the
/// first directory is read too ([`sniff_tiff`]), which needs it within `head` (a few KiB are
/// enough for cameras' files). `None` for anything else, plain TIFFs included.
pub fn sniff(head: &[u8]) -> Option<RawKind> {
    let at = |range: Range<usize>| head.get(range);
    if at(0..16) == Some(b"FUJIFILMCCD-RAW ") {
        return Some(RawKind::Raf);
    }
    if at(4..12) == Some(b"ftypcrx ") {
        return Some(RawKind::Cr3);
    }
    match at(0..4)? {
        b"IIU\0" => return Some(RawKind::Rw2),
        b"IIRO" | b"MMOR" | b"IIRS" => return Some(RawKind::Orf),
        b"II*\0" if at(8..11) == Some(b"CR\x02") => return Some(RawKind::Cr2),
        _ => {}
    }
    sniff_tiff(head)
}

/// The RAW kind of a TIFF-structured file from its first directory: `DNGVersion` makes a DNG,
/// and a Nikon or Sony `Make` makes a NEF or ARW when the directory also shows sensor data
/// (SubIFDs, a reduced-resolution IFD0 or Sony's private data), so that a plain TIFF saved
/// from a Nikon JPEG stays a TIFF. `bytes` may be the whole file or its first few KiB.
pub fn sniff_tiff(bytes: &[u8]) -> Option<RawKind> {
    let tiff = Tiff::new(bytes)?;
    let ifd0 = tiff.ifd(tiff.first_ifd()?)?;
    if ifd0.find(TAG_DNG_VERSION).is_some() {
        return Some(RawKind::Dng);
    }
    let raw_signs = ifd0.find(TAG_SUB_IFDS).is_some()
        || ifd0.find(TAG_SONY_PRIVATE).is_some()
        || ifd0.find(TAG_NEW_SUBFILE_TYPE).and_then(|e| tiff.uint(&e)) == Some(1);
    let make = ifd0.find(TAG_MAKE).and_then(|e| tiff.value(&e))?;
    let make = String::from_utf8_lossy(make).to_ascii_uppercase();
    match make.trim_start() {
        m if m.starts_with("NIKON") && raw_signs => Some(RawKind::Nef),
        m if m.starts_with("SONY") && raw_signs => Some(RawKind::Arw),
        _ => None,
    }
}

/// The largest usable JPEG preview of a RAW file, with the file's orientation. The error names
/// the kind and the reason: not a RAW, truncated, damaged, no preview, only a thumbnail, or a
/// preview too large to decode safely.
pub fn preview(bytes: &[u8]) -> Result<Preview<'_>, String> {
    let Some(kind) = sniff(bytes) else {
        return Err("not a camera RAW file (DNG, CR2, CR3, NEF, ARW, RAF, ORF or RW2)".into());
    };
    let found = match kind {
        RawKind::Raf => raf_candidates(bytes),
        RawKind::Cr3 => cr3_candidates(bytes),
        _ => tiff_candidates(bytes),
    }
    .map_err(|reason| format!("{}: {reason}", kind.name()))?;
    choose(kind, bytes, found).map_err(|reason| format!("{}: {reason}", kind.name()))
}

/// Decodes a preview's JPEG to upright RGB, refusing before it allocates one that exceeds
/// [`MAX_DECODE_BYTES`] or [`MAX_SIDE`]. The JPEG's own EXIF orientation is not applied: the
/// RAW's, in `preview.orientation`, is.
pub fn decode_preview(preview: &Preview<'_>) -> Result<RgbImage, String> {
    let name = preview.kind.name();
    let damaged = |e: image::ImageError| format!("{name}: damaged embedded preview: {e}");
    let mut decoder =
        image::codecs::jpeg::JpegDecoder::new(Cursor::new(preview.jpeg)).map_err(damaged)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height).map_err(|reason| format!("{name}: {reason}"))?;
    decoder.set_limits(limits()).map_err(damaged)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    image.apply_orientation(preview.orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// [`decode_preview`] at a half, a quarter or an eighth of the preview's size, when the use
/// needs only `min_shorter` pixels on the shorter side: the same choice of scale and the same
/// DCT-domain reduction as [`super::decode_jpeg_reduced`] makes for a JPEG file, with the RAW's
/// orientation instead of the JPEG's own. Falls back to the full decode where no reduction
/// applies or this decoder cannot take the JPEG (CMYK, 16-bit).
pub fn decode_preview_for(preview: &Preview<'_>, min_shorter: u32) -> Result<RgbImage, String> {
    let reduced = check_size(preview.width, preview.height)
        .ok()
        .and_then(|()| super::scaled_jpeg::decode(preview.jpeg, min_shorter));
    match reduced {
        Some(scaled) => Ok(scaled.upright(preview.orientation).0),
        None => decode_preview(preview),
    }
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits
}

/// Whether pixels of this size may be decoded: within [`MAX_SIDE`] and, as RGB, within
/// [`MAX_DECODE_BYTES`].
fn check_size(width: u32, height: u32) -> Result<(), String> {
    let needed = u64::from(width) * u64::from(height) * 3;
    if width > MAX_SIDE || height > MAX_SIDE || needed > MAX_DECODE_BYTES {
        return Err(format!(
            "image too large to decode safely: the preview is {width}×{height}, needs {} MiB, \
             the limit is {} MiB",
            needed >> 20,
            MAX_DECODE_BYTES >> 20
        ));
    }
    Ok(())
}

/// What a container holds: byte ranges that may be JPEGs (not yet checked), and the file's
/// own orientation if it states one.
#[derive(Default)]
struct Found {
    candidates: Vec<Range<u64>>,
    orientation: Option<Orientation>,
    /// Whether a directory or maker note that could hold a preview lies past the file's end.
    cut: bool,
}

/// A candidate that is a complete baseline or progressive JPEG.
struct Jpeg<'a> {
    bytes: &'a [u8],
    width: u32,
    height: u32,
    exif: Option<&'a [u8]>,
}

/// Picks the JPEG with the most pixels (then the most bytes) among those that fit the limits.
fn choose(kind: RawKind, bytes: &[u8], found: Found) -> Result<Preview<'_>, String> {
    let mut past_end = found.cut;
    let (mut jpegs, mut damaged) = (Vec::new(), false);
    for range in &found.candidates {
        match slice(bytes, range) {
            Some(candidate) => match jpeg_info(candidate) {
                Some(jpeg) => jpegs.push(jpeg),
                None => damaged |= jpeg_header(candidate).is_some(),
            },
            None => past_end = true,
        }
    }
    let fits = |j: &&Jpeg| check_size(j.width, j.height).is_ok();
    let best = jpegs
        .iter()
        .filter(fits)
        .max_by_key(|j| (u64::from(j.width) * u64::from(j.height), j.bytes.len()));
    let Some(best) = best else {
        return Err(no_preview(&jpegs, past_end, damaged));
    };
    if best.width.min(best.height) < MIN_PREVIEW_SHORTER {
        return Err(format!(
            "no embedded preview large enough{}: the largest is {}×{}, the model needs {} \
             pixels on the shorter side",
            if past_end {
                " (the file is truncated)"
            } else {
                ""
            },
            best.width,
            best.height,
            MIN_PREVIEW_SHORTER
        ));
    }
    let orientation = found
        .orientation
        .or_else(|| best.exif.and_then(Orientation::from_exif_chunk))
        .unwrap_or(Orientation::NoTransforms);
    Ok(Preview {
        kind,
        jpeg: best.bytes,
        orientation,
        width: best.width,
        height: best.height,
    })
}

/// Why no candidate could be used.
fn no_preview(jpegs: &[Jpeg], past_end: bool, damaged: bool) -> String {
    if let Some(big) = jpegs.first() {
        // Only too-large ones are left: say so, with the first one's size.
        return check_size(big.width, big.height).err().unwrap_or_default();
    }
    if past_end {
        return "truncated file: the embedded preview ends past the end of the file".into();
    }
    if damaged {
        return "damaged file: the embedded preview ends before its image data does".into();
    }
    "no embedded JPEG preview (lookalike does not demosaic raw sensor data)".into()
}

/// The bytes of `range`, if it lies wholly inside `bytes`.
fn slice<'a>(bytes: &'a [u8], range: &Range<u64>) -> Option<&'a [u8]> {
    let start = usize::try_from(range.start).ok()?;
    let end = usize::try_from(range.end).ok()?;
    bytes.get(start..end)
}

/// Size and EXIF of a complete baseline or progressive JPEG; `None` for anything else,
/// lossless JPEG (sensor data) included.
fn jpeg_info(bytes: &[u8]) -> Option<Jpeg<'_>> {
    let info = jpeg_header(bytes)?;
    // Checked after the header, which rules out sensor data without searching all of it.
    jpeg_is_complete(bytes).then_some(info)
}

fn jpeg_header(bytes: &[u8]) -> Option<Jpeg<'_>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    let mut exif = None;
    loop {
        // Markers may be preceded by any number of fill bytes.
        while bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let segment = bytes.get(at + 4..(at + 2).checked_add(len)?)?;
        match marker {
            // The first EXIF segment counts, as in other readers.
            0xE1 if exif.is_none() && segment.starts_with(b"Exif\0\0") => exif = segment.get(6..),
            0xC0..=0xC2 => {
                let height = u16::from_be_bytes([*segment.get(1)?, *segment.get(2)?]);
                let width = u16::from_be_bytes([*segment.get(3)?, *segment.get(4)?]);
                return (width > 0 && height > 0).then_some(Jpeg {
                    bytes,
                    width: u32::from(width),
                    height: u32::from(height),
                    exif,
                });
            }
            // Other frame types (lossless, arithmetic, hierarchical), a scan before a frame,
            // the end: nothing the decoder takes.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF | 0xDA | 0xD9 => return None,
            _ => {}
        }
        at += 2 + len;
    }
}

// ---------------------------------------------------------------------------------------------
// TIFF

const TAG_NEW_SUBFILE_TYPE: u16 = 0x00FE;
const TAG_COMPRESSION: u16 = 0x0103;
const TAG_MAKE: u16 = 0x010F;
const TAG_STRIP_OFFSETS: u16 = 0x0111;
const TAG_ORIENTATION: u16 = 0x0112;
const TAG_STRIP_BYTE_COUNTS: u16 = 0x0117;
const TAG_SUB_IFDS: u16 = 0x014A;
const TAG_JPEG_OFFSET: u16 = 0x0201;
const TAG_JPEG_LENGTH: u16 = 0x0202;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_MAKER_NOTE: u16 = 0x927C;
const TAG_DNG_VERSION: u16 = 0xC612;
const TAG_SONY_PRIVATE: u16 = 0xC634;
/// RW2's full-size JPEG, stored as an UNDEFINED blob.
const TAG_RW2_JPEG: u16 = 0x002E;
/// Nikon maker note: the IFD of a medium-size preview.
const TAG_NIKON_PREVIEW_IFD: u16 = 0x0011;
/// Olympus maker note: the CameraSettings IFD, and in it the preview's start and length.
const TAG_OLYMPUS_CAMERA_SETTINGS: u16 = 0x2020;
const TAG_OLYMPUS_PREVIEW_START: u16 = 0x0101;
const TAG_OLYMPUS_PREVIEW_LENGTH: u16 = 0x0102;
/// Older Olympus maker notes keep the preview in their main IFD.
const TAG_OLYMPUS_OLD_PREVIEW_START: u16 = 0x0088;
const TAG_OLYMPUS_OLD_PREVIEW_LENGTH: u16 = 0x0089;

/// The most entries one directory may have; cameras write fewer than 300.
const MAX_ENTRIES: usize = 1024;
/// The most IFDs one file may make us read; cameras write fewer than 20.
const MAX_IFDS: usize = 64;
/// How deep SubIFDs, EXIF and maker notes may nest.
const MAX_DEPTH: u32 = 6;
/// The most SubIFDs followed from one tag.
const MAX_SUB_IFDS: usize = 16;

/// A TIFF structure: offsets in it count from `base`, the start of its header (a maker
/// note's TIFF sits inside the file and counts from its own start).
#[derive(Clone, Copy)]
struct Tiff<'a> {
    bytes: &'a [u8],
    base: usize,
    big_endian: bool,
}

/// One directory entry: tag, type, count, and where its 4-byte value field lies (absolute).
#[derive(Clone, Copy)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    field: usize,
}

struct Ifd {
    entries: Vec<Entry>,
    next: u32,
}

impl Ifd {
    fn find(&self, tag: u16) -> Option<Entry> {
        self.entries.iter().find(|e| e.tag == tag).copied()
    }
}

impl<'a> Tiff<'a> {
    /// The TIFF whose header starts `bytes`: `II` or `MM`, then TIFF's 42 or the magic of
    /// ORF (`RO`, `RS`) or RW2 (`U`).
    fn new(bytes: &'a [u8]) -> Option<Tiff<'a>> {
        Tiff::at(bytes, 0)
    }

    fn at(bytes: &'a [u8], base: usize) -> Option<Tiff<'a>> {
        let big_endian = match bytes.get(base..base.checked_add(2)?)? {
            b"II" => false,
            b"MM" => true,
            _ => return None,
        };
        let tiff = Tiff {
            bytes,
            base,
            big_endian,
        };
        let magic = tiff.u16_at(base.checked_add(2)?)?;
        matches!(magic, 42 | 0x4F52 | 0x5352 | 0x55).then_some(tiff)
    }

    fn first_ifd(&self) -> Option<u32> {
        self.u32_at(self.base.checked_add(4)?)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self.big_endian {
            true => u16::from_be_bytes(b),
            false => u16::from_le_bytes(b),
        })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self.big_endian {
            true => u32::from_be_bytes(b),
            false => u32::from_le_bytes(b),
        })
    }

    /// The absolute position of an offset stored in this TIFF.
    fn absolute(&self, offset: u32) -> Option<usize> {
        self.base.checked_add(usize::try_from(offset).ok()?)
    }

    /// The directory at `offset`; `None` if it does not lie wholly inside the file.
    fn ifd(&self, offset: u32) -> Option<Ifd> {
        let at = self.absolute(offset)?;
        let count = usize::from(self.u16_at(at)?);
        if count > MAX_ENTRIES {
            return None;
        }
        let end = at.checked_add(2 + 12 * count)?;
        let next = self.u32_at(end)?;
        let entries = (0..count)
            .map(|i| at + 2 + 12 * i)
            .map(|e| {
                Some(Entry {
                    tag: self.u16_at(e)?,
                    kind: self.u16_at(e + 2)?,
                    count: self.u32_at(e + 4)?,
                    field: e + 8,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Ifd { entries, next })
    }

    /// Where an entry's value lies (absolute), inline or at its offset.
    fn value_range(&self, e: &Entry) -> Option<Range<usize>> {
        let size: usize = match e.kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => return None,
        };
        let len = size.checked_mul(usize::try_from(e.count).ok()?)?;
        let start = match len <= 4 {
            true => e.field,
            false => self.absolute(self.u32_at(e.field)?)?,
        };
        Some(start..start.checked_add(len)?)
    }

    fn value(&self, e: &Entry) -> Option<&'a [u8]> {
        self.bytes.get(self.value_range(e)?)
    }

    /// An unsigned integer value (SHORT, LONG or IFD), the `index`th of the entry's.
    fn uint_nth(&self, e: &Entry, index: usize) -> Option<u32> {
        let at = self.value_range(e)?.start;
        match e.kind {
            3 => self.u16_at(at.checked_add(2 * index)?).map(u32::from),
            4 | 13 => self.u32_at(at.checked_add(4 * index)?),
            _ => None,
        }
        .filter(|_| index < e.count as usize)
    }

    fn uint(&self, e: &Entry) -> Option<u32> {
        self.uint_nth(e, 0)
    }

    /// An entry's value field read as an offset whatever its type, as maker notes store their
    /// sub-directories as LONG, IFD or an UNDEFINED blob that holds the directory.
    fn field_offset(&self, e: &Entry) -> Option<u32> {
        self.u32_at(e.field)
    }
}

/// Which rules apply in a directory: maker notes reuse tag numbers for their own purposes.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    Main,
    Nikon,
    Olympus,
}

/// The walk over every IFD of a TIFF-based RAW, collecting preview candidates.
struct Walk<'a> {
    file: &'a [u8],
    seen: HashSet<usize>,
    found: Found,
}

fn tiff_candidates(bytes: &[u8]) -> Result<Found, String> {
    let tiff = Tiff::new(bytes).ok_or("damaged file: no TIFF header")?;
    let first = tiff
        .first_ifd()
        .ok_or("truncated file: no first directory")?;
    let Some(ifd0) = tiff.ifd(first) else {
        return Err(format!(
            "truncated or damaged file: its first directory at byte {first} lies outside its \
             {} bytes",
            bytes.len()
        ));
    };
    let mut walk = Walk {
        file: bytes,
        seen: HashSet::new(),
        found: Found::default(),
    };
    walk.found.orientation = ifd0
        .find(TAG_ORIENTATION)
        .and_then(|e| tiff.uint(&e))
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif);
    walk.chain(tiff, first, Context::Main, 0);
    Ok(walk.found)
}

impl<'a> Walk<'a> {
    /// Visits the IFD at `offset` and the ones chained after it.
    fn chain(&mut self, tiff: Tiff<'a>, mut offset: u32, context: Context, depth: u32) {
        while offset != 0 && depth <= MAX_DEPTH && self.seen.len() < MAX_IFDS {
            let Some(at) = tiff.absolute(offset) else {
                return;
            };
            if !self.seen.insert(at) {
                return; // a loop
            }
            let Some(ifd) = tiff.ifd(offset) else {
                self.found.cut |= at >= self.file.len();
                return;
            };
            self.visit(tiff, &ifd, context, depth);
            offset = ifd.next;
        }
    }

    fn visit(&mut self, tiff: Tiff<'a>, ifd: &Ifd, context: Context, depth: u32) {
        let pair = |start, length| {
            let start = ifd.find(start).and_then(|e| tiff.uint(&e))?;
            let length = ifd.find(length).and_then(|e| tiff.uint(&e))?;
            Some((start, length))
        };
        let pairs: &[(u16, u16)] = match context {
            Context::Olympus => &[
                (TAG_OLYMPUS_PREVIEW_START, TAG_OLYMPUS_PREVIEW_LENGTH),
                (
                    TAG_OLYMPUS_OLD_PREVIEW_START,
                    TAG_OLYMPUS_OLD_PREVIEW_LENGTH,
                ),
            ],
            _ => &[(TAG_JPEG_OFFSET, TAG_JPEG_LENGTH)],
        };
        for &(start_tag, length_tag) in pairs {
            if let Some((start, length)) = pair(start_tag, length_tag) {
                self.candidate(tiff, start, length);
            }
        }
        if context == Context::Main {
            self.main_tags(tiff, ifd, depth);
        }
        let sub = match context {
            Context::Nikon => ifd.find(TAG_NIKON_PREVIEW_IFD),
            Context::Olympus => ifd.find(TAG_OLYMPUS_CAMERA_SETTINGS),
            Context::Main => None,
        };
        if let Some(offset) = sub.and_then(|e| tiff.field_offset(&e)) {
            self.chain(tiff, offset, context, depth + 1);
        }
    }

    /// Strips, RW2's blob, SubIFDs, EXIF and maker notes.
    fn main_tags(&mut self, tiff: Tiff<'a>, ifd: &Ifd, depth: u32) {
        let compression = ifd.find(TAG_COMPRESSION).and_then(|e| tiff.uint(&e));
        let offsets = ifd.find(TAG_STRIP_OFFSETS);
        let counts = ifd.find(TAG_STRIP_BYTE_COUNTS);
        if let (Some(6 | 7), Some(o), Some(c)) = (compression, offsets, counts) {
            // One strip holds a whole JPEG; several would be pieces of one.
            if o.count == 1 && c.count == 1 {
                if let (Some(start), Some(length)) = (tiff.uint(&o), tiff.uint(&c)) {
                    self.candidate(tiff, start, length);
                }
            }
        }
        if let Some(range) = ifd.find(TAG_RW2_JPEG).and_then(|e| tiff.value_range(&e)) {
            self.found
                .candidates
                .push(range.start as u64..range.end as u64);
        }
        if let Some(e) = ifd.find(TAG_SUB_IFDS) {
            let count = (e.count as usize).min(MAX_SUB_IFDS);
            for i in 0..count {
                if let Some(offset) = tiff.uint_nth(&e, i) {
                    self.chain(tiff, offset, Context::Main, depth + 1);
                }
            }
        }
        if let Some(offset) = ifd.find(TAG_EXIF_IFD).and_then(|e| tiff.uint(&e)) {
            self.chain(tiff, offset, Context::Main, depth + 1);
        }
        if let Some(note) = ifd.find(TAG_MAKER_NOTE) {
            self.maker_note(tiff, &note, depth + 1);
        }
    }

    /// Nikon's (`Nikon\0`, then a TIFF of its own at +10) and Olympus's (`OLYMPUS\0II`, the
    /// IFD at +12 with offsets from the note's start; or the older `OLYMP\0`, the IFD at +8
    /// with the file's offsets) maker notes hold previews. Other makers' are not needed.
    fn maker_note(&mut self, tiff: Tiff<'a>, note: &Entry, depth: u32) {
        let Some(range) = tiff.value_range(note) else {
            return;
        };
        // A note cut short by the file's end is read as far as it goes.
        self.found.cut |= range.end > self.file.len();
        let Some(data) = self.file.get(range.start..range.end.min(self.file.len())) else {
            return;
        };
        let start = range.start;
        if data.starts_with(b"Nikon\0") {
            if let Some(inner) = Tiff::at(self.file, start + 10) {
                if let Some(first) = inner.first_ifd() {
                    self.chain(inner, first, Context::Nikon, depth);
                }
            }
        } else if data.starts_with(b"OLYMPUS\0") {
            let order = Tiff {
                bytes: self.file,
                base: start,
                big_endian: data.get(8..10) == Some(b"MM"),
            };
            self.chain(order, 12, Context::Olympus, depth);
        } else if data.starts_with(b"OLYMP\0") {
            let ifd = start
                .checked_sub(tiff.base)
                .and_then(|at| u32::try_from(at + 8).ok());
            if let Some(offset) = ifd {
                self.chain(tiff, offset, Context::Olympus, depth);
            }
        }
    }

    fn candidate(&mut self, tiff: Tiff<'a>, start: u32, length: u32) {
        let start = tiff.base as u64 + u64::from(start);
        self.found.candidates.push(start..start + u64::from(length));
    }
}

// ---------------------------------------------------------------------------------------------
// RAF

/// RAF's header: a big-endian offset and length of its JPEG at byte 84.
fn raf_candidates(bytes: &[u8]) -> Result<Found, String> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let (Some(offset), Some(length)) = (word(84), word(88)) else {
        return Err("truncated file: the header ends before its preview's position".into());
    };
    let start = u64::from(offset);
    let mut found = Found::default();
    found.candidates.push(start..start + u64::from(length));
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// CR3 (ISO base media file format)

/// Canon's box in `moov` that holds `CMT1` (IFD0, with the orientation) and `THMB`.
const CANON_UUID: [u8; 16] = [
    0x85, 0xC0, 0xB6, 0x87, 0x82, 0x0F, 0x11, 0xE0, 0x81, 0x11, 0xF4, 0xCE, 0x46, 0x2B, 0x6A, 0x48,
];
/// The top-level box that holds `PRVW`, after 8 bytes of its own.
const PREVIEW_UUID: [u8; 16] = [
    0xEA, 0xF4, 0x2B, 0x5E, 0x1C, 0x98, 0x4B, 0x88, 0xB9, 0xFB, 0xB7, 0xDC, 0x40, 0x6E, 0x4D, 0x16,
];

/// The most boxes one CR3 may make us read; a camera's has about forty.
const MAX_BOXES: usize = 4096;

/// One box: its type, its user type for `uuid`, and where its payload lies.
struct Bmff {
    kind: [u8; 4],
    uuid: Option<[u8; 16]>,
    payload: Range<usize>,
}

/// The boxes inside `range`, in order; stops at the first that does not fit.
fn boxes(bytes: &[u8], range: Range<usize>, budget: &mut usize) -> Vec<Bmff> {
    let mut out = Vec::new();
    let mut at = range.start;
    while at < range.end && *budget > 0 {
        *budget -= 1;
        let Some(b) = one_box(bytes, at, range.end) else {
            break;
        };
        at = b.payload.end;
        out.push(b);
    }
    out
}

fn one_box(bytes: &[u8], at: usize, end: usize) -> Option<Bmff> {
    let head = bytes.get(at..at.checked_add(8)?)?;
    let size = u64::from(u32::from_be_bytes(head[..4].try_into().ok()?));
    let kind: [u8; 4] = head[4..8].try_into().ok()?;
    let (size, mut header) = match size {
        0 => ((end - at) as u64, 8),
        1 => (
            u64::from_be_bytes(bytes.get(at + 8..at + 16)?.try_into().ok()?),
            16,
        ),
        n => (n, 8),
    };
    let box_end = at.checked_add(usize::try_from(size).ok()?)?;
    let uuid = match &kind {
        b"uuid" => {
            let id: [u8; 16] = bytes.get(at + header..at + header + 16)?.try_into().ok()?;
            header += 16;
            Some(id)
        }
        _ => None,
    };
    if box_end > end || box_end < at + header {
        return None;
    }
    Some(Bmff {
        kind,
        uuid,
        payload: at + header..box_end,
    })
}

fn cr3_candidates(bytes: &[u8]) -> Result<Found, String> {
    let mut budget = MAX_BOXES;
    let top = boxes(bytes, 0..bytes.len(), &mut budget);
    if !top.iter().any(|b| &b.kind == b"moov") {
        return Err("truncated or damaged file: no complete 'moov' box".into());
    }
    let mut found = Found::default();
    for b in &top {
        match (&b.kind, b.uuid) {
            (b"moov", _) => moov(bytes, b, &mut budget, &mut found),
            (b"uuid", Some(PREVIEW_UUID)) => {
                let inner = b.payload.start.saturating_add(8)..b.payload.end;
                for prvw in boxes(bytes, inner, &mut budget) {
                    if &prvw.kind == b"PRVW" {
                        found.candidates.extend(embedded_jpeg(bytes, &prvw));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}

fn moov(bytes: &[u8], moov: &Bmff, budget: &mut usize, found: &mut Found) {
    for b in boxes(bytes, moov.payload.clone(), budget) {
        match (&b.kind, b.uuid) {
            (b"uuid", Some(CANON_UUID)) => {
                for inner in boxes(bytes, b.payload.clone(), budget) {
                    match &inner.kind {
                        b"CMT1" => found.orientation = cmt1_orientation(bytes, &inner),
                        b"THMB" => found.candidates.extend(embedded_jpeg(bytes, &inner)),
                        _ => {}
                    }
                }
            }
            (b"trak", _) => found.candidates.extend(track_sample(bytes, &b, budget)),
            _ => {}
        }
    }
}

/// The JPEG inside `PRVW` or `THMB`: from its start-of-image marker, found within the box's
/// first 32 bytes (after the size fields), to the box's end.
fn embedded_jpeg(bytes: &[u8], b: &Bmff) -> Option<Range<u64>> {
    let head = bytes.get(b.payload.start..b.payload.end.min(b.payload.start + 32))?;
    let soi = memchr::memmem::find(head, &[0xFF, 0xD8, 0xFF])?;
    Some((b.payload.start + soi) as u64..b.payload.end as u64)
}

/// The orientation in `CMT1`, a TIFF holding the RAW's IFD0.
fn cmt1_orientation(bytes: &[u8], b: &Bmff) -> Option<Orientation> {
    let tiff = Tiff::new(bytes.get(b.payload.clone())?)?;
    let ifd0 = tiff.ifd(tiff.first_ifd()?)?;
    let value = tiff.uint(&ifd0.find(TAG_ORIENTATION)?)?;
    Orientation::from_exif(u8::try_from(value).ok()?)
}

/// A track's first sample: the first track of a CR3 is its full-size JPEG. Found through
/// `mdia/minf/stbl`, with the size from `stsz` and the offset from `co64` or `stco`.
fn track_sample(bytes: &[u8], trak: &Bmff, budget: &mut usize) -> Option<Range<u64>> {
    let mut range = trak.payload.clone();
    for name in [b"mdia", b"minf", b"stbl"] {
        range = boxes(bytes, range, budget)
            .into_iter()
            .find(|b| &b.kind == name)?
            .payload;
    }
    let stbl = boxes(bytes, range, budget);
    let find = |name: &[u8; 4]| stbl.iter().find(|b| &b.kind == name);
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    // stsz: version and flags, the common size, the count, then each size if none is common.
    let stsz = find(b"stsz")?.payload.start;
    let size = match word(stsz + 4)? {
        0 => word(stsz + 12)?,
        n => n,
    };
    // co64 / stco: version and flags, the count, then the offsets.
    let offset = match (find(b"co64"), find(b"stco")) {
        (Some(co64), _) => u64::from_be_bytes(
            bytes
                .get(co64.payload.start + 8..)?
                .get(..8)?
                .try_into()
                .ok()?,
        ),
        (None, Some(stco)) => u64::from(word(stco.payload.start + 8)?),
        _ => return None,
    };
    Some(offset..offset.checked_add(u64::from(size))?)
}

#[doc(hidden)]
pub mod fixture;

#[cfg(test)]
mod tests;
