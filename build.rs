//! Embeds the icon in the Windows executable, so Explorer and the taskbar show it. On every
//! other platform this does nothing, and it never downloads anything.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
