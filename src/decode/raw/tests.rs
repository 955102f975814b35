use super::fixture::{self, Parts};
use super::*;

fn kind_head(kind: RawKind) -> Vec<u8> {
    fixture::sample(kind)
}

#[test]
fn every_kind_is_sniffed_and_its_own_magic_needs_64_bytes() {
    for kind in RawKind::ALL {
        let bytes = kind_head(kind);
        assert_eq!(sniff(&bytes), Some(kind), "{kind:?}");
        let needs_ifd0 = matches!(kind, RawKind::Nef | RawKind::Arw | RawKind::Dng);
        let short = sniff(&bytes[..64]);
        assert_eq!(
            short,
            (!needs_ifd0).then_some(kind),
            "{kind:?} from 64 bytes"
        );
        assert_eq!(sniff_tiff(&bytes).is_some(), needs_ifd0, "{kind:?} by IFD0");
    }
}

#[test]
fn other_files_are_not_raw() {
    let image = DynamicImage::new_rgb8(8, 8);
    for format in [
        image::ImageFormat::Tiff,
        image::ImageFormat::Jpeg,
        image::ImageFormat::Png,
    ] {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        assert_eq!(sniff(out.get_ref()), None, "{format:?}");
    }
    assert_eq!(sniff(b""), None);
    assert_eq!(sniff(b"II*\0"), None);
    assert!(preview(b"hello").unwrap_err().contains("not a camera RAW"));
}

/// A TIFF that names a Nikon but holds no sensor data (as saved from a Nikon JPEG) is a TIFF.
#[test]
fn a_plain_tiff_from_a_nikon_is_not_a_nef() {
    let mut nef = fixture::sample(RawKind::Nef);
    // IFD0's first entry is NewSubfileType (1) and its SubIFDs tag (0x014A) becomes 0x0140.
    let find = |bytes: &[u8], pat: &[u8]| bytes.windows(pat.len()).position(|w| w == pat);
    let subs = find(&nef, &[0x01, 0x4A, 0, 4]).unwrap();
    nef[subs + 1] = 0x40;
    let subfile = find(&nef, &[0, 0xFE, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1]).unwrap();
    nef[subfile + 11] = 0;
    assert_eq!(sniff(&nef), None);
}

#[test]
fn every_kind_gives_its_full_preview_upright() {
    for kind in RawKind::ALL {
        let bytes = fixture::sample(kind);
        let found = preview(&bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(found.kind, kind);
        assert_eq!((found.width, found.height), (640, 480), "{kind:?}");
        assert_eq!(found.orientation, Orientation::Rotate90, "{kind:?}");
        assert_eq!(found.upright_size(), (480, 640));
        assert_eq!(found.pixel_bytes(), 2 * 640 * 480 * 3);
        let rgb = decode_preview(&found).unwrap();
        assert_eq!(rgb.dimensions(), (480, 640), "{kind:?}");
        // Half size leaves 240 ≥ 2 × 100 on the shorter side; 150 needs the full size.
        let half = decode_preview_for(&found, 100).unwrap();
        assert_eq!(half.dimensions(), (240, 320), "{kind:?}");
        assert_eq!(decode_preview_for(&found, 150).unwrap(), rgb);
    }
}

#[test]
fn truncated_and_malformed_files_name_their_kind() {
    for kind in RawKind::ALL {
        for (what, bytes) in [
            ("truncated", fixture::truncated(kind)),
            ("malformed", fixture::malformed(kind)),
        ] {
            let error = preview(&bytes).map(|p| p.kind).expect_err(what);
            assert!(error.starts_with(kind.name()), "{what} {kind:?}: {error}");
        }
        let error = preview(&fixture::truncated(kind)).unwrap_err();
        assert!(error.contains("truncated"), "{kind:?}: {error}");
    }
}

#[test]
fn a_preview_past_the_end_is_refused() {
    let error = preview(&fixture::malformed(RawKind::Arw)).unwrap_err();
    assert!(
        error.contains("no embedded preview large enough"),
        "{error}"
    );
    assert!(error.contains("truncated"), "{error}");
    let error = preview(&fixture::malformed(RawKind::Rw2)).unwrap_err();
    assert!(error.contains("past the end"), "{error}");
    // With a medium preview large enough beside it, that one is shown.
    let (full, medium, thumb) = (
        fixture::noise_jpeg(640, 480),
        fixture::noise_jpeg(320, 240),
        fixture::noise_jpeg(160, 120),
    );
    let parts = Parts {
        full: &full,
        medium: &medium,
        thumb: &thumb,
        orientation: 1,
        broken_pointer: true,
    };
    let nef = fixture::make(RawKind::Nef, &parts).bytes;
    let found = preview(&nef).map(|p| (p.width, p.height));
    assert_eq!(found, Ok((320, 240)));
}

/// Every prefix and every one-byte change of the headers: an answer, never a panic or a hang.
#[test]
fn hostile_bytes_never_panic() {
    for kind in RawKind::ALL {
        let bytes = fixture::sample(kind);
        for len in (0..bytes.len()).step_by(97).chain(0..512) {
            let _ = preview(&bytes[..len]);
        }
        let mut changed = bytes.clone();
        for at in 0..changed.len().min(2048) {
            for value in [0x00, 0xFF, changed[at] ^ 0x80] {
                let old = std::mem::replace(&mut changed[at], value);
                if let Ok(p) = preview(&changed) {
                    assert!(p.jpeg.starts_with(&[0xFF, 0xD8]));
                }
                changed[at] = old;
            }
        }
    }
}

#[test]
fn directory_loops_end() {
    // IFD0 at 8 whose next IFD and SubIFD are itself.
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    for (tag, value) in [(0x014Au16, 8u32), (0xC612, 0x0104)] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&8u32.to_le_bytes());
    let error = preview(&tiff).unwrap_err();
    assert!(
        error.starts_with("DNG: no embedded JPEG preview"),
        "{error}"
    );
}

#[test]
fn lossless_jpeg_is_not_a_preview() {
    let mut stub = vec![0xFF, 0xD8, 0xFF, 0xC3, 0, 11, 8, 1, 0, 1, 0, 1, 1, 0x11, 0];
    stub.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
    assert!(jpeg_info(&stub).is_none());
    stub[3] = 0xC0;
    assert_eq!(
        jpeg_info(&stub).map(|j| (j.width, j.height)),
        Some((256, 256))
    );
}

/// A preview whose header promises more pixels than a decode may hold is refused by size.
#[test]
fn an_enormous_preview_is_refused_before_decoding() {
    let mut huge = vec![
        0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0xEA, 0x60, 0xEA, 0x60, 1, 1, 0x11, 0,
    ];
    huge.extend_from_slice(&[0xFF, 0xDA, 0, 2, 0xFF, 0xD9]);
    let thumb = fixture::noise_jpeg(160, 120);
    let parts = Parts {
        full: &huge,
        medium: &thumb,
        thumb: &thumb,
        orientation: 1,
        broken_pointer: false,
    };
    let rw2 = fixture::make(RawKind::Rw2, &parts).bytes;
    let error = preview(&rw2).unwrap_err();
    assert!(
        error.starts_with("RW2: image too large to decode safely: the preview is 60000×60000"),
        "{error}"
    );
}

/// Random changes of one to eight bytes anywhere, 1500 per kind (the JPEG decoder's own
/// robustness is the image crate's to prove).
#[test]
fn random_damage_never_panics() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for kind in RawKind::ALL {
        let bytes = fixture::sample(kind);
        for _ in 0..1500 {
            let mut changed = bytes.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % changed.len() as u64) as usize;
                changed[at] = next() as u8;
            }
            if let Ok(p) = preview(&changed) {
                assert!(p.jpeg.starts_with(&[0xFF, 0xD8]));
            }
        }
    }
}

#[test]
fn a_damaged_preview_is_named() {
    let mut full = fixture::noise_jpeg(640, 480);
    let end = full.len() - 2;
    full[end..].copy_from_slice(&[0, 0]); // no end-of-image marker
    let thumb = fixture::noise_jpeg(160, 120);
    let parts = Parts {
        full: &full,
        medium: &thumb,
        thumb: &thumb,
        orientation: 1,
        broken_pointer: false,
    };
    let rw2 = fixture::make(RawKind::Rw2, &parts).bytes;
    let error = preview(&rw2).unwrap_err();
    assert!(error.starts_with("RW2: damaged file"), "{error}");
}
