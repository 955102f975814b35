//! HEIC/HEIF (iPhone photos) and AVIF, through the system's libheif.
//!
//! Both formats are ISO-BMFF files: an `ftyp` box names the codec by its brands, a `meta` box
//! lists the items (the primary image, its grid tiles, thumbnails, EXIF) and their properties,
//! including the `irot`/`imir` transforms that say which way is up. Parsing that and running
//! an HEVC or AV1 decoder is what libheif does, so this module is a thin, safe wrapper of its
//! C API.
//!
//! Choices made:
//! - Our own FFI of the dozen functions used, not `libheif-rs`: its `libheif-sys` needs
//!   libheif 1.17 or later, and Debian 12 ships 1.15.1. The functions used here all exist in
//!   1.15 with the same signatures in later versions.
//! - [`sniff`] is a pure byte check and compiles without the `heif` feature, so that a build
//!   without libheif still recognises these files and can say why it cannot read them.
//! - The primary image is decoded with libheif's default options, which apply `irot`, `imir`
//!   and `clap` (`ignore_transformations` defaults to false): the pixels come back upright, and
//!   the handle's size is the upright size. EXIF orientation is not applied on top: HEIF
//!   says the transforms are the truth and EXIF's tag is informative only.
//! - A thumbnail item is decoded instead of the primary image when its shorter side is at
//!   least twice what the caller needs, as the scaled JPEG decode does, and only when its shape
//!   matches the primary's (a thumbnail stored the other way up would mislead).
//! - The size is checked against [`MAX_DECODE_BYTES`] before anything is decoded, and
//!   libheif's own limit on a side is set explicitly, so a newer libheif's default cannot widen
//!   it. Grid images (what iPhones write) are assembled by libheif; tiles are decoded on the
//!   calling thread, as lookalike already decodes one file per thread.

/// Which of the two HEIF codecs a file uses, from its `ftyp` brands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeifKind {
    /// HEVC-coded HEIF (`heic`, `heix`, ...), what iPhones write.
    Heic,
    /// AV1-coded HEIF (`avif`, `avis`).
    Avif,
}

impl HeifKind {
    /// The name users know the format by, which every error message starts with.
    pub fn name(self) -> &'static str {
        match self {
            HeifKind::Heic => "HEIC",
            HeifKind::Avif => "AVIF",
        }
    }
}

/// Brands that name the codec.
fn brand_kind(brand: &[u8]) -> Option<HeifKind> {
    match brand {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"hevm" | b"hevs" => {
            Some(HeifKind::Heic)
        }
        b"avif" | b"avis" => Some(HeifKind::Avif),
        _ => None,
    }
}

/// Brands that say only "HEIF structure": the codec is then in the compatible brands.
fn is_structural_brand(brand: &[u8]) -> bool {
    matches!(brand, b"mif1" | b"msf1" | b"mif2" | b"miaf")
}

/// Whether `head`, a file's first bytes, is a HEIC or AVIF file: the `ftyp` box's major brand,
/// or for a structural major brand (`mif1`, `msf1`) the first compatible brand that names a
/// codec. Only the bytes of the `ftyp` box within `head` are read.
pub fn sniff(head: &[u8]) -> Option<HeifKind> {
    let size = u32::from_be_bytes(head.get(0..4)?.try_into().ok()?) as usize;
    // 0 ("to the end of the file") and 1 (a 64-bit size follows) never happen for `ftyp`.
    if head.get(4..8)? != b"ftyp" || size < 16 {
        return None;
    }
    let major = head.get(8..12)?;
    if let Some(kind) = brand_kind(major) {
        return Some(kind);
    }
    if !is_structural_brand(major) {
        return None;
    }
    let compatible = head.get(16..size.min(head.len()))?;
    compatible.chunks_exact(4).find_map(brand_kind)
}

/// The format's name for an error message: from the brands, or "HEIF" when they name none.
#[cfg(feature = "heif")]
fn format_name(bytes: &[u8]) -> &'static str {
    sniff(bytes).map_or("HEIF", HeifKind::name)
}

/// Where `bytes` was cut, if the file ends inside a top-level box: the box's type, or
/// `"header"` for a box header cut short. Boxes are a 32-bit size (0: to the end; 1: a 64-bit
/// size follows) and a type.
pub fn cut_box(bytes: &[u8]) -> Option<String> {
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let (Some(size32), Some(kind)) = (rest.get(0..4), rest.get(4..8)) else {
            return Some("header".into());
        };
        let kind = String::from_utf8_lossy(kind).into_owned();
        let size = match u32::from_be_bytes(size32.try_into().ok()?) {
            0 => return None,
            1 => match rest.get(8..16) {
                Some(large) => u64::from_be_bytes(large.try_into().ok()?),
                None => return Some("header".into()),
            },
            n => u64::from(n),
        };
        if size < 8 {
            return None; // damaged, not cut
        }
        if size > rest.len() as u64 {
            return Some(kind);
        }
        at += size as usize;
    }
    None
}

#[cfg(feature = "heif")]
pub use decoding::{decode, size, BYTES_HELD_PER_PIXEL};

#[cfg(feature = "heif")]
mod ffi;

#[cfg(feature = "heif")]
mod decoding {
    use image::RgbImage;

    use super::ffi::{Context, Handle};
    use super::format_name;
    use crate::decode::MAX_DECODE_BYTES;

    /// What a decode holds per pixel of the decoded item at its peak, besides the file: the
    /// codec's YCbCr planes (at most 3 bytes, 4:4:4), libheif's interleaved RGB (3) and our
    /// copy of it (3). For the decode budget's estimate.
    pub const BYTES_HELD_PER_PIXEL: u64 = 9;

    /// The upright size of the primary image, from the file's boxes; nothing is decoded.
    pub fn size(bytes: &[u8]) -> Result<(u32, u32), String> {
        let name = format_name(bytes);
        let context = read(bytes).map_err(|e| format!("{name}: {e}"))?;
        let primary = context.primary().map_err(|e| format!("{name}: {e}"))?;
        primary.size().map_err(|e| format!("{name}: {e}"))
    }

    /// Decodes the primary image, upright, as 8-bit RGB, or a thumbnail item of the file when
    /// its shorter side is at least `2 * min_shorter` (pass `u32::MAX` for the primary image
    /// always). Returns the pixels and the primary image's full upright size.
    pub fn decode(bytes: &[u8], min_shorter: u32) -> Result<(RgbImage, (u32, u32)), String> {
        let name = format_name(bytes);
        decode_any(bytes, min_shorter).map_err(|e| format!("{name}: {e}"))
    }

    fn decode_any(bytes: &[u8], min_shorter: u32) -> Result<(RgbImage, (u32, u32)), String> {
        let context = read(bytes)?;
        let primary = context.primary()?;
        let full = primary.size()?;
        // Refused even when a thumbnail would do, as the JPEG decode refuses: such a file is
        // more likely hostile than a photo.
        check_budget(full)?;
        let item = match thumbnail_for(&primary, full, min_shorter) {
            Some(thumbnail) => thumbnail,
            None => primary,
        };
        let rgb = item.decode_rgb()?;
        Ok((rgb, full))
    }

    /// Parses the file's boxes. libheif words a file cut inside its `meta` box as having none,
    /// so a failure on a file whose last box runs past its end is called what it is.
    fn read(bytes: &[u8]) -> Result<Context<'_>, String> {
        Context::read(bytes).map_err(|e| match super::cut_box(bytes) {
            Some(kind) if !e.starts_with("truncated") => {
                let part = match kind.as_str() {
                    "header" => "a box's header".to_owned(),
                    _ => format!("its '{kind}' box"),
                };
                format!("truncated file: it ends inside {part} ({e})")
            }
            _ => e,
        })
    }

    /// Refuses an image whose RGB pixels would exceed [`MAX_DECODE_BYTES`].
    pub(super) fn check_budget((width, height): (u32, u32)) -> Result<(), String> {
        let needed = u64::from(width) * u64::from(height) * 3;
        if needed > MAX_DECODE_BYTES {
            return Err(format!(
                "image too large to decode safely: {width}×{height} needs {} MiB, the limit is {} MiB",
                needed >> 20,
                MAX_DECODE_BYTES >> 20
            ));
        }
        Ok(())
    }

    /// The smallest thumbnail item whose shorter side is at least `2 * min_shorter` and whose
    /// shape is the primary image's; thumbnails that cannot be read are passed over.
    fn thumbnail_for<'a>(
        primary: &Handle<'a>,
        full: (u32, u32),
        min_shorter: u32,
    ) -> Option<Handle<'a>> {
        let wanted = u64::from(min_shorter) * 2;
        primary
            .thumbnails()
            .into_iter()
            .filter_map(|t| Some((t.size().ok()?, t)))
            .filter(|&((w, h), _)| u64::from(w.min(h)) >= wanted && same_shape((w, h), full))
            .min_by_key(|&((w, h), _)| u64::from(w) * u64::from(h))
            .map(|(_, t)| t)
    }

    /// Whether two sizes have the same aspect ratio within 1% (thumbnails are rounded).
    pub(super) fn same_shape((w, h): (u32, u32), (fw, fh): (u32, u32)) -> bool {
        let (a, b) = (u64::from(w) * u64::from(fh), u64::from(h) * u64::from(fw));
        a.abs_diff(b) * 100 <= a.max(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `ftyp` box with these brands.
    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(b"ftyp");
        out.extend_from_slice(major);
        out.extend_from_slice(&[0; 4]);
        for brand in compatible {
            out.extend_from_slice(*brand);
        }
        out.extend_from_slice(b"\0\0\0\x08meta");
        out
    }

    #[test]
    fn sniffing_reads_the_major_brand() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1"])), Some(HeifKind::Heic));
        assert_eq!(sniff(&ftyp(b"heix", &[])), Some(HeifKind::Heic));
        assert_eq!(
            sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])),
            Some(HeifKind::Avif)
        );
        assert_eq!(sniff(&ftyp(b"avis", &[])), Some(HeifKind::Avif));
    }

    #[test]
    fn sniffing_a_structural_brand_looks_at_the_compatible_ones() {
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"miaf", b"heic"])),
            Some(HeifKind::Heic)
        );
        assert_eq!(
            sniff(&ftyp(b"msf1", &[b"avis", b"msf1"])),
            Some(HeifKind::Avif)
        );
        // A HEIF of JPEG or uncompressed items: neither codec, so not ours.
        assert_eq!(sniff(&ftyp(b"mif1", &[b"jpeg"])), None);
    }

    #[test]
    fn sniffing_rejects_other_files() {
        // MP4 and QuickTime are ISO-BMFF too.
        assert_eq!(sniff(&ftyp(b"isom", &[b"heic"])), None);
        assert_eq!(sniff(&ftyp(b"qt  ", &[])), None);
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), None);
        assert_eq!(sniff(b"hello, world, not a picture"), None);
        assert_eq!(sniff(b""), None);
        // A compatible brand past the box's own size belongs to the next box.
        let mut file = ftyp(b"mif1", &[]);
        file.extend_from_slice(b"heic");
        assert_eq!(sniff(&file), None);
        // Sizes that never occur for `ftyp`.
        let mut zero = ftyp(b"heic", &[]);
        zero[..4].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(sniff(&zero), None);
    }

    #[test]
    fn a_cut_box_is_found() {
        let mut file = ftyp(b"heic", &[b"mif1"]);
        file.extend_from_slice(b"\0\0\0\x0cmdat1234");
        let cut = |end: usize| cut_box(&file[..end]);
        assert_eq!(cut(file.len()), None);
        assert_eq!(cut(file.len() - 12), None); // between boxes
        assert_eq!(cut(file.len() - 1).as_deref(), Some("mdat"));
        assert_eq!(cut(file.len() - 5).as_deref(), Some("header"));
        assert_eq!(cut(10).as_deref(), Some("ftyp"));
        assert_eq!(cut_box(b""), None);
        // A box that says it is smaller than its header is damage, not a cut.
        assert_eq!(cut_box(b"\0\0\0\x04ftyp"), None);
        // To the end of the file, and a 64-bit size.
        assert_eq!(cut_box(b"\0\0\0\0mdat1234"), None);
        let large = b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x20abc";
        assert_eq!(cut_box(large).as_deref(), Some("mdat"));
        assert_eq!(cut_box(&large[..12]).as_deref(), Some("header"));
        for end in 0..file.len() {
            let _ = cut(end);
        }
    }

    #[test]
    fn sniffing_survives_every_truncation() {
        let file = ftyp(b"mif1", &[b"miaf", b"avif"]);
        for end in 0..file.len() {
            let _ = sniff(&file[..end]);
        }
        assert_eq!(sniff(&file[..11]), None);
        assert_eq!(sniff(&file[..24]), Some(HeifKind::Avif));
    }

    #[cfg(feature = "heif")]
    mod decoding {
        use super::super::decoding::{check_budget, same_shape};
        use super::super::*;
        use super::ftyp;

        #[test]
        fn malformed_files_are_refused_with_the_format_named() {
            let header_only = ftyp(b"heic", &[b"mif1"]);
            let err = decode(&header_only, 224).unwrap_err();
            assert!(err.starts_with("HEIC: "), "{err}");
            let err = size(&ftyp(b"avif", &[])).unwrap_err();
            assert!(err.starts_with("AVIF: "), "{err}");
            let err = decode(b"not a picture at all", 224).unwrap_err();
            assert!(err.starts_with("HEIF: "), "{err}");
            assert!(decode(b"", 0).unwrap_err().starts_with("HEIF: "));
        }

        #[test]
        fn garbage_after_the_brands_is_refused() {
            let mut file = ftyp(b"heic", &[b"mif1"]);
            file.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
            for end in [file.len(), 40, 100, 1000] {
                let err = decode(&file[..end], 224).unwrap_err();
                assert!(err.starts_with("HEIC: "), "{err}");
            }
        }

        #[test]
        fn the_budget_refuses_before_decoding() {
            assert!(check_budget((8064, 6048)).is_ok());
            let err = check_budget((20_000, 20_000)).unwrap_err();
            assert!(err.contains("too large"), "{err}");
        }

        #[test]
        fn thumbnails_must_have_the_primary_shape() {
            assert!(same_shape((320, 240), (4032, 3024)));
            assert!(same_shape((320, 241), (4032, 3024)));
            assert!(!same_shape((240, 320), (4032, 3024)));
        }
    }
}
