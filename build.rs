//! Embeds the icon in the Windows executable, so Explorer and the taskbar show it. On every
//! other platform this does nothing, and it never downloads anything. With the `heif` feature
//! it also links the system's libheif.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "heif")]
    link_libheif();
    println!("cargo:rerun-if-changed=assets/icons/lookalike.ico");
    #[cfg(windows)]
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        let mut resource = winresource::WindowsResource::new();
        resource.set_icon("assets/icons/lookalike.ico");
        if let Err(e) = resource.compile() {
            println!("cargo:warning=the icon was not embedded: {e}");
        }
    }
}

/// Links the system's libheif for the `heif` feature. 1.15 (Debian 12) is the oldest with every
/// function src/decode/heif/ffi.rs calls.
#[cfg(feature = "heif")]
fn link_libheif() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("1.15")
        .probe("libheif")
    {
        panic!(
            "the `heif` feature needs libheif 1.15 or later and its pkg-config file \
             (Debian and Ubuntu: apt-get install libheif-dev), or build without it \
             (--no-default-features --features gui,cli,postgres): {e}"
        );
    }
}
