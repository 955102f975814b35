//! The part of libheif's C API (`libheif/heif.h`, 1.15) that decoding needs, each pointer in a
//! type that frees it. Linked by build.rs through pkg-config.
//!
//! libheif's contexts are independent of each other, so each call works on its own context
//! and several threads may decode at once. A context reads the file in place (no copy), so
//! it and the handles it gives out borrow the file's bytes.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use image::RgbImage;

use crate::decode::MAX_DECODE_BYTES;

/// `struct heif_error`, returned by value.
#[repr(C)]
#[derive(Clone, Copy)]
struct HeifError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

/// Opaque C types.
#[repr(C)]
struct RawContext {
    _private: [u8; 0],
}
#[repr(C)]
struct RawHandle {
    _private: [u8; 0],
}
#[repr(C)]
struct RawImage {
    _private: [u8; 0],
}

// `enum heif_colorspace`, `enum heif_chroma`, `enum heif_channel` values used.
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHANNEL_INTERLEAVED: c_int = 10;

// `enum heif_error_code` and `enum heif_suberror_code` values worded for users.
const ERROR_OK: c_int = 0;
const ERROR_INVALID_INPUT: c_int = 2;
const ERROR_UNSUPPORTED_FILETYPE: c_int = 3;
const ERROR_UNSUPPORTED_FEATURE: c_int = 4;
const ERROR_MEMORY: c_int = 6;
const ERROR_DECODER_PLUGIN: c_int = 7;
const SUBERROR_END_OF_DATA: c_int = 100;
const SUBERROR_SECURITY_LIMIT: c_int = 1000;

/// libheif's limit on a side, in pixels. Its default in 1.15; set explicitly so that a newer
/// libheif with another default does not change what lookalike accepts. Pictures are bounded
/// by `MAX_DECODE_BYTES` well before this.
const SIDE_LIMIT: c_int = 32_768;

/// Most thumbnails a file may list that are looked at (files have one, rarely two).
const MAX_THUMBNAILS: usize = 16;

// Linked by build.rs (pkg-config prints the `-lheif` and where it is).
extern "C" {
    fn heif_init(params: *mut c_void) -> HeifError;
    fn heif_context_alloc() -> *mut RawContext;
    fn heif_context_free(context: *mut RawContext);
    fn heif_context_read_from_memory_without_copy(
        context: *mut RawContext,
        mem: *const c_void,
        size: usize,
        options: *const c_void,
    ) -> HeifError;
    fn heif_context_set_maximum_image_size_limit(context: *mut RawContext, maximum_width: c_int);
    fn heif_context_set_max_decoding_threads(context: *mut RawContext, max_threads: c_int);
    fn heif_context_get_primary_image_handle(
        context: *mut RawContext,
        handle: *mut *mut RawHandle,
    ) -> HeifError;
    fn heif_image_handle_release(handle: *const RawHandle);
    fn heif_image_handle_get_width(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_height(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_number_of_thumbnails(handle: *const RawHandle) -> c_int;
    fn heif_image_handle_get_list_of_thumbnail_IDs(
        handle: *const RawHandle,
        ids: *mut u32,
        count: c_int,
    ) -> c_int;
    fn heif_image_handle_get_thumbnail(
        handle: *const RawHandle,
        thumbnail_id: u32,
        thumbnail: *mut *mut RawHandle,
    ) -> HeifError;
    fn heif_decode_image(
        handle: *const RawHandle,
        image: *mut *mut RawImage,
        colorspace: c_int,
        chroma: c_int,
        options: *const c_void,
    ) -> HeifError;
    fn heif_image_get_width(image: *const RawImage, channel: c_int) -> c_int;
    fn heif_image_get_height(image: *const RawImage, channel: c_int) -> c_int;
    fn heif_image_get_bits_per_pixel(image: *const RawImage, channel: c_int) -> c_int;
    fn heif_image_get_plane_readonly(
        image: *const RawImage,
        channel: c_int,
        stride: *mut c_int,
    ) -> *const u8;
    fn heif_image_release(image: *const RawImage);
}

/// Registers libheif's decoders, once per process (its reference count is never taken back:
/// the decoders stay for the process's life).
fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        // SAFETY: `heif_init` accepts NULL for default parameters; `Once` runs it one time.
        // A failure is not kept: every later call then fails with its own reason.
        let _ = unsafe { heif_init(std::ptr::null_mut()) };
    });
}

/// A libheif error in words, or `Ok` for success.
fn check(error: HeifError) -> Result<(), String> {
    if error.code == ERROR_OK {
        return Ok(());
    }
    let message = if error.message.is_null() {
        String::from("no details")
    } else {
        // SAFETY: libheif's messages are NUL-terminated static or context-owned strings,
        // alive at least until the next call on the context; copied at once.
        unsafe { CStr::from_ptr(error.message) }
            .to_string_lossy()
            .trim_end()
            .to_owned()
    };
    Err(match (error.code, error.subcode) {
        (_, SUBERROR_END_OF_DATA) => format!("truncated file: {message}"),
        (_, SUBERROR_SECURITY_LIMIT) => format!("image too large to decode safely: {message}"),
        (ERROR_INVALID_INPUT, _) => format!("damaged file: {message}"),
        (ERROR_UNSUPPORTED_FILETYPE | ERROR_UNSUPPORTED_FEATURE, _) => {
            format!("unsupported: {message}")
        }
        (ERROR_MEMORY, _) => format!("out of memory: {message}"),
        (ERROR_DECODER_PLUGIN, _) => format!("damaged image data: {message}"),
        _ => message,
    })
}

/// A `heif_context` that has read a file held in memory.
pub struct Context<'a> {
    raw: NonNull<RawContext>,
    /// The context reads `bytes` in place.
    _bytes: PhantomData<&'a [u8]>,
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: allocated by `heif_context_alloc`, freed once here. Handles hold their own
        // reference to the context's internals, so they may outlive this.
        unsafe { heif_context_free(self.raw.as_ptr()) }
    }
}

impl<'a> Context<'a> {
    /// Parses the file's boxes; nothing is decoded yet.
    pub fn read(bytes: &'a [u8]) -> Result<Context<'a>, String> {
        if bytes.is_empty() {
            return Err("empty file".into());
        }
        init();
        // SAFETY: no arguments; NULL (out of memory) is checked.
        let raw = NonNull::new(unsafe { heif_context_alloc() })
            .ok_or_else(|| String::from("out of memory"))?;
        let context = Context {
            raw,
            _bytes: PhantomData,
        };
        // SAFETY: the context is live; the settings only bound what it will accept.
        unsafe {
            heif_context_set_maximum_image_size_limit(raw.as_ptr(), SIDE_LIMIT);
            heif_context_set_max_decoding_threads(raw.as_ptr(), 0);
        }
        // SAFETY: `bytes` outlives the context and every handle from it (lifetime `'a`);
        // libheif only reads within `bytes.len()`; the options may be NULL.
        check(unsafe {
            heif_context_read_from_memory_without_copy(
                raw.as_ptr(),
                bytes.as_ptr().cast(),
                bytes.len(),
                std::ptr::null(),
            )
        })?;
        Ok(context)
    }

    /// The image the file shows.
    pub fn primary(&self) -> Result<Handle<'a>, String> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: the context is live and has read a file; `raw` receives a new handle.
        check(unsafe { heif_context_get_primary_image_handle(self.raw.as_ptr(), &mut raw) })?;
        Handle::new(raw)
    }
}

/// A `heif_image_handle`: one image item of the file, not decoded yet.
pub struct Handle<'a> {
    raw: NonNull<RawHandle>,
    /// Decoding reads the file's bytes, which the context did not copy.
    _bytes: PhantomData<&'a [u8]>,
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        // SAFETY: obtained from libheif, released once here.
        unsafe { heif_image_handle_release(self.raw.as_ptr()) }
    }
}

impl<'a> Handle<'a> {
    fn new(raw: *mut RawHandle) -> Result<Handle<'a>, String> {
        let raw = NonNull::new(raw).ok_or_else(|| String::from("no image in the file"))?;
        Ok(Handle {
            raw,
            _bytes: PhantomData,
        })
    }

    /// The upright size (after `irot` and `clap`), from the item's properties.
    pub fn size(&self) -> Result<(u32, u32), String> {
        // SAFETY: the handle is live.
        let (w, h) = unsafe {
            (
                heif_image_handle_get_width(self.raw.as_ptr()),
                heif_image_handle_get_height(self.raw.as_ptr()),
            )
        };
        positive_size(w, h)
    }

    /// The thumbnail items of this image.
    pub fn thumbnails(&self) -> Vec<Handle<'a>> {
        // SAFETY: the handle is live.
        let listed = unsafe { heif_image_handle_get_number_of_thumbnails(self.raw.as_ptr()) };
        let count = usize::try_from(listed).unwrap_or(0).min(MAX_THUMBNAILS);
        let mut ids = vec![0u32; count];
        // SAFETY: `ids` has room for `count` ids, and libheif writes at most `count`.
        let filled = unsafe {
            heif_image_handle_get_list_of_thumbnail_IDs(
                self.raw.as_ptr(),
                ids.as_mut_ptr(),
                count as c_int,
            )
        };
        ids.truncate(usize::try_from(filled).unwrap_or(0));
        ids.into_iter()
            .filter_map(|id| self.thumbnail(id))
            .collect()
    }

    fn thumbnail(&self, id: u32) -> Option<Handle<'a>> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: the handle is live; `raw` receives a new handle.
        check(unsafe { heif_image_handle_get_thumbnail(self.raw.as_ptr(), id, &mut raw) }).ok()?;
        Handle::new(raw).ok()
    }

    /// Decodes the item, upright, to 8-bit RGB. Its size must already have been checked
    /// against the budget: libheif allocates before this can look at the result.
    pub fn decode_rgb(&self) -> Result<RgbImage, String> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: the handle is live; NULL options are libheif's defaults, which apply the
        // item's transforms; `raw` receives a new image.
        check(unsafe {
            heif_decode_image(
                self.raw.as_ptr(),
                &mut raw,
                COLORSPACE_RGB,
                CHROMA_INTERLEAVED_RGB,
                std::ptr::null(),
            )
        })?;
        let image = Image(NonNull::new(raw).ok_or_else(|| String::from("no image decoded"))?);
        image.to_rgb()
    }
}

/// A decoded `heif_image`.
struct Image(NonNull<RawImage>);

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: obtained from `heif_decode_image`, released once here.
        unsafe { heif_image_release(self.0.as_ptr()) }
    }
}

impl Image {
    /// The interleaved RGB plane, copied row by row (libheif pads rows to its stride).
    fn to_rgb(&self) -> Result<RgbImage, String> {
        let raw = self.0.as_ptr();
        // SAFETY: the image is live; these read its description.
        let (w, h, bits) = unsafe {
            (
                heif_image_get_width(raw, CHANNEL_INTERLEAVED),
                heif_image_get_height(raw, CHANNEL_INTERLEAVED),
                heif_image_get_bits_per_pixel(raw, CHANNEL_INTERLEAVED),
            )
        };
        let (width, height) = positive_size(w, h)?;
        if bits != 24 {
            return Err(format!("decoded to {bits} bits a pixel, not 8-bit RGB"));
        }
        if u64::from(width) * u64::from(height) * 3 > MAX_DECODE_BYTES {
            return Err(format!(
                "decoded to {width}×{height}, more than its header said"
            ));
        }
        let mut stride: c_int = 0;
        // SAFETY: the image is live and has this channel; `stride` receives bytes per row.
        let plane = unsafe { heif_image_get_plane_readonly(raw, CHANNEL_INTERLEAVED, &mut stride) };
        let row = width as usize * 3;
        let stride = usize::try_from(stride).unwrap_or(0);
        if plane.is_null() || stride < row {
            return Err("the decoder gave no RGB pixels".into());
        }
        let mut pixels = Vec::with_capacity(row * height as usize);
        for y in 0..height as usize {
            // SAFETY: the plane holds `height` rows of `stride` bytes, each starting with
            // `width * 3` pixel bytes; it lives as long as `self`, which outlives this copy.
            let line = unsafe { std::slice::from_raw_parts(plane.add(y * stride), row) };
            pixels.extend_from_slice(line);
        }
        RgbImage::from_raw(width, height, pixels).ok_or_else(|| "pixel buffer mismatch".into())
    }
}

/// A size from libheif, which reports failure as 0 or -1.
fn positive_size(w: c_int, h: c_int) -> Result<(u32, u32), String> {
    match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!("image has no pixels ({w}×{h})")),
    }
}
