//! A generated folder of the files that break image tools: empty, random and truncated files,
//! wrong extensions, odd sizes and pixel formats, every format, every EXIF orientation,
//! decompression bombs, odd names and odd folder entries. Each case says what must happen.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

/// What must become of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Indexed, labelled and ranked like any photo.
    Good,
    /// Reported, naming the file, with a reason containing this text.
    Bad(&'static str),
}

#[derive(Debug, Clone)]
pub struct Case {
    pub path: PathBuf,
    pub what: &'static str,
    pub expect: Expect,
}

pub struct Corpus {
    pub dir: tempfile::TempDir,
    pub cases: Vec<Case>,
}

impl Corpus {
    pub fn good(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| c.expect == Expect::Good)
    }

    pub fn bad(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| c.expect != Expect::Good)
    }
}

fn photo(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            128,
        ])
    })
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encodes");
    out.into_inner()
}

fn jpeg() -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(photo(64, 48)), ImageFormat::Jpeg)
}

/// A JPEG with an EXIF APP1 segment holding only an orientation tag.
pub fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A small JPEG whose frame header claims `width × height`.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG has SOF0");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// A real 50000×50000 PNG (1-bit grey, all black): a few hundred KB on disk, 2.5 GB decoded.
fn png_bomb(path: &Path) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, 50_000, 50_000);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; 50_000 / 8];
    for _ in 0..50_000 {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
}

/// A `side × side` RGB PNG of one colour: a few hundred KB on disk, `3 × side²` bytes decoded,
/// written a row at a time so that the test never holds the picture.
pub fn flat_png(path: &Path, side: u32) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(file, side, side);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row: Vec<u8> = (0..side).flat_map(|_| [200u8, 120, 40]).collect();
    for _ in 0..side {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for shade in [0u8, 120, 250] {
            let frame = image::RgbaImage::from_pixel(32, 24, image::Rgba([shade, 80, 200, 255]));
            encoder.encode_frame(image::Frame::new(frame)).unwrap();
        }
    }
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/corpus")
            .join(name),
    )
    .unwrap()
}

/// Builds the corpus in a new temporary folder.
pub fn build() -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut cases = Vec::new();
    let mut add = |name: &str, bytes: &[u8], what: &'static str, expect: Expect| {
        let path = root.join(name);
        std::fs::write(&path, bytes).unwrap();
        cases.push(Case { path, what, expect });
    };
    let good = Expect::Good;
    let photo_jpeg = jpeg();
    let png = encode(&DynamicImage::ImageRgb8(photo(64, 48)), ImageFormat::Png);

    add("empty.jpg", b"", "zero-byte file", Expect::Bad("empty"));
    let random: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    add(
        "random.jpg",
        &random,
        "random bytes named .jpg",
        Expect::Bad("not an image"),
    );
    for (percent, name) in [(10, "cut-10.jpg"), (50, "cut-50.jpg"), (99, "cut-99.jpg")] {
        add(
            name,
            &photo_jpeg[..photo_jpeg.len() * percent / 100],
            "truncated JPEG",
            Expect::Bad("truncated"),
        );
    }
    add("png-named.jpg", &png, "PNG named .jpg", good.clone());
    add(
        "jpeg-named.png",
        &photo_jpeg,
        "JPEG named .png",
        good.clone(),
    );
    add(
        "text-named.png",
        b"just some notes, not a picture\n",
        "text named .png",
        Expect::Bad("not an image"),
    );
    add(
        "one-pixel.png",
        &encode(&DynamicImage::ImageRgb8(photo(1, 1)), ImageFormat::Png),
        "1x1 image",
        good.clone(),
    );
    add(
        "strip.png",
        &encode(&DynamicImage::ImageRgb8(photo(20_000, 1)), ImageFormat::Png),
        "20000x1 image",
        good.clone(),
    );
    let gray = DynamicImage::ImageLuma8(image::GrayImage::from_fn(40, 30, |x, _| {
        image::Luma([x as u8 * 6])
    }));
    add(
        "gray.jpg",
        &encode(&gray, ImageFormat::Jpeg),
        "grayscale JPEG",
        good.clone(),
    );
    let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(40, 30, |x, y| {
        Rgb([x as u16 * 1600, y as u16 * 2100, 30000])
    }));
    add(
        "deep.png",
        &encode(&deep, ImageFormat::Png),
        "16-bit PNG",
        good.clone(),
    );
    add("cmyk.jpg", &fixture("cmyk.jpg"), "CMYK JPEG", good.clone());
    add(
        "palette-alpha.png",
        &fixture("palette-alpha.png"),
        "palette PNG with alpha",
        good.clone(),
    );
    add(
        "animated.gif",
        &animated_gif(),
        "animated GIF",
        good.clone(),
    );
    let rgb = DynamicImage::ImageRgb8(photo(48, 36));
    add(
        "image.bmp",
        &encode(&rgb, ImageFormat::Bmp),
        "BMP",
        good.clone(),
    );
    add(
        "image.tiff",
        &encode(&rgb, ImageFormat::Tiff),
        "TIFF",
        good.clone(),
    );
    add(
        "image.webp",
        &encode(&rgb, ImageFormat::WebP),
        "WebP",
        good.clone(),
    );
    for orientation in 2..=8u16 {
        let name = format!("orientation-{orientation}.jpg");
        add(
            &name,
            &with_orientation(&photo_jpeg, orientation),
            "EXIF orientation",
            good.clone(),
        );
    }
    add(
        "huge-header.jpg",
        &jpeg_claiming(65_000, 65_000),
        "JPEG header claiming 65000x65000",
        Expect::Bad("too large"),
    );
    new_formats(&mut add, &good);
    add(
        "spaces 🐯 太陽花.jpg",
        &photo_jpeg,
        "name with spaces, emoji and CJK",
        good.clone(),
    );

    let bomb = root.join("bomb.png");
    png_bomb(&bomb);
    cases.push(Case {
        path: bomb,
        what: "50000x50000 PNG bomb",
        expect: Expect::Bad("too large"),
    });

    // 9500 × 9500 × 3 bytes is just over the 256 MiB one decode may allocate: refused, where
    // a looser cap would decode it.
    let over = root.join("just-over-the-cap.png");
    flat_png(&over, 9_500);
    cases.push(Case {
        path: over,
        what: "9500x9500 RGB PNG, just over the decode cap",
        expect: Expect::Bad("too large"),
    });

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"not-utf8-\xff\xfe.jpg");
        let path = root.join(name);
        std::fs::write(&path, &photo_jpeg).unwrap();
        cases.push(Case {
            path,
            what: "non-UTF-8 file name",
            expect: Expect::Good,
        });

        let dangling = root.join("dangling.jpg");
        std::os::unix::fs::symlink(root.join("does-not-exist.jpg"), &dangling).unwrap();
        cases.push(Case {
            path: dangling,
            what: "dangling symlink",
            expect: Expect::Bad("No such file"),
        });

        // A symlink back to the folder itself: walking must not loop.
        std::os::unix::fs::symlink(root, root.join("loop")).unwrap();
    }
    // A folder whose name promises a picture; its contents are walked like any folder's.
    std::fs::create_dir(root.join("photo.jpg")).unwrap();
    let inside = root.join("photo.jpg").join("inside.png");
    std::fs::write(&inside, &png).unwrap();
    cases.push(Case {
        path: inside,
        what: "image inside a folder named photo.jpg",
        expect: Expect::Good,
    });

    Corpus { dir, cases }
}

/// A good, a truncated and a malformed file of each format that the `image` crate does not
/// read: HEIC and AVIF (made by heif-enc), JPEG XL (made by cjxl), and each camera RAW (built
/// by lookalike's own RAW fixture: no RAW encoder exists in Debian).
/// Writes one case: file name, bytes, what it is, what must become of it.
type AddCase<'a> = dyn FnMut(&str, &[u8], &'static str, Expect) + 'a;

fn new_formats(add: &mut AddCase<'_>, good: &Expect) {
    use lookalike::decode::raw::{fixture as raw, RawKind};
    let heif = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/heif")
                .join(name),
        )
        .unwrap()
    };
    for (kind, file, what) in [
        ("heic", "gradient-64x48.heic", "HEIC"),
        ("avif", "gradient-64x48.avif", "AVIF"),
    ] {
        let bytes = heif(file);
        add(&format!("phone.{kind}"), &bytes, what, good.clone());
        let cut = &bytes[..bytes.len() / 2];
        add(
            &format!("cut.{kind}"),
            cut,
            "truncated HEIF",
            Expect::Bad("truncated"),
        );
        let mut damaged = bytes.clone();
        let at = memchr::memmem::find(&damaged, b"iloc").unwrap();
        damaged[at] = b'x';
        add(
            &format!("damaged.{kind}"),
            &damaged,
            "malformed HEIF",
            Expect::Bad("damaged"),
        );
    }
    let jxl = fixture("photo.jxl");
    add("image.jxl", &jxl, "JPEG XL", good.clone());
    add(
        "cut.jxl",
        &jxl[..jxl.len() / 2],
        "truncated JPEG XL",
        Expect::Bad("truncated"),
    );
    let mut bad = jxl.clone();
    bad[40] ^= 0xFF;
    add(
        "damaged.jxl",
        &bad,
        "malformed JPEG XL",
        Expect::Bad("JPEG XL"),
    );
    // Kept apart from the fixtures of good pictures, which the parity tests read as a set.
    let huge = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/refused/huge-header.jxl"),
    )
    .unwrap();
    add(
        "huge-header.jxl",
        &huge,
        "JPEG XL claiming 30000x20000",
        Expect::Bad("too large"),
    );
    for kind in RawKind::ALL {
        let ext = kind.extensions()[0];
        add(
            &format!("camera.{ext}"),
            &raw::sample(kind),
            "camera RAW",
            good.clone(),
        );
        let (cut, broken) = (raw::truncated(kind), raw::malformed(kind));
        add(
            &format!("cut.{ext}"),
            &cut,
            "truncated RAW",
            Expect::Bad("truncated"),
        );
        add(
            &format!("broken.{ext}"),
            &broken,
            "malformed RAW",
            Expect::Bad(kind.name()),
        );
    }
}
