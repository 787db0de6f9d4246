//! The console's static files (stylesheet, icon), embedded in the binary with rust-embed and
//! served under `/assets/<name>?v=<digest>` so browsers may cache them for good.

use std::sync::OnceLock;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/console/"]
struct Files;

/// One embedded file.
pub struct Asset {
    /// The bytes.
    pub bytes: std::borrow::Cow<'static, [u8]>,
    /// Its media type.
    pub media_type: &'static str,
    /// A strong ETag (the SHA-256 of the bytes, shortened).
    pub etag: String,
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// The embedded file `name`, if any.
pub fn get(name: &str) -> Option<Asset> {
    let file = Files::get(name)?;
    let etag = format!("\"{}\"", &hex::encode(file.metadata.sha256_hash())[..16]);
    Some(Asset {
        bytes: file.data,
        media_type: media_type(name),
        etag,
    })
}

/// The URL of an embedded file, versioned by its digest.
pub fn url(name: &str) -> String {
    static VERSIONS: OnceLock<std::collections::HashMap<String, String>> = OnceLock::new();
    let versions = VERSIONS.get_or_init(|| {
        Files::iter()
            .filter_map(|n| {
                let f = Files::get(&n)?;
                Some((n.to_string(), hex::encode(&f.metadata.sha256_hash()[..6])))
            })
            .collect()
    });
    match versions.get(name) {
        Some(v) => format!("/assets/{name}?v={v}"),
        None => format!("/assets/{name}"),
    }
}
