//! Test files of every RAW kind, built around JPEGs the caller gives: no camera RAW encoder
//! exists in Debian, so the tests, the bad-file corpus and the fuzzer's seeds use these.
//!
//! Each file is laid out as its camera writes it (header, directories first, then data; the
//! same tags, maker notes and boxes), with the preview where that camera keeps it, smaller
//! decoys where it keeps those, and stand-in sensor data (a lossless-JPEG header for CR2 and
//! DNG, which must not be taken for a preview). They are made here, not by a camera.

use std::ops::Range;

use super::RawKind;

/// The JPEGs to embed: `full` is the one a reader must choose; `medium` and `thumb` are
/// smaller decoys. `orientation` is the EXIF value (1 to 8) the file states.
pub struct Parts<'a> {
    pub full: &'a [u8],
    pub medium: &'a [u8],
    pub thumb: &'a [u8],
    pub orientation: u16,
    /// Makes the full preview's pointer reach past the end of the file (for CR3, the full
    /// track's; its `PRVW` is then left out).
    pub broken_pointer: bool,
}

/// A built file and where its full preview lies.
pub struct Built {
    pub bytes: Vec<u8>,
    pub full: Range<usize>,
}

/// A RAW file of `kind` holding `parts`.
pub fn make(kind: RawKind, parts: &Parts) -> Built {
    match kind {
        RawKind::Dng => dng(parts),
        RawKind::Cr2 => cr2(parts),
        RawKind::Nef => nef(parts),
        RawKind::Arw => arw(parts),
        RawKind::Orf => orf(parts),
        RawKind::Rw2 => rw2(parts),
        RawKind::Raf => raf(parts),
        RawKind::Cr3 => cr3(parts),
    }
}

/// A small valid file of `kind` with generated JPEGs (full 640×480, orientation 6; the
/// decoys, 208×156 and 160×120, are too small to be shown in its place).
pub fn sample(kind: RawKind) -> Vec<u8> {
    sample_built(kind, false).bytes
}

/// [`sample`] cut in the middle of its preview.
pub fn truncated(kind: RawKind) -> Vec<u8> {
    let built = sample_built(kind, false);
    let cut = built.full.start + built.full.len() / 2;
    built.bytes[..cut].to_vec()
}

/// [`sample`] with the full preview's pointer past the end of the file.
pub fn malformed(kind: RawKind) -> Vec<u8> {
    sample_built(kind, true).bytes
}

fn sample_built(kind: RawKind, broken_pointer: bool) -> Built {
    let (full, medium, thumb) = (
        noise_jpeg(640, 480),
        noise_jpeg(208, 156),
        noise_jpeg(160, 120),
    );
    make(
        kind,
        &Parts {
            full: &full,
            medium: &medium,
            thumb: &thumb,
            orientation: 6,
            broken_pointer,
        },
    )
}

/// A JPEG of a pattern that does not compress to nothing, so the preview is most of the file.
pub fn noise_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let n = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ x.wrapping_mul(y);
        image::Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            (n >> 7) as u8,
        ])
    });
    let mut out = Vec::new();
    // Encoding a few hundred pixels into a Vec cannot fail.
    let _ = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode(
        image.as_raw(),
        width,
        height,
        image::ExtendedColorType::Rgb8,
    );
    out
}

/// `jpeg` with an EXIF APP1 segment holding only an orientation tag (as RAF's preview has).
pub fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Tiff::new(false, 0, b"II*\0");
    let ifd = tiff.reserve_ifd(1);
    tiff.fill_ifd(ifd, &[short(0x0112, orientation)], 0);
    tiff.patch_u32(4, ifd);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff.out);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The start of a lossless JPEG (SOF3), as CR2 and DNG store sensor data, then filler.
fn lossless_stub() -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC3, 0, 14, 14, 0x0F, 0xA0, 0x0B, 0x90, 2];
    out.extend_from_slice(&[1, 0x11, 0, 2, 0x11, 0]);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 6, 1, 1, 0, 0]);
    out.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// Stand-in sensor data.
fn sensor() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 13 % 256) as u8).collect()
}

// ---------------------------------------------------------------------------------------------
// A TIFF writer: directories are reserved first and filled once the data they point at is
// placed, so the layout is a camera's: header, directories, data.

#[derive(Clone, Copy)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    value: [u8; 4],
}

struct Tiff {
    out: Vec<u8>,
    big_endian: bool,
    /// Where offsets count from (a Nikon maker note's TIFF starts 10 bytes in).
    base: usize,
}

fn short(tag: u16, value: u16) -> Entry {
    let mut bytes = [0; 4];
    bytes[..2].copy_from_slice(&value.to_le_bytes());
    Entry {
        tag,
        kind: 3,
        count: 1,
        value: bytes,
    }
}

fn long(tag: u16, value: u32) -> Entry {
    Entry {
        tag,
        kind: 4,
        count: 1,
        value: value.to_le_bytes(),
    }
}

/// An entry whose `count` values of type `kind` lie at `offset`.
fn at(tag: u16, kind: u16, count: u32, offset: u32) -> Entry {
    Entry {
        tag,
        kind,
        count,
        value: offset.to_le_bytes(),
    }
}

impl Tiff {
    /// A writer whose output starts with `prefix`; its TIFF header is at `base`.
    fn new(big_endian: bool, base: usize, prefix: &[u8]) -> Tiff {
        let mut out = prefix.to_vec();
        out.resize(out.len().max(base + 8), 0);
        Tiff {
            out,
            big_endian,
            base,
        }
    }

    fn u16_bytes(&self, v: u16) -> [u8; 2] {
        match self.big_endian {
            true => v.to_be_bytes(),
            false => v.to_le_bytes(),
        }
    }

    fn u32_bytes(&self, v: u32) -> [u8; 4] {
        match self.big_endian {
            true => v.to_be_bytes(),
            false => v.to_le_bytes(),
        }
    }

    fn here(&mut self) -> u32 {
        if self.out.len() % 2 == 1 {
            self.out.push(0);
        }
        (self.out.len() - self.base) as u32
    }

    fn put(&mut self, data: &[u8]) -> u32 {
        let at = self.here();
        self.out.extend_from_slice(data);
        at
    }

    fn put_longs(&mut self, values: &[u32]) -> u32 {
        let bytes: Vec<u8> = values.iter().flat_map(|&v| self.u32_bytes(v)).collect();
        self.put(&bytes)
    }

    fn reserve_ifd(&mut self, entries: usize) -> u32 {
        let at = self.here();
        self.out.resize(self.out.len() + 2 + 12 * entries + 4, 0);
        at
    }

    fn patch(&mut self, offset: u32, bytes: &[u8]) {
        let at = self.base + offset as usize;
        self.out[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn patch_u32(&mut self, offset: u32, v: u32) {
        self.patch(offset, &self.u32_bytes(v));
    }

    /// Writes a reserved directory, its entries sorted by tag as TIFF requires.
    fn fill_ifd(&mut self, offset: u32, entries: &[Entry], next: u32) {
        let mut sorted = entries.to_vec();
        sorted.sort_by_key(|e| e.tag);
        let mut bytes = self.u16_bytes(sorted.len() as u16).to_vec();
        for e in &sorted {
            bytes.extend_from_slice(&self.u16_bytes(e.tag));
            bytes.extend_from_slice(&self.u16_bytes(e.kind));
            bytes.extend_from_slice(&self.u32_bytes(e.count));
            let value = match (e.kind, e.count) {
                (3, 1) => {
                    let v = u16::from_le_bytes([e.value[0], e.value[1]]);
                    let mut field = [0; 4];
                    field[..2].copy_from_slice(&self.u16_bytes(v));
                    field
                }
                (1 | 7, 1..=4) => e.value,
                _ => self.u32_bytes(u32::from_le_bytes(e.value)),
            };
            bytes.extend_from_slice(&value);
        }
        bytes.extend_from_slice(&self.u32_bytes(next));
        self.patch(offset, &bytes);
    }

    /// A string value's entry, the string placed now.
    fn ascii(&mut self, tag: u16, text: &str) -> Entry {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        let offset = self.put(&bytes);
        at(tag, 2, bytes.len() as u32, offset)
    }

    /// Where `offset` of this TIFF lies in its output.
    fn range(&self, offset: u32, len: usize) -> Range<usize> {
        let start = self.base + offset as usize;
        start..start + len
    }
}

/// `offset`, or one past the end of any file when the pointer is to be broken.
fn pointer(parts: &Parts, offset: u32) -> u32 {
    match parts.broken_pointer {
        true => 0xFFFF_FF00,
        false => offset,
    }
}

fn header(big_endian: bool, magic: &[u8; 4]) -> Tiff {
    let mut tiff = Tiff::new(big_endian, 0, magic);
    tiff.patch_u32(4, 8);
    tiff
}

fn dng(parts: &Parts) -> Built {
    let mut t = header(false, b"II*\0");
    let ifd0 = t.reserve_ifd(10);
    let (raw_ifd, preview_ifd, medium_ifd) = (t.reserve_ifd(4), t.reserve_ifd(4), t.reserve_ifd(4));
    let subs = t.put_longs(&[raw_ifd, preview_ifd, medium_ifd]);
    let make = t.ascii(0x010F, "Leica Camera AG");
    let thumb = t.put(parts.thumb);
    let full = t.put(parts.full);
    let medium = t.put(parts.medium);
    let raw = t.put(&lossless_stub());
    let strip = |kind: u32, offset: u32, len: usize| {
        [
            long(0x00FE, kind),
            short(0x0103, 7),
            long(0x0111, offset),
            long(0x0117, len as u32),
        ]
    };
    let mut entries = strip(1, thumb, parts.thumb.len()).to_vec();
    entries.extend([
        make,
        short(0x0112, parts.orientation),
        at(0x014A, 4, 3, subs),
        at(0xC612, 1, 4, u32::from_le_bytes([1, 4, 0, 0])),
        at(0xC613, 1, 4, u32::from_le_bytes([1, 1, 0, 0])),
        short(0x0106, 6),
    ]);
    t.fill_ifd(ifd0, &entries, 0);
    t.fill_ifd(raw_ifd, &strip(0, raw, lossless_stub().len()), 0);
    let full_at = pointer(parts, full);
    t.fill_ifd(preview_ifd, &strip(1, full_at, parts.full.len()), 0);
    t.fill_ifd(medium_ifd, &strip(1, medium, parts.medium.len()), 0);
    let full = t.range(full, parts.full.len());
    Built { bytes: t.out, full }
}

fn cr2(parts: &Parts) -> Built {
    let mut t = Tiff::new(false, 0, b"II*\0\x10\0\0\0CR\x02\0");
    t.out.resize(16, 0);
    let ifd0 = t.reserve_ifd(6);
    let (ifd1, ifd2, ifd3) = (t.reserve_ifd(2), t.reserve_ifd(3), t.reserve_ifd(3));
    t.patch_u32(12, ifd3);
    let make = t.ascii(0x010F, "Canon");
    let thumb = t.put(parts.thumb);
    let full = t.put(parts.full);
    let rgb = t.put(&sensor());
    let raw = t.put(&lossless_stub());
    let strip = |compression: u16, offset: u32, len: usize| {
        [
            short(0x0103, compression),
            long(0x0111, offset),
            long(0x0117, len as u32),
        ]
    };
    let mut entries = strip(6, pointer(parts, full), parts.full.len()).to_vec();
    entries.extend([make, short(0x0112, parts.orientation)]);
    t.fill_ifd(ifd0, &entries, ifd1);
    let jpeg = [long(0x0201, thumb), long(0x0202, parts.thumb.len() as u32)];
    t.fill_ifd(ifd1, &jpeg, ifd2);
    t.fill_ifd(ifd2, &strip(1, rgb, sensor().len()), ifd3);
    t.fill_ifd(ifd3, &strip(6, raw, lossless_stub().len()), 0);
    let full = t.range(full, parts.full.len());
    Built { bytes: t.out, full }
}

/// Big-endian, as Nikon writes: a thumbnail strip in IFD0, the full JPEG in the first SubIFD,
/// the sensor data in the second, and a medium preview in the maker note's preview IFD.
fn nef(parts: &Parts) -> Built {
    let mut t = header(true, b"MM\0*");
    let ifd0 = t.reserve_ifd(9);
    let (sub_a, sub_b, exif) = (t.reserve_ifd(3), t.reserve_ifd(4), t.reserve_ifd(1));
    let subs = t.put_longs(&[sub_a, sub_b]);
    let make = t.ascii(0x010F, "NIKON CORPORATION");
    let note = nikon_note(parts.medium);
    let note_at = t.put(&note);
    let thumb = t.put(&sensor());
    let full = t.put(parts.full);
    let raw = t.put(&sensor());
    let entries = [
        long(0x00FE, 1),
        make,
        short(0x0103, 1),
        long(0x0111, thumb),
        short(0x0112, parts.orientation),
        long(0x0117, sensor().len() as u32),
        at(0x014A, 4, 2, subs),
        long(0x8769, exif),
    ];
    t.fill_ifd(ifd0, &entries, 0);
    let jpeg = [
        long(0x00FE, 1),
        long(0x0201, pointer(parts, full)),
        long(0x0202, parts.full.len() as u32),
    ];
    t.fill_ifd(sub_a, &jpeg, 0);
    let raw_strip = [
        long(0x00FE, 0),
        short(0x0103, 34713),
        long(0x0111, raw),
        long(0x0117, sensor().len() as u32),
    ];
    t.fill_ifd(sub_b, &raw_strip, 0);
    t.fill_ifd(exif, &[at(0x927C, 7, note.len() as u32, note_at)], 0);
    let full = t.range(full, parts.full.len());
    Built { bytes: t.out, full }
}

/// Nikon's type-3 maker note: `Nikon\0`, a version, then a TIFF of its own.
fn nikon_note(medium: &[u8]) -> Vec<u8> {
    let mut t = Tiff::new(true, 10, b"Nikon\0\x02\x10\0\0MM\0*");
    t.patch_u32(4, 8);
    let ifd0 = t.reserve_ifd(2);
    let preview = t.reserve_ifd(2);
    let jpeg = t.put(medium);
    t.fill_ifd(
        ifd0,
        &[at(0x0001, 7, 4, 0x3032_3130), at(0x0011, 13, 1, preview)],
        0,
    );
    let entries = [long(0x0201, jpeg), long(0x0202, medium.len() as u32)];
    t.fill_ifd(preview, &entries, 0);
    t.out
}

/// Sony: the large preview in IFD0, the thumbnail in IFD1, the sensor data in a SubIFD.
fn arw(parts: &Parts) -> Built {
    let mut t = header(false, b"II*\0");
    let ifd0 = t.reserve_ifd(7);
    let (ifd1, sub) = (t.reserve_ifd(2), t.reserve_ifd(3));
    let make = t.ascii(0x010F, "SONY");
    let private = t.put(&[0; 16]);
    let full = t.put(parts.full);
    let thumb = t.put(parts.thumb);
    let raw = t.put(&sensor());
    let entries = [
        long(0x00FE, 0),
        make,
        short(0x0112, parts.orientation),
        long(0x014A, sub),
        long(0x0201, pointer(parts, full)),
        long(0x0202, parts.full.len() as u32),
        long(0xC634, private),
    ];
    t.fill_ifd(ifd0, &entries, ifd1);
    let jpeg = [long(0x0201, thumb), long(0x0202, parts.thumb.len() as u32)];
    t.fill_ifd(ifd1, &jpeg, 0);
    let raw_strip = [
        short(0x0103, 32767),
        long(0x0111, raw),
        long(0x0117, sensor().len() as u32),
    ];
    t.fill_ifd(sub, &raw_strip, 0);
    let full = t.range(full, parts.full.len());
    Built { bytes: t.out, full }
}

/// Olympus: sensor data in IFD0, the preview in the maker note's CameraSettings IFD with
/// offsets from the maker note's start.
fn orf(parts: &Parts) -> Built {
    let mut t = header(false, b"IIRO");
    let ifd0 = t.reserve_ifd(6);
    let (ifd1, exif) = (t.reserve_ifd(2), t.reserve_ifd(1));
    let make = t.ascii(0x010F, "OLYMPUS IMAGING CORP.  ");
    let raw = t.put(&sensor());
    let thumb = t.put(parts.thumb);
    let (note, full_in_note) = olympus_note(parts);
    let note_at = t.put(&note);
    let entries = [
        make,
        short(0x0103, 1),
        long(0x0111, raw),
        short(0x0112, parts.orientation),
        long(0x0117, sensor().len() as u32),
        long(0x8769, exif),
    ];
    t.fill_ifd(ifd0, &entries, ifd1);
    let jpeg = [long(0x0201, thumb), long(0x0202, parts.thumb.len() as u32)];
    t.fill_ifd(ifd1, &jpeg, 0);
    t.fill_ifd(exif, &[at(0x927C, 7, note.len() as u32, note_at)], 0);
    let full = t.range(note_at + full_in_note, parts.full.len());
    Built { bytes: t.out, full }
}

/// Olympus's maker note (`OLYMPUS\0II`, version 3, its IFD at 12) and where the full JPEG
/// lies in it.
fn olympus_note(parts: &Parts) -> (Vec<u8>, u32) {
    let mut t = Tiff::new(false, 0, b"OLYMPUS\0II\x03\0");
    t.out.truncate(12);
    let ifd = t.reserve_ifd(2);
    let settings = t.reserve_ifd(3);
    let full = t.put(parts.full);
    t.fill_ifd(
        ifd,
        &[at(0x0000, 7, 4, 0x3031_3030), at(0x2020, 13, 1, settings)],
        0,
    );
    let entries = [
        long(0x0100, 1),
        long(0x0101, pointer(parts, full)),
        long(0x0102, parts.full.len() as u32),
    ];
    t.fill_ifd(settings, &entries, 0);
    (t.out, full)
}

/// Panasonic's signature after the header, which puts IFD0 at 0x18.
const RW2_SIGNATURE: [u8; 16] = [
    0x88, 0xE7, 0x74, 0xD8, 0xF8, 0x25, 0x1D, 0x4D, 0x94, 0x7A, 0x6E, 0x77, 0x82, 0x2B, 0x5D, 0x6A,
];

/// Panasonic: the JPEG as the UNDEFINED value of tag 0x002E in IFD0.
fn rw2(parts: &Parts) -> Built {
    let mut prefix = b"IIU\0\x18\0\0\0".to_vec();
    prefix.extend_from_slice(&RW2_SIGNATURE);
    let mut t = Tiff::new(false, 0, &prefix);
    let ifd0 = t.reserve_ifd(7);
    let make = t.ascii(0x010F, "Panasonic");
    let full = t.put(parts.full);
    let raw = t.put(&sensor());
    let entries = [
        at(0x0001, 7, 4, u32::from_le_bytes(*b"0200")),
        long(0x0002, 5184),
        at(0x002E, 7, parts.full.len() as u32, pointer(parts, full)),
        make,
        short(0x0112, parts.orientation),
        long(0x0118, raw),
        short(0x0103, 34316),
    ];
    t.fill_ifd(ifd0, &entries, 0);
    let full = t.range(full, parts.full.len());
    Built { bytes: t.out, full }
}

/// Fujifilm: a big-endian header whose offset and length at byte 84 give the JPEG, which
/// carries the orientation in its own EXIF.
fn raf(parts: &Parts) -> Built {
    let jpeg = with_orientation(parts.full, parts.orientation);
    let mut out = b"FUJIFILMCCD-RAW 0201FF129502".to_vec();
    let mut name = b"X-T2".to_vec();
    name.resize(32, 0);
    out.extend_from_slice(&name);
    out.extend_from_slice(b"0100");
    out.resize(84, 0);
    let jpeg_at = 160u32;
    // The RAF directory: one entry, the sensor's size (tag 0x0100: height, width).
    let mut directory = 1u32.to_be_bytes().to_vec();
    directory.extend_from_slice(&[0x01, 0x00, 0, 4, 0x0F, 0xA0, 0x17, 0x70]);
    let directory_at = jpeg_at + jpeg.len() as u32;
    let raw_at = directory_at + directory.len() as u32;
    let (directory_len, raw_len) = (directory.len() as u32, sensor().len() as u32);
    let pointers = [pointer(parts, jpeg_at), jpeg.len() as u32];
    for v in pointers
        .into_iter()
        .chain([directory_at, directory_len, raw_at, raw_len])
    {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.resize(jpeg_at as usize, 0);
    out.extend_from_slice(&jpeg);
    out.extend_from_slice(&directory);
    out.extend_from_slice(&sensor());
    let full = jpeg_at as usize..(jpeg_at as usize + jpeg.len());
    Built { bytes: out, full }
}

// ---------------------------------------------------------------------------------------------
// CR3

fn bmff(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn uuid_box(id: &[u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut inner = id.to_vec();
    inner.extend_from_slice(payload);
    bmff(b"uuid", &inner)
}

/// A JPEG's stored size.
fn size_of(jpeg: &[u8]) -> (u16, u16) {
    super::jpeg_header(jpeg).map_or((0, 0), |j| (j.width as u16, j.height as u16))
}

/// Canon: `THMB` and `CMT1` (IFD0, the orientation) in Canon's box in `moov`; the full JPEG is
/// the first track's sample in `mdat`, the sensor data the second's; `PRVW` in its own box.
fn cr3(parts: &Parts) -> Built {
    let layout = |mdat_at: u64| -> Vec<u8> {
        let mut out = bmff(b"ftyp", b"crx \0\0\0\x01crx isom");
        out.extend(moov(parts, mdat_at));
        if !parts.broken_pointer {
            out.extend(prvw_box(parts.medium));
        }
        out
    };
    let mdat_at = layout(0).len() as u64;
    let mut out = layout(mdat_at);
    let mut mdat = parts.full.to_vec();
    mdat.extend_from_slice(&sensor());
    out.extend(bmff(b"mdat", &mdat));
    let start = mdat_at as usize + 8;
    Built {
        bytes: out,
        full: start..start + parts.full.len(),
    }
}

fn moov(parts: &Parts, mdat_at: u64) -> Vec<u8> {
    let mut cmt1 = Tiff::new(false, 0, b"II*\0");
    cmt1.patch_u32(4, 8);
    let ifd0 = cmt1.reserve_ifd(2);
    let make = cmt1.ascii(0x010F, "Canon");
    cmt1.fill_ifd(ifd0, &[make, short(0x0112, parts.orientation)], 0);
    let (w, h) = size_of(parts.thumb);
    let mut thmb = vec![0, 0, 0, 0];
    thmb.extend_from_slice(&w.to_be_bytes());
    thmb.extend_from_slice(&h.to_be_bytes());
    thmb.extend_from_slice(&(parts.thumb.len() as u32).to_be_bytes());
    thmb.extend_from_slice(&[0, 1, 0, 0]);
    thmb.extend_from_slice(parts.thumb);
    let mut canon = bmff(b"CNCV", b"CanonCR3_001/00.09.00/00.00.00");
    canon.extend(bmff(b"CMT1", &cmt1.out));
    canon.extend(bmff(b"THMB", &thmb));
    let mut out = uuid_box(&super::CANON_UUID, &canon);
    let full_at = match parts.broken_pointer {
        true => u64::from(u32::MAX) * 4,
        false => mdat_at + 8,
    };
    let raw_at = mdat_at + 8 + parts.full.len() as u64;
    out.extend(trak(full_at, parts.full.len() as u32));
    out.extend(trak(raw_at, sensor().len() as u32));
    bmff(b"moov", &out)
}

/// A track with one sample of `len` bytes at `offset`.
fn trak(offset: u64, len: u32) -> Vec<u8> {
    let mut stsz = vec![0; 4];
    stsz.extend_from_slice(&0u32.to_be_bytes());
    stsz.extend_from_slice(&1u32.to_be_bytes());
    stsz.extend_from_slice(&len.to_be_bytes());
    let mut co64 = vec![0, 0, 0, 0, 0, 0, 0, 1];
    co64.extend_from_slice(&offset.to_be_bytes());
    let mut stbl = bmff(b"stsd", &[0; 8]);
    stbl.extend(bmff(b"stsz", &stsz));
    stbl.extend(bmff(b"co64", &co64));
    let minf = bmff(b"minf", &bmff(b"stbl", &stbl));
    let mut trak = bmff(b"tkhd", &[0; 84]);
    trak.extend(bmff(b"mdia", &minf));
    bmff(b"trak", &trak)
}

fn prvw_box(medium: &[u8]) -> Vec<u8> {
    let (w, h) = size_of(medium);
    let mut prvw = vec![0, 0, 0, 0, 0, 1];
    prvw.extend_from_slice(&w.to_be_bytes());
    prvw.extend_from_slice(&h.to_be_bytes());
    prvw.extend_from_slice(&[0, 1]);
    prvw.extend_from_slice(&(medium.len() as u32).to_be_bytes());
    prvw.extend_from_slice(medium);
    let mut payload = vec![0, 0, 0, 0, 0, 0, 0, 1];
    payload.extend(bmff(b"PRVW", &prvw));
    uuid_box(&super::PREVIEW_UUID, &payload)
}
